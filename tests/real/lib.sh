# shellcheck shell=bash
# Shared helpers for the real-node tests (sourced). The node comes from `hack/cluster.sh up --real`
# (fixture real.up); every client runs inside the node's network namespace (`hack/cluster.sh exec`),
# because the pod and Service addresses do not exist in the host's namespace.
set -euo pipefail

TESTS_REAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER_SH="${CLUSTER_SH:-$(cd "${TESTS_REAL_DIR}/../.." && pwd)/hack/cluster.sh}"
# ctest's SKIP_RETURN_CODE for these tests.
SKIP=77

fail() { echo "FAIL: $*" >&2; exit 1; }
info() { echo "[$(date +%H:%M:%S)] $*"; }

# skip_unless_real: exits with SKIP (and the reason) when this machine cannot run the real node.
skip_unless_real() {
  local why
  if ! why="$("$CLUSTER_SH" can-real)"; then
    echo "SKIP: ${why}"
    exit "$SKIP"
  fi
}

require_node() {
  skip_unless_real
  "$CLUSTER_SH" built --real >/dev/null || fail "the real node is not built: run 'hack/cluster.sh build --real' (hack/test.sh does)"
  [ "$(cat "${GASOLINE_CLUSTER_DIR:-/tmp/gasoline-cluster}/mode" 2>/dev/null)" = real ] ||
    fail "no real node in ${GASOLINE_CLUSTER_DIR:-/tmp/gasoline-cluster}: the fixture real.up did not run or failed"
}

# kc ARGS...: kubectl inside the node's namespace.
kc() { "$CLUSTER_SH" exec kubectl "$@"; }
# in_node CMD...: any command inside the node's namespace.
in_node() { "$CLUSTER_SH" exec "$@"; }

# wait_until DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND (every 0.5 s) until it succeeds;
# fails the test with the description after the deadline.
wait_until() {
  local what="$1" timeout="$2" start=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - start)) -lt "$timeout" ] || fail "timed out after ${timeout}s waiting for: ${what}"
    sleep 0.5
  done
  info "ok: ${what} ($((SECONDS - start))s)"
}

# new_namespace PREFIX: a fresh namespace in $ns, deleted (without waiting) when the test exits.
new_namespace() {
  ns="$1-$(date +%s)-$$"
  kc create namespace "$ns" >/dev/null
  # shellcheck disable=SC2064  # expand now: the trap must name this namespace
  trap "'$CLUSTER_SH' exec kubectl delete namespace '$ns' --wait=false >/dev/null 2>&1 || true" EXIT
  info "namespace ${ns}"
}

pod_phase() { kc -n "$ns" get pod "$1" -o jsonpath='{.status.phase}'; }
pod_phase_is() { [ "$(pod_phase "$1")" = "$2" ]; }
pod_ready() { [ "$(kc -n "$ns" get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }

# describe_pod NAME: what went wrong (for failure messages).
describe_pod() { kc -n "$ns" describe pod "$1" | tail -25 >&2 || true; }

# container_pid POD CONTAINER: the host pid of a running container's main process (from containerd).
container_pid() {
  local id
  id="$(kc -n "$ns" get pod "$1" -o jsonpath="{.status.containerStatuses[?(@.name==\"$2\")].containerID}")"
  id="${id#containerd://}"
  [ -n "$id" ] || return 1
  "$CLUSTER_SH" ctr tasks ls 2>/dev/null | awk -v id="$id" '$1 == id && $3 == "RUNNING" { print $2 }'
}

# in_node_dns CMD...: CMD inside the node's namespace resolving names with the cluster's DNS (CoreDNS on
# the node IP), as a pod does. A private mount namespace carries its own /etc/resolv.conf; the host's
# file is not touched.
in_node_dns() {
  local conf
  conf="$(mktemp)"
  printf 'nameserver %s\nsearch %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' \
    "${GASOLINE_REAL_NODE_IP:-10.88.0.1}" "${ns:-default}" >"$conf"
  # shellcheck disable=SC2016  # expanded by the inner shell
  "$CLUSTER_SH" exec unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$conf" "$@"
  local rc=$?
  rm -f "$conf"
  return $rc
}

# Our images' tag: the chart's appVersion (hack/images.sh tags with it).
IMAGE_TAG="$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "${TESTS_REAL_DIR}/../../charts/gasoline/Chart.yaml")"
# The chart's container hardening, for every test container.
HARDENED='securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}'

# apply_kv: a single gasoline-kv pod "kv" (no token, data on an emptyDir, /metrics on 9400 as the
# readiness probe) and its Service "kv" (7400, 9400) in $ns.
apply_kv() {
  kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: kv, labels: {app: kv}}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: kv
    image: gasoline/gasoline-kv:${IMAGE_TAG}
    imagePullPolicy: Never
    args: [--listen=0.0.0.0:7400, --data-dir=/data/kv, --allow-unauthenticated, --metrics-listen=0.0.0.0:9400]
    ports: [{name: kv, containerPort: 7400}, {name: metrics, containerPort: 9400}]
    readinessProbe: {httpGet: {path: /metrics, port: metrics}, periodSeconds: 1}
    volumeMounts: [{name: data, mountPath: /data}]
    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 500m, memory: 256Mi}}
    ${HARDENED}
  volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: kv}
spec:
  selector: {app: kv}
  ports: [{name: kv, port: 7400}, {name: metrics, port: 9400}]
YAML
}
