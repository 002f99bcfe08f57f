#!/usr/bin/env bash
# Steps 3 and 4 of the product on real pods:
#   3. 2,000 workflows (noop, sleep, and order with its payment signal) dispatched from outside the pods through the
#      kv's client Service all complete, every step committed once.
#   4. Failures under load, each followed by the whole history check:
#      - a worker pod deleted with --grace-period=0 --force: the workflows it held complete elsewhere (takeover time);
#      - the sidecar of another pod killed with kill -9 (the kubelet restarts it): its work goes on (takeover time);
#      - the kv leader pod deleted: writes resume (failover time), the pod comes back and catches up.
# Times are printed as RESULT lines for docs/benchmarks.md; the bounds asserted are loose (this machine is shared),
# the correctness checks are not.
# shellcheck source=product_lib.sh
. "$(dirname "$0")/product_lib.sh"
require_product

run="$(date +%s)"
w="wl${run}"
info "step 3: 2,000 workflows through ${KV_CLIENT}"
start=$SECONDS
dispatch_count noop 1200 "${w}-noop" '{}'
dispatch_count sleep 500 "${w}-sleep" '{"ms": 200, "times": 2}'
# Orders: the payment is sent right after each dispatch; an order keeps a payment that arrives before it waits.
orders="$(mktemp)"
for i in $(seq 0 299); do
  printf '{"id": "%s-order-%d", "name": "order", "input": {"payment_timeout_ms": 120000, "hold_ms": 20}}\n' "$w" "$i"
done >"$orders"
out="$(gasctl dispatch --pool "$KV_POOL" --from-file "$orders" 2>&1)" || fail "dispatching the orders failed: ${out}"
rm -f "$orders"
signals="$(mktemp)"
for i in $(seq 0 299); do echo "${w}-order-${i}"; done >"$signals"
# One gasctl per signal would start 300 processes in the node's namespace; a loop inside one shell is enough.
sent=0
while read -r id; do
  gasctl signal "$id" --name payment --body '{"card": "4242"}' >/dev/null || fail "signalling ${id} failed"
  sent=$((sent + 1))
done <"$signals"
rm -f "$signals"
info "sent ${sent} payment signals"
complete_3() { all_complete "${w}-noop" "${w}-sleep" "${w}-order"; }
if ! (wait_until "the 2,000 workflows complete" 300 complete_3); then
  gasctl workers --pool "$KV_POOL" >&2 || true
  fail "the workload did not complete: $(unfinished "${w}-noop" "${w}-sleep" "${w}-order") left"
fi
check_history 2000 "${w}-noop" "${w}-sleep" "${w}-order"
echo "RESULT step3_workflows=2000 seconds=$((SECONDS - start))"

# --- Step 4: failures under load ----------------------------------------------------------------------------------
# Load: sleep workflows of 3 steps 500 ms apart, each step 150 ms of the app's (simulated) work, so the pods hold
# leases when they die; dispatched at a steady rate while the faults happen.
load_bg() { # PREFIX COUNT RATE
  gasctl dispatch --pool "$KV_POOL" --name sleep --count "$2" --id "$1" --input '{"ms": 500, "times": 2, "work_ms": 150}' --rate "$3" \
    >"${PRODUCT_DIR}/$1.dispatch.log" 2>&1 &
  load_pid=$!
}
finish_load() { # PREFIX COUNT
  wait "$load_pid" || fail "the load's dispatches were not all acknowledged: $(tail -3 "${PRODUCT_DIR}/$1.dispatch.log")"
  wait_until "every acknowledged workflow of the load $1 complete" 240 all_complete "$1"
  check_history "$2" "$1"
}

# 4a. A worker pod force-deleted.
f="${w}-podkill"
load_bg "$f" 300 15
victim="$(pool_pods | head -1)"
held="${PRODUCT_DIR}/${f}.held"
held_nonempty() { leased_by "$victim" >"$held" && [ -s "$held" ]; }
wait_until "pod ${victim} holds leases" 60 held_nonempty
t0="$(now_ms)"
kc -n "$POOLS_NS" delete pod "$victim" --grace-period=0 --force >/dev/null 2>&1
info "force-deleted ${victim} holding $(wc -l <"$held") leases"
progressed_held() { progressed "$held"; }
wait_until "the workflows ${victim} held made progress elsewhere" 60 progressed_held
takeover_ms=$(($(now_ms) - t0))
echo "RESULT pod_force_delete_takeover_ms=${takeover_ms} held=$(wc -l <"$held") step_length_ms=150"
[ "$takeover_ms" -le 30000 ] || fail "takeover after a force-deleted pod took ${takeover_ms} ms"
finish_load "$f" 300

