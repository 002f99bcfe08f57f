#!/usr/bin/env bash
# Step 5 of the product on real pods: autoscaling on real CPU.
#   - burn workflows (the example app spends real CPU in each step) load the app containers;
#   - metrics-server scrapes the real kubelet, the HPA sees the app container's CPU and scales the pool out;
#   - the sidecars report the app's CPU (--cpu-source app: shared process namespace, the app's CPU request through
#     the downward API), not their own, so the hot pods shed work (the kv's shed counter rises) while the HPA
#     catches up; the sidecar's own CPU is not what drives it (a noop flood, which costs the sidecar more than the
#     app, leaves the reported CPU low);
#   - when the load stops the pool scales in, each removed pod drains through its preStop hook, and every burn
#     workflow completed with each step committed once.
# shellcheck source=product_lib.sh
. "$(dirname "$0")/product_lib.sh"
require_product

run="$(date +%s)"
b="burn${run}"
hpa_replicas() { kc -n "$POOLS_NS" get hpa "$POOL" -o jsonpath='{.status.currentReplicas}'; }
hpa_desired() { kc -n "$POOLS_NS" get hpa "$POOL" -o jsonpath='{.status.desiredReplicas}'; }
min_replicas="$(gwp_field '{.spec.autoscaling.minReplicas}')"
max_replicas="$(gwp_field '{.spec.autoscaling.maxReplicas}')"
at_min() { [ "$(kc -n "$POOLS_NS" get deploy "$POOL" -o jsonpath='{.spec.replicas}')" = "$min_replicas" ] && [ "$(ready_pool_pods | wc -l)" = "$min_replicas" ]; }
wait_until "the pool at its minimum (${min_replicas} Ready pods) before the load" 180 at_min

# The CPU each sidecar reports (gasoline_worker_cpu_ratio: the app's CPU against its request under --cpu-source app).
reported_cpu() { # POD
  local ip
  ip="$(kc -n "$POOLS_NS" get pod "$1" -o jsonpath='{.status.podIP}')"
  in_node curl -sf --max-time 2 "http://${ip}:7481/metrics" | awk '$1 == "gasoline_worker_cpu_ratio" { print $2 }'
}
max_reported_cpu() {
  local p m=0 v
  for p in $(ready_pool_pods); do
    v="$(reported_cpu "$p")" || continue
    m="$(larger "$m" "${v:-0}")"
  done
  echo "$m"
}

# The sidecar's own CPU does not count: a noop flood keeps the sidecars busy (each noop step is mostly sidecar
# work: pull, HTTP to the app and back, commit) while the app does almost nothing.
info "a noop flood: the sidecars work, the apps idle"
gasctl dispatch --pool "$KV_POOL" --name noop --count 4000 --id "${b}-noopflood" --rate 250 --input '{}' \
  >"${PRODUCT_DIR}/${b}.flood.log" 2>&1 &
flood_pid=$!
peak=0
flood_done() { ! kill -0 "$flood_pid" 2>/dev/null && all_complete "${b}-noopflood"; }
# Samples what the sidecars report while the flood runs (a sample a second: the sidecar smooths over seconds).
deadline=$((SECONDS + 120))
until flood_done; do
  peak="$(larger "$peak" "$(max_reported_cpu)")"
  [ "$SECONDS" -lt "$deadline" ] || fail "the noop flood did not complete in 120 s"
  sleep 1
done
wait "$flood_pid" || fail "the flood's dispatches were not all acknowledged: $(tail -3 "${PRODUCT_DIR}/${b}.flood.log")"
echo "RESULT noop_flood_peak_reported_cpu_ratio=${peak}"
# What the kubelet measured over the flood (metrics-server's last window): the sidecars far above their own request
# (50m), the apps low. A sidecar that measured itself would have reported the first.
top="$(kc top pods -n "$POOLS_NS" --containers)"
echo "$top"
top_ratio() { # CONTAINER REQUEST_MILLI: the highest usage/request among the pods
  awk -v c="$1" -v r="$2" '$2 == c { v = $3; sub(/m$/, "", v); if (v / r > m) m = v / r } END { printf "%.3f", m }' <<<"$top"
}
sidecar_self="$(top_ratio gasoline-worker 50)"
app_ratio="$(top_ratio app 100)"
echo "RESULT noop_flood_kubelet_sidecar_ratio=${sidecar_self} app_ratio=${app_ratio}"
awk -v p="$peak" -v s="$sidecar_self" 'BEGIN { exit !(s > 1 && p < s / 2) }' ||
  fail "under the noop flood the sidecars reported ${peak} while their own container ran at ${sidecar_self} of its request: they do not measure the app alone"
check_history 4000 "${b}-noopflood"

