#!/usr/bin/env bash
# The main job, locally: 3 gasoline-kv replicas (Raft) and a fleet of real gasoline-worker sidecars, each with the
# example app, running a workload (noop, sleep and order workflows) with live progress, a kill -9 of one worker a
# third of the way in plus a replacement, a drain of the fleet, and a summary (completed, duplicate commits,
# takeover time, shares). Ctrl-C stops everything; logs stay in $GASOLINE_RUN_DIR (default /tmp/gasoline-run).
#
#   ./hack/run.sh [--workers N] [--workflows M] [--duration SECONDS] [--kv-replicas 1|3] [--real-cgroup]
#   ./hack/run.sh --kubernetes [--workflows N] [--rate R] [--keep]   (the product on a real node: run-kubernetes.sh)
#
#   --kv-replicas   1 runs a single kv replica (default 3; GASOLINE_KV_REPLICAS sets it too)
#   --real-cgroup   report this host's cgroup CPU to the kv (on a busy shared machine that triggers load shedding)
#   --simulated     simulated workers (gasoline-bench sim) talking to the kv directly, instead of real sidecars
set -euo pipefail
cd "$(dirname "$0")/.."

# On Kubernetes: a real node, the chart, a pool and a workload (hack/run-kubernetes.sh --help).
if [ "${1:-}" = --kubernetes ]; then
  shift
  exec ./hack/run-kubernetes.sh "$@"
fi

workers=4
workflows=600
duration=20
kv_replicas="${GASOLINE_KV_REPLICAS:-auto}"
extra=()
simulated=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --workflows) workflows="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --kv-replicas) kv_replicas="$2"; shift 2 ;;
    --real-cgroup) extra+=(--real-cgroup); shift ;;
    --simulated) simulated=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

./hack/deps.sh
./hack/build.sh gasoline-kv gasctl gasoline-bench gasoline-worker gasoline-example-app >/dev/null
echo "run.sh: built build/bin/gasoline-kv, gasoline-worker, gasoline-example-app, gasctl, gasoline-bench"

dir="${GASOLINE_RUN_DIR:-/tmp/gasoline-run}"
rm -rf "$dir"
mkdir -p "$dir"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$dir/token"
port="${GASOLINE_KV_PORT:-7400}"
metrics_port="${GASOLINE_METRICS_PORT:-9400}"

pids=()
cleanup() {
  trap - EXIT INT TERM
  # Our own children first (the kv replicas, the fleet driver), then every sidecar and app the driver started: it
  # lists them in $dir/pids, and each runs in its own process group, so Ctrl-C alone does not reach them.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -f "$dir/pids" ]; then
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$dir/pids"
  fi
  echo "run.sh: stopped everything; logs in $dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_port_file() {  # file pid log
  for _ in $(seq 1 100); do
    [ -f "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { echo "run.sh: gasoline-kv failed to start:"; tail -5 "$3"; exit 1; }
    sleep 0.1
  done
  echo "run.sh: gasoline-kv did not start in 10 s:"; tail -5 "$3"; exit 1
}

# auto: 3 replicas, unless this gasoline-kv was built without Raft (no --raft-id in its --help); then 1.
if [ "$kv_replicas" = auto ]; then
  if build/bin/gasoline-kv --help 2>/dev/null | grep -q -- '--raft-id'; then kv_replicas=3; else kv_replicas=1; fi
fi
kv_addresses=""
if [ "$kv_replicas" = 3 ]; then
  # The replicas prove to each other that they hold this secret before exchanging Raft messages.
  head -c 32 /dev/urandom | base64 | tr -d '/+=' > "$dir/raft-secret"
  peers=()
  for i in 1 2 3; do peers+=(--peer "$i=127.0.0.1:$((port + 100 + i)),127.0.0.1:$((port + i - 1))"); done
  for i in 1 2 3; do
    build/bin/gasoline-kv --data-dir "$dir/kv-$i" --token-file "$dir/token" --listen "127.0.0.1:$((port + i - 1))" \
      --metrics-listen "127.0.0.1:$((metrics_port + i - 1))" --port-file "$dir/kv-$i.port" \
      --raft-id "$i" --raft-secret-file "$dir/raft-secret" "${peers[@]}" >"$dir/kv-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3; do wait_for_port_file "$dir/kv-$i.port" "${pids[$((i - 1))]}" "$dir/kv-$i.log"; done
  kv_addresses="127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
  echo "run.sh: 3 gasoline-kv replicas on $kv_addresses (logs: $dir/kv-*.log)"
else
  build/bin/gasoline-kv --data-dir "$dir/kv-0" --token-file "$dir/token" --listen "127.0.0.1:$port" \
    --metrics-listen "127.0.0.1:$metrics_port" --port-file "$dir/kv-0.port" >"$dir/kv-0.log" 2>&1 &
  pids+=($!)
  wait_for_port_file "$dir/kv-0.port" "${pids[0]}" "$dir/kv-0.log"
  kv_addresses="127.0.0.1:$port"
  echo "run.sh: gasoline-kv on $kv_addresses (metrics: http://127.0.0.1:$metrics_port/metrics, logs: $dir/kv-0.log)"
fi
echo "run.sh: try in another shell: GASOLINE_TOKEN_FILE=$dir/token build/bin/gasctl --kv ${kv_addresses} watch demo"
echo "         (or ... status, ... workers)"

if [ "$simulated" = 1 ]; then
  build/bin/gasoline-bench sim --kv "${kv_addresses%%,*}" --token-file "$dir/token" --workers "$workers" \
    --workflows "$workflows" --duration "$duration" &
else
  # The driver starts the sidecars and apps (pids in $dir/pids), dispatches, prints progress every second, kills
  # one worker with kill -9 a third of the way in and starts a replacement, then drains the fleet.
  build/bin/gasoline-bench fleet --demo --kv "$kv_addresses" --token-file "$dir/token" --pool demo \
    --workers "$workers" --workflows "$workflows" --duration "$duration" --run-dir "$dir/fleet" \
    ${extra[@]+"${extra[@]}"} &
fi
driver=$!
pids+=("$driver")
wait "$driver"
