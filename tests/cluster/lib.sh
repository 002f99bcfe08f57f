# shellcheck shell=bash
# Shared helpers for the cluster tests (sourced). The cluster comes from hack/cluster.sh; the
# ctest fixture (cluster_up.sh / cluster_down.sh) starts it once for all tests of the label.
set -euo pipefail

TESTS_CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER_SH="${CLUSTER_SH:-$(cd "${TESTS_CLUSTER_DIR}/../.." && pwd)/hack/cluster.sh}"

fail() { echo "FAIL: $*" >&2; exit 1; }
info() { echo "[$(date +%H:%M:%S)] $*"; }

# Binaries missing -> a clear message instead of a confusing failure later.
"$CLUSTER_SH" built >/dev/null 2>&1 || {
  "$CLUSTER_SH" built || true
  fail "cluster binaries are not built: run 'hack/cluster.sh build' (hack/test.sh does this before ctest)"
}
eval "$("$CLUSTER_SH" env)"   # KUBECONFIG and PATH (built kubectl/helm first)
[ -f "$KUBECONFIG" ] || fail "no cluster at ${KUBECONFIG}: the ctest fixture cluster.up did not run or failed (or run 'hack/cluster.sh up --full')"

# wait_until DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND (every 0.5 s) until it
# succeeds; fails the test with the description after the deadline.
wait_until() {
  local what="$1" timeout="$2" start=$SECONDS; shift 2
  until "$@"; do
    [ $((SECONDS - start)) -lt "$timeout" ] || fail "timed out after ${timeout}s waiting for: ${what}"
    sleep 0.5
  done
  info "ok: ${what} ($((SECONDS - start))s)"
}

# new_namespace PREFIX: creates a fresh namespace, sets $ns, deletes it on exit (no waiting).
# (Not called in $(...): the EXIT trap must belong to the test's shell.)
new_namespace() {
  ns="$1-$(date +%s)-$$"
  kubectl create namespace "$ns" >/dev/null
  # shellcheck disable=SC2064  # expand now: the trap must name this namespace
  trap "kubectl delete namespace '$ns' --wait=false >/dev/null 2>&1 || true" EXIT
  info "namespace ${ns}"
}