# 4b. A sidecar process killed with kill -9 inside another pod.
f="${w}-sidecarkill"
two_ready() { [ "$(ready_pool_pods | wc -l)" -ge 2 ]; }
wait_until "2 pool pods Ready again" 120 two_ready
load_bg "$f" 300 15
victim="$(ready_pool_pods | tail -1)"
held="${PRODUCT_DIR}/${f}.held"
wait_until "pod ${victim} holds leases" 60 held_nonempty
restarts_before="$(kc -n "$POOLS_NS" get pod "$victim" -o jsonpath='{.status.initContainerStatuses[0].restartCount}')"
id="$(kc -n "$POOLS_NS" get pod "$victim" -o jsonpath='{.status.initContainerStatuses[0].containerID}')"
id="${id#containerd://}"
pid="$("$CLUSTER_SH" ctr tasks ls 2>/dev/null | awk -v id="$id" '$1 == id && $3 == "RUNNING" { print $2 }')"
[ -n "$pid" ] || fail "no running containerd task for the sidecar of ${victim}"
t0="$(now_ms)"
kill -9 "$pid"
info "killed the sidecar of ${victim} (host pid ${pid}) holding $(wc -l <"$held") leases"
wait_until "the workflows ${victim}'s sidecar held made progress" 60 progressed_held
takeover_ms=$(($(now_ms) - t0))
echo "RESULT sidecar_kill9_takeover_ms=${takeover_ms} held=$(wc -l <"$held") step_length_ms=150"
[ "$takeover_ms" -le 30000 ] || fail "takeover after a killed sidecar took ${takeover_ms} ms"
restarted() { [ "$(kc -n "$POOLS_NS" get pod "$victim" -o jsonpath='{.status.initContainerStatuses[0].restartCount}')" -gt "$restarts_before" ]; }
wait_until "the kubelet restarted the sidecar of ${victim}" 60 restarted
finish_load "$f" 300

# 4c. The kv leader pod deleted.
f="${w}-kvleader"
load_bg "$f" 300 15
leader="$(kv_leader_pod)" || fail "no kv leader"
probe_write() { gasctl --timeout-ms 1000 dispatch --pool "$KV_POOL" --name noop --id "${w}-probe-$1" >/dev/null 2>&1; }
probe_write 0 || fail "a write before the leader's deletion failed"
t0="$(now_ms)"
kc -n "$PRODUCT_NS" delete pod "$leader" --wait=false >/dev/null
info "deleted the kv leader ${leader}"
n=1
# The first write that lands after the leader is gone (the delete is graceful: the old leader may still answer
# briefly; a write counts only once a new leader is known).
new_leader() { local l; l="$(kv_leader_pod)" && [ "$l" != "$leader" ]; }
until new_leader && probe_write "$n"; do
  [ $(($(now_ms) - t0)) -lt 60000 ] || fail "writes did not resume within 60 s of deleting the kv leader"
  n=$((n + 1))
done
failover_ms=$(($(now_ms) - t0))
echo "RESULT kv_leader_delete_writes_resume_ms=${failover_ms} new_leader=$(kv_leader_pod)"
[ "$failover_ms" -le 30000 ] || fail "writes resumed only after ${failover_ms} ms"
back() { pod_ready "$leader"; }
wait_until "${leader} back and Ready" 120 back
applied_of() { # RAFT_ID (or "leader"): that replica's applied index, asked of itself
  gasctl --kv "$KV_ALL" cluster status -o json |
    jq -r --arg id "$1" '[.[] | .raft? // {} | select(($id == "leader" and .state == "leader") or ((.id | tostring) == $id))
                          | .raft_applied_index] | first // 0'
}
target="$(applied_of leader)"
rid=$((${leader##*-} + 1))
caught_up() { [ "$(applied_of "$rid")" -ge "$target" ]; }
wait_until "${leader} (Raft id ${rid}) applied the leader's index ${target}" 60 caught_up
finish_load "$f" 300
info "ok: steps 3 and 4 on real pods"
