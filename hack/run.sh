#!/usr/bin/env bash
# The main job, locally: a gasoline-kv and a fleet of workers running a workload with live progress, a worker
# crash midway, and a summary. Until the gasoline-worker sidecar lands, the workers are simulated (threads that
# speak the sidecar's protocol to the kv).
#
#   ./hack/run.sh [--workers N] [--workflows M] [--duration SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

workers=4
workflows=600
duration=20
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --workflows) workflows="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

./hack/deps.sh
./hack/build.sh gasoline-kv gasctl gasoline-bench >/dev/null
echo "run.sh: built build/bin/gasoline-kv, gasctl, gasoline-bench"

dir="${GASOLINE_RUN_DIR:-/tmp/gasoline-run}"
rm -rf "$dir"
mkdir -p "$dir"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$dir/token"
port="${GASOLINE_KV_PORT:-7400}"
metrics_port="${GASOLINE_METRICS_PORT:-9400}"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "run.sh: stopped everything; logs in $dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build/bin/gasoline-kv --data-dir "$dir/kv-0" --token-file "$dir/token" --listen "127.0.0.1:$port" \
  --metrics-listen "127.0.0.1:$metrics_port" --port-file "$dir/kv-0.port" >"$dir/kv-0.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  [ -f "$dir/kv-0.port" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "run.sh: gasoline-kv failed to start:"; tail -5 "$dir/kv-0.log"; exit 1; }
  sleep 0.1
done
echo "run.sh: gasoline-kv on 127.0.0.1:$port (metrics: http://127.0.0.1:$metrics_port/metrics, logs: $dir/kv-0.log)"
echo "run.sh: try in another shell: GASOLINE_TOKEN_FILE=$dir/token build/bin/gasctl workers"

build/bin/gasoline-bench sim --kv "127.0.0.1:$port" --token-file "$dir/token" --workers "$workers" \
  --workflows "$workflows" --duration "$duration" &
pids+=($!)
wait "${pids[1]}"
