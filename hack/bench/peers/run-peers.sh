#!/usr/bin/env bash
# The peers benchmark (hack/bench.sh peers [--quick]; docs/benchmarks-peers.md): the same four workloads on
# Graphile Worker 0.17.3 + PostgreSQL 15, Restate 1.7.12, and Gasoline with 1 and 3 kv replicas, one system at a
# time. JSON lines on stdout, progress on stderr; then a chart and a markdown table.
# Benchmark-only peers are installed here, never by hack/deps.sh: postgresql-15 and python3-matplotlib with apt
# when missing, the npm packages of hack/bench/peers/package.json into build/bench-peers/.
# Only loopback; every process started here is stopped by pid, on failure too.
#   --quick        small sizes (development)
#   --systems "graphile restate gasoline-1 gasoline-3"   a subset
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
quick=()
systems=(graphile restate gasoline-1 gasoline-3)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --systems) read -r -a systems <<<"$2"; shift ;;
    *) echo "peers: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
cache="$root/build/bench-peers"
mkdir -p "$cache"
say() { echo "peers: $*" >&2; }
export SCARF_ANALYTICS=false DO_NOT_TRACK=1 NPM_CONFIG_UPDATE_NOTIFIER=false

# --- benchmark-only dependencies -------------------------------------------------------------------------------
pg_bin=/usr/lib/postgresql/15/bin
missing=()
[ -x "$pg_bin/initdb" ] || missing+=(postgresql-15)
/usr/bin/python3 -c "import matplotlib" 2>/dev/null || missing+=(python3-matplotlib)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
command -v node >/dev/null || { say "node is required (v20)"; exit 1; }
if ! cmp -s hack/bench/peers/package.json "$cache/package.json" || [ ! -d "$cache/node_modules/graphile-worker" ]; then
  say "installing the npm peers into $cache"
  cp hack/bench/peers/package.json "$cache/"
  [ -f hack/bench/peers/package-lock.json ] && cp hack/bench/peers/package-lock.json "$cache/"
  if [ -f "$cache/package-lock.json" ]; then
    (cd "$cache" && npm ci --no-audit --no-fund >&2)
  else
    (cd "$cache" && npm install --no-audit --no-fund >&2)
  fi
fi
# The scripts run from the cache dir, where node finds their packages.
cp hack/bench/peers/*.mjs "$cache/"

# --- process bookkeeping ---------------------------------------------------------------------------------------
run_dir=$(mktemp -d /tmp/gasoline-peers.XXXXXX)
chmod 755 "$run_dir"
pids=()
pg_data=""
# kill -9 of a process and its descendants, by pid (children first, while their parent still names them).
kill_tree() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$c"; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  fi
  for p in "${pids[@]}"; do kill_tree "$p"; done
  rm -rf "$run_dir"
  exit "$rc"
}
# Runs a load generator in the background (so the trap knows its pid), its JSON lines to stdout and the results.
run_load() {
  "$@" > >(tee -a "$results") &
  local p=$!
  pids+=("$p")
  wait "$p"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL refuses to run as root: the private cluster belongs to the postgres user then.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port_busy() {
  python3 -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

results="$cache/results${quick[0]:+-quick}.jsonl"
: >"$results"
started=$(date +%s)

run_graphile() {
  local rc=0
  pg_data="$run_dir/pg"
  mkdir -p "$pg_data"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pg_data"
  local port
  port=$(free_port)
  say "graphile: PostgreSQL 15 private cluster on 127.0.0.1:$port ($pg_data)"
  as_pg "$pg_bin/initdb" -D "$pg_data" -U postgres -A trust >"$run_dir/initdb.log" 2>&1
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -w -t 60 -l "$pg_data/server.log" \
    -o "-p $port -k $pg_data -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on" start >&2
  local pg_pid
  pg_pid=$(head -1 "$pg_data/postmaster.pid")
  pids+=("$pg_pid")
  run_load timeout 1200 node "$cache/graphile.mjs" run --pg "postgres://postgres@127.0.0.1:$port/postgres" \
    --pg-pid "$pg_pid" --dir "$run_dir/graphile" "${quick[@]}" || rc=$?
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >&2
  pg_data=""
  return "$rc"
}

run_restate() {
  local rc=0
  for p in 8080 9070 9080 5122; do
    if port_busy "$p"; then say "restate: 127.0.0.1:$p is in use; skipping Restate"; return 1; fi
  done
  local base="$run_dir/restate"
  mkdir -p "$base" "$run_dir/restate-events"
  say "restate: restate-server 1.7.12 on 127.0.0.1 ($base)"
  RESTATE_BIND_IP=127.0.0.1 RESTATE_LOG_FORMAT=compact RESTATE_LOG_FILTER=warn \
    "$cache/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server" \
    --base-dir "$base" --node-name n1 >"$base/server.log" 2>&1 &
  local server=$!
  pids+=("$server")
  local up=0
  for _ in $(seq 1 120); do
    if curl -fsS http://127.0.0.1:9070/health >/dev/null 2>&1 && curl -fsS http://127.0.0.1:8080/restate/health >/dev/null 2>&1; then
      up=1
      break
    fi
    sleep 0.5
  done
  if [ "$up" -ne 1 ]; then say "restate: the server did not come up; see below"; tail -20 "$base/server.log" >&2; return 1; fi
  run_load timeout 1200 node "$cache/restate.mjs" run --dir "$run_dir/restate-events" --server-pid "$server" \
    "${quick[@]}" || rc=$?
  kill -TERM "$server" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$server" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$server" 2>/dev/null || true
  return "$rc"
}

run_gasoline() {
  say "gasoline: $1 kv replica(s)"
  run_load timeout 1200 build/bin/gasoline-bench workloads --replicas "$1" "${quick[@]}"
}

failed=()
for s in "${systems[@]}"; do
  case "$s" in
    graphile) run_graphile || failed+=("$s") ;;
    restate) run_restate || failed+=("$s") ;;
    gasoline-1) run_gasoline 1 || failed+=("$s") ;;
    gasoline-3) run_gasoline 3 || failed+=("$s") ;;
    *) say "unknown system $s" ;;
  esac
done
say "all systems done in $(( $(date +%s) - started )) s; results in $results"
[ ${#failed[@]} -eq 0 ] || say "FAILED: ${failed[*]} (their lines are missing or incomplete)"

if [ ${#quick[@]} -eq 0 ]; then png=docs/peers.png; else png="$cache/peers-quick.png"; fi
/usr/bin/python3 hack/bench/peers/plot.py "$results" "$png" "$cache/peers-table${quick[0]:+-quick}.md" >&2
[ ${#failed[@]} -eq 0 ]
