#!/usr/bin/env bash
# The main job on Kubernetes, as users run the product: a real node (kube-apiserver, kubelet, containerd, runc, in
# its own network namespace with no route off the machine), our images, `helm install` of the chart, a pool of the
# example app, and a workload with live progress: `kubectl get gwp`, the HPA's replicas, completed workflows.
# A third of the way in one worker pod is force-deleted; then a CPU burn makes the HPA scale the pool out. The
# summary gives completions, step counts checked against the kv (duplicates), the takeover time and the HPA's
# replicas over time. Everything is torn down on exit (Ctrl-C too). Needs root (see docs/cluster.md).
#
#   ./hack/run.sh --kubernetes [--workflows N] [--rate R] [--keep]
#
#   --workflows  workflows of the mixed workload (noop, sleep, order with its payment; default 2000)
#   --rate       dispatches per second (default 100)
#   --keep       leave the node running at the end (hack/cluster.sh down with GASOLINE_CLUSTER_DIR removes it)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

workflows=2000
rate=100
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workflows) workflows="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh --kubernetes: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "run.sh: $*"; }
export GASOLINE_CLUSTER_DIR="${GASOLINE_RUN_DIR:-/tmp/gasoline-run-k8s}/node"
export GASOLINE_IMAGES_DIR="${ROOT}/build/images"
export GASOLINE_BIN_DIR="${ROOT}/build/bin"
export CLUSTER_SH="${ROOT}/hack/cluster.sh"

if ! why="$("$CLUSTER_SH" can-real)"; then
  echo "run.sh --kubernetes: ${why}" >&2
  echo "run.sh --kubernetes: './hack/run.sh' (without --kubernetes) runs the same product on loopback processes" >&2
  exit 3
fi
./hack/deps.sh
say "building the binaries (build/bin)"
./hack/build.sh gasoline-kv gasoline-worker gasoline-operator gasoline-gateway gasoline-example-app gasctl >/dev/null
say "building the real node's components from Go modules (cached in ~/.cache/gasoline; the first time takes 20-40 min)"
"$CLUSTER_SH" build --real
say "writing the images (build/images)"
./hack/images.sh --bin-dir "$GASOLINE_BIN_DIR" --out "$GASOLINE_IMAGES_DIR" | tail -1

mkdir -p "$(dirname "$GASOLINE_CLUSTER_DIR")"
pids=()
teardown() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$keep" = 1 ]; then
    say "the node keeps running: GASOLINE_CLUSTER_DIR=${GASOLINE_CLUSTER_DIR} hack/cluster.sh exec kubectl get gwp -A"
    say "remove it with: GASOLINE_CLUSTER_DIR=${GASOLINE_CLUSTER_DIR} hack/cluster.sh down"
  else
    say "tearing the node down"
    "$CLUSTER_SH" down >/dev/null 2>&1 || "$CLUSTER_SH" down
  fi
}
trap teardown EXIT
trap 'exit 130' INT TERM
say "starting the real node"
"$CLUSTER_SH" down >/dev/null 2>&1 || true
"$CLUSTER_SH" up --real

# helm install, the pool, and the checks a new user would make (tests/real/product_install_test.sh).
bash tests/real/product_install_test.sh
# shellcheck source=../tests/real/product_lib.sh
. "${ROOT}/tests/real/product_lib.sh"

run="$(date +%s)"
p="demo${run}"
timeline="$(mktemp)"
progress() { # LABEL PREFIX...: one status line
  local completed replicas ready act hpa
  completed="$(gasctl list --pool "$KV_POOL" --status complete --limit 10000 -o json 2>/dev/null |
    jq --args "${JQ_PREFIXED}"'[.workflows[] | select((.parent_id // "") == "") | prefixed] | length' "${@:2}" || echo '?')"
  replicas="$(gwp_field '{.status.replicas}' 2>/dev/null || echo '?')"
  ready="$(gwp_field '{.status.readyReplicas}' 2>/dev/null || echo '?')"
  act="$(gwp_field '{.status.activeWorkers}' 2>/dev/null || echo '?')"
  hpa="$(kc -n "$POOLS_NS" get hpa "$POOL" -o jsonpath='{.status.currentReplicas}->{.status.desiredReplicas}' 2>/dev/null || echo '?')"
  echo "$(date +%T) $1 ${hpa}" >>"$timeline"
  printf '[%s] %-8s completed %6s   gwp: replicas %s ready %s active %s   hpa %s\n' "$(date +%T)" "$1" "$completed" "$replicas" "$ready" "$act" "$hpa"
}