# The burn: ~0.5 CPU in all (10 workflows/s x 2 steps x 25 ms), 5 times the HPA's target for 2 pods (50 % of 100m
# each): it wants more than the 4 pods it may have.
shed_before="$(kv_metric gasoline_kv_shed_workflows_total)"
info "burn load: 10 workflows/s of 2 x 25 ms CPU each (kv shed counter ${shed_before})"
gasctl dispatch --pool "$KV_POOL" --name burn --count 1200 --id "${b}-burn" --rate 10 \
  --input '{"cpu_ms": 25, "steps": 2}' >"${PRODUCT_DIR}/${b}.dispatch.log" 2>&1 &
load_pid=$!
trap 'kill "$load_pid" 2>/dev/null || true' EXIT

burn_peak=0
scaled_out() {
  local v
  v="$(max_reported_cpu)"
  burn_peak="$(larger "$burn_peak" "$v")"
  [ "$(hpa_desired)" -gt "$min_replicas" ] && [ "$(ready_pool_pods | wc -l)" -gt "$min_replicas" ]
}
t0=$SECONDS
if ! (wait_until "the HPA scales the pool out on the app's real CPU" 150 scaled_out); then
  kc -n "$POOLS_NS" get hpa,deploy,pods -o wide >&2
  kc -n "$POOLS_NS" describe hpa "$POOL" | tail -8 >&2
  kc top pods -n "$POOLS_NS" --containers >&2 || true
  fail "the pool did not scale out"
fi
echo "RESULT scale_out_seconds=$((SECONDS - t0)) hpa_desired=$(hpa_desired)"
kc -n "$POOLS_NS" get hpa "$POOL"
kc top pods -n "$POOLS_NS" --containers || true

shed_rising() { [ "$(kv_metric gasoline_kv_shed_workflows_total)" -gt "$shed_before" ]; }
wait_until "the hot pods shed work (gasoline_kv_shed_workflows_total rises above ${shed_before})" 90 shed_rising
hot() { burn_peak="$(larger "$burn_peak" "$(max_reported_cpu)")"; awk -v p="$burn_peak" 'BEGIN { exit !(p >= 0.5) }'; }
wait_until "a sidecar reports its app at or above 50 % of its CPU request" 60 hot
echo "RESULT burn_peak_reported_cpu_ratio=${burn_peak} noop_flood_peak=${peak} shed_total=$(kv_metric gasoline_kv_shed_workflows_total)"
# The sidecars' own CPU fell under the burn (fewer, slower steps) while the app's rose: what they report rose with it.
awk -v f="$peak" -v b="$burn_peak" 'BEGIN { exit !(b > f) }' ||
  fail "the sidecars reported less under the burn (${burn_peak}) than under the noop flood (${peak}): they do not follow the app's CPU"

wait "$load_pid" || fail "the burn dispatches were not all acknowledged: $(tail -3 "${PRODUCT_DIR}/${b}.dispatch.log")"
# The scale-in happens under a trickle (below the HPA's target for the minimum), so the removed pods hold work
# when they get their SIGTERM: a drained pod finishes or hands back what it holds, so the kv reclaims no lease
# (a lease reclaimed after its timeout, or released as an orphan, would mean a pod stopped without draining).
reclaimed_before="$(( $(kv_metric gasoline_kv_reclaimed_leases_total) + $(kv_metric gasoline_kv_orphaned_leases_released_total) ))"
gasctl dispatch --pool "$KV_POOL" --name burn --count 240 --id "${b}-trickle" --rate 2 \
  --input '{"cpu_ms": 20, "steps": 2}' >"${PRODUCT_DIR}/${b}.trickle.log" 2>&1 &
load_pid=$!
info "burn stopped, a trickle runs; waiting for the scale-in"
peak_pods="$(kc -n "$POOLS_NS" get deploy "$POOL" -o jsonpath='{.spec.replicas}')"
t0=$SECONDS
if ! (wait_until "the pool scales back in to ${min_replicas} pods" 240 at_min); then
  kc -n "$POOLS_NS" describe hpa "$POOL" | tail -20 >&2
  fail "the pool did not scale in"
fi
echo "RESULT scale_in_seconds=$((SECONDS - t0)) from=${peak_pods} to=${min_replicas} max=${max_replicas}"
wait "$load_pid" || fail "the trickle's dispatches were not all acknowledged: $(tail -3 "${PRODUCT_DIR}/${b}.trickle.log")"
trap - EXIT
wait_until "every burn workflow complete" 300 all_complete "${b}-burn" "${b}-trickle"
reclaimed_after="$(( $(kv_metric gasoline_kv_reclaimed_leases_total) + $(kv_metric gasoline_kv_orphaned_leases_released_total) ))"
[ "$reclaimed_after" = "$reclaimed_before" ] ||
  fail "the kv reclaimed $((reclaimed_after - reclaimed_before)) leases during the scale-in: a removed pod did not drain"
info "ok: the scale-in from ${peak_pods} pods drained every removed pod (no lease reclaimed)"
check_history 1200 "${b}-burn"
check_history 240 "${b}-trickle"
info "ok: step 5 on real pods"
