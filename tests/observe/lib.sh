# shellcheck shell=bash
# Shared helpers of the observe tests (sourced): a work dir, processes started in the background and stopped by
# pid on exit, waiting on conditions with deadlines, loopback ports chosen by the OS, the local fleet (kv
# replicas, sidecars with the example app, an operator) and the chart's rendered alert rules.
set -euo pipefail

OBSERVE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${OBSERVE_DIR}/../.." && pwd)"
CHART="${REPO_ROOT}/charts/gasoline"
BIN="${GASOLINE_BIN:-${REPO_ROOT}/build/bin}"
WORK="$(mktemp -d /tmp/gasoline-observe.XXXXXX)"
# Logs outlive a failing run there; a passing run removes everything.
KEEP_LOGS="${TEST_LOGDIR:-}"

fail() { echo "FAIL: $*" >&2; exit 1; }
info() { echo "[$(date +%H:%M:%S)] $*"; }
trap 'echo "FAIL: line ${LINENO}: command failed (rc $?): ${BASH_COMMAND}" >&2' ERR

PIDS=()
declare -A PID_NAMES=()
CLEANUP_HOOKS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local hook
  for hook in ${CLEANUP_HOOKS[@]+"${CLEANUP_HOOKS[@]}"}; do "$hook" || true; done
  # Newest first (the workload, Prometheus, the apps, then the sidecars while the kv can still take their drain,
  # the kv last), each given 10 s to stop on SIGTERM before SIGKILL: the test never leaves anything behind.
  local i pid status deadline
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    kill "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    status=0
    wait "$pid" 2>/dev/null || status=$?
    # 0 or 143 (SIGTERM) is a clean stop, 127 a process the test already reaped; anything else (a crash, SIGKILL)
    # is reported: it is a bug too, if not the one this test is about.
    if [ "$status" -ne 0 ] && [ "$status" -ne 143 ] && [ "$status" -ne 127 ]; then
      echo "WARNING: ${PID_NAMES[$pid]:-pid $pid} exited with status ${status} when stopped" >&2
    fi
  done
  if [ "$rc" -ne 0 ]; then
    local f
    for f in "$WORK"/*.log; do
      [ -f "$f" ] || continue
      echo "--- tail of $(basename "$f") ---" >&2
      tail -n 15 "$f" >&2
    done
    if [ -n "$KEEP_LOGS" ]; then
      mkdir -p "$KEEP_LOGS"
      cp -r "$WORK"/. "$KEEP_LOGS"/ 2>/dev/null || true
    fi
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in the background with its output in $WORK/NAME.log, pid kept for cleanup.
start() {
  local name="$1"; shift
  "$@" >"${WORK}/${name}.log" 2>&1 &
  PIDS+=("$!")
  PID_NAMES[$!]="$name"
}

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds or the deadline passes.
wait_until() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for: ${what}"
    sleep 0.2
  done
  info "ok: ${what}"
}

# N free loopback ports, chosen by the OS (bound and released at once: a small window for another process to
# take one, far smaller than with fixed ports on a machine shared by several test runs).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

need_binaries() {
  local b
  for b in "$@"; do [ -x "${BIN}/${b}" ] || fail "${BIN}/${b} is not built (./hack/build.sh $*)"; done
}

# helm from hack/cluster.sh (built from source), with a private home.
use_helm() {
  eval "$("${REPO_ROOT}/hack/cluster.sh" env)"
  command -v helm >/dev/null 2>&1 || fail "helm is not built: run 'hack/cluster.sh build' (hack/test.sh does this before ctest)"
  export HELM_CACHE_HOME="${WORK}/helm/cache" HELM_CONFIG_HOME="${WORK}/helm/config" HELM_DATA_HOME="${WORK}/helm/data"
}

# render_rules OUT [helm flags...]: the chart's PrometheusRule (default thresholds unless flags say otherwise) as a
# plain Prometheus rules file: its spec.
render_rules() {
  local out="$1"; shift
  helm template gasoline "$CHART" --namespace observe --set monitoring.prometheusRule.enabled=true "$@" \
    --show-only templates/monitoring-prometheusrule.yaml 2>"${WORK}/helm.err" >"${WORK}/rule.yaml" ||
    { grep -v 'found symbolic link' "${WORK}/helm.err" >&2; fail "helm template of the PrometheusRule failed"; }
  python3 - "${WORK}/rule.yaml" "$out" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["kind"] == "PrometheusRule" and doc["apiVersion"] == "monitoring.coreos.com/v1", doc.get("kind")
yaml.safe_dump(doc["spec"], open(sys.argv[2], "w"), sort_keys=False)
PY
}

# dashboard_queries OUT POOL RANGE: every panel query of the dashboard, one per line, with the Grafana variables
# replaced as Grafana would ($pool by POOL, $__rate_interval by RANGE).
dashboard_queries() {
  python3 - "${CHART}/dashboards/gasoline.json" "$1" "$2" "$3" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
out = []
for p in panels(dash["panels"]):
    for t in p.get("targets", []):
        e = t["expr"].replace("$pool", sys.argv[3]).replace("$__rate_interval", sys.argv[4])
        assert "$" not in e, f"panel {p['title']}: unreplaced variable in {e}"
        out.append(f"{p['title']}\t{e}")
assert out, "the dashboard has no queries"
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
}

# The kv token and Raft secret of the fleet.
make_secrets() {
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"${WORK}/token"
  head -c 32 /dev/urandom | base64 | tr -d '/+=' >"${WORK}/raft-secret"
}

# start_kv N: N kv replicas (1 = no Raft), client ports in KV_PORTS, metrics ports in KV_METRICS_PORTS, client
# addresses in KV_ADDRESSES (comma-separated). Waits until every replica listens.
start_kv() {
  local n="$1" i ports
  read -r -a ports <<<"$(free_ports $((3 * n)))"
  KV_PORTS=("${ports[@]:0:n}")
  KV_METRICS_PORTS=("${ports[@]:n:n}")
  local raft_ports=("${ports[@]:$((2 * n)):n}")
  local peers=()
  for ((i = 0; i < n; i++)); do
    peers+=(--peer "$((i + 1))=127.0.0.1:${raft_ports[$i]},127.0.0.1:${KV_PORTS[$i]}")
  done
  KV_ADDRESSES=""
  for ((i = 0; i < n; i++)); do
    local args=(--data-dir "${WORK}/kv-$i" --token-file "${WORK}/token" --listen "127.0.0.1:${KV_PORTS[$i]}"
                --metrics-listen "127.0.0.1:${KV_METRICS_PORTS[$i]}" --port-file "${WORK}/kv-$i.port"
                --no-fsync --retention-sweep-ms 500)
    [ "$n" -gt 1 ] && args+=(--raft-id "$((i + 1))" --raft-secret-file "${WORK}/raft-secret" "${peers[@]}")
    start "kv-$i" "${BIN}/gasoline-kv" "${args[@]}"
    KV_ADDRESSES+="${KV_ADDRESSES:+,}127.0.0.1:${KV_PORTS[$i]}"
  done
  for ((i = 0; i < n; i++)); do wait_until "kv replica $i listens" 30 test -s "${WORK}/kv-$i.port"; done
}

# gasctl ARGS...: gasctl against the fleet's kv.
gasctl() { "${BIN}/gasctl" --kv "$KV_ADDRESSES" --token-file "${WORK}/token" "$@"; }

# start_worker NAME POOL: a sidecar (admin port in ADMIN_PORTS[NAME]) and the example app on its API.
declare -A ADMIN_PORTS=()
start_worker() {
  local name="$1" pool="$2" admin
  admin="$(free_ports 1)"
  # shellcheck disable=SC2034  # read by the scripts that source this file
  ADMIN_PORTS[$name]="$admin"
  # No cgroup: this host's cgroup is the whole busy machine, and its CPU would make the workers shed at random.
  start "$name" env POD_NAME="$name" "${BIN}/gasoline-worker" --kv "$KV_ADDRESSES" --token-file "${WORK}/token" \
    --pool "$pool" --api-port 0 --port-file "${WORK}/${name}.port" --admin-listen "127.0.0.1:${admin}" \
    --ping-interval 100ms --cgroup-root "${WORK}/no-cgroup"
  wait_until "sidecar ${name} listens" 30 test -s "${WORK}/${name}.port"
  start "${name}-app" "${BIN}/gasoline-example-app" --api "127.0.0.1:$(cat "${WORK}/${name}.port")" \
    --threads 2 --batch 16 --wait-ms 1000
}

# The completed workflows of POOL, from `gasctl status` (counts by status).
completed() {
  gasctl -o json status | python3 -c 'import json, sys
pools = [p for p in json.load(sys.stdin)["pools"] if p["pool"] == sys.argv[1]]
print(pools[0]["counts"]["complete"] if pools else 0)' "$1"
}
completed_at_least() { [ "$(completed "$2")" -ge "$1" ]; }  # N POOL