say "workload: ${workflows} workflows (noop, sleep 2x500 ms, order + payment) at up to ${rate}/s through ${KV_CLIENT}"
n_sleep=$((workflows / 4)) n_order=$((workflows / 10))
n_noop=$((workflows - n_sleep - n_order))
gasctl dispatch --pool "$KV_POOL" --name noop --count "$n_noop" --id "${p}-noop" --rate "$rate" --input '{}' >/dev/null 2>&1 &
pids+=($!)
dispatchers=($!)
# Each sleep step also takes the app 150 ms (simulated slow work), so the pods hold leases when one is killed.
gasctl dispatch --pool "$KV_POOL" --name sleep --count "$n_sleep" --id "${p}-sleep" --rate "$((rate / 4 + 1))" \
  --input '{"ms": 500, "times": 2, "work_ms": 150}' >/dev/null 2>&1 &
pids+=($!)
dispatchers+=($!)
orders="$(mktemp)"
for i in $(seq 0 $((n_order - 1))); do
  printf '{"id": "%s-order-%d", "name": "order", "input": {"payment_timeout_ms": 120000}}\n' "$p" "$i"
done >"$orders"
gasctl dispatch --pool "$KV_POOL" --from-file "$orders" >/dev/null
for i in $(seq 0 $((n_order - 1))); do gasctl signal "${p}-order-${i}" --name payment --body '{"card": "4242"}' >/dev/null; done
rm -f "$orders"

killed="" takeover_ms="" held=/dev/null start=$SECONDS
# Done once every dispatch was sent (the dispatchers exited) and everything sent completed.
dispatching() { local d; for d in "$@"; do kill -0 "$d" 2>/dev/null && return 0; done; return 1; }
until ! dispatching "${dispatchers[@]}" && all_complete "${p}-noop" "${p}-sleep" "${p}-order"; do
  progress mixed "${p}-noop" "${p}-sleep" "${p}-order"
  if [ -z "$killed" ] && [ $((SECONDS - start)) -ge 4 ]; then
    killed="$(pool_pods | head -1)"
    held="$(mktemp)"
    leased_by "$killed" >"$held" || true
    t0="$(now_ms)"
    kc -n "$POOLS_NS" delete pod "$killed" --grace-period=0 --force >/dev/null 2>&1
    say "force-deleted worker pod ${killed} holding $(wc -l <"$held") leases"
  fi
  if [ -n "$killed" ] && [ -z "$takeover_ms" ] && progressed "$held"; then
    takeover_ms=$(($(now_ms) - t0))
    say "the $(wc -l <"$held") workflows ${killed} held went on elsewhere after ${takeover_ms} ms"
  fi
  [ $((SECONDS - start)) -lt 600 ] || { say "the workload did not complete in 10 minutes"; exit 1; }
  sleep 1
done
progress mixed "${p}-noop" "${p}-sleep" "${p}-order"
mixed_seconds=$((SECONDS - start))
check_history "$workflows" "${p}-noop" "${p}-sleep" "${p}-order"

say "CPU burn: 10 workflows/s of 40 ms CPU each for 60 s; the HPA scales on the app container's real CPU"
gasctl dispatch --pool "$KV_POOL" --name burn --count 600 --id "${p}-burn" --rate 10 --input '{"cpu_ms": 40}' >/dev/null 2>&1 &
pids+=($!)
burner=$!
start=$SECONDS
until { ! dispatching "$burner" && all_complete "${p}-burn"; } || [ $((SECONDS - start)) -ge 240 ]; do
  progress burn "${p}-burn"
  sleep 2
done
progress burn "${p}-burn"
check_history 600 "${p}-burn"

echo
say "summary"
echo "  mixed workload: ${workflows} workflows complete in ${mixed_seconds}s, every step committed once (kv step counts checked)"
echo "  takeover after force-deleting ${killed} (holding $(wc -l <"$held") leases): ${takeover_ms:-not measured} ms"
echo "  burn: 600 workflows complete; HPA replicas (current->desired) over time:"
awk '$2 == "burn" { print $3 }' "$timeline" | uniq -c | awk '{ printf "    %s for %d samples\n", $2, $1 }'
kc -n "$POOLS_NS" get gwp,hpa
rm -f "$timeline"
