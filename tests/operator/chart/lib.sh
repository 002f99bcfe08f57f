# shellcheck shell=bash
# Shared helpers of the chart/CRD tests (sourced). The lint and schema tests need only the helm built by
# `hack/cluster.sh build`; the cluster tests also source tests/cluster/lib.sh (the gasoline_cluster fixture).
set -euo pipefail

CHART_TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${CHART_TESTS_DIR}/../../.." && pwd)"
CLUSTER_SH="${CLUSTER_SH:-${REPO_ROOT}/hack/cluster.sh}"
CHART="${REPO_ROOT}/charts/gasoline"
# shellcheck disable=SC2034  # used by the scripts that source this file
CRD_FILE="${REPO_ROOT}/crds/gasoline.dev_gasolineworkerpools.yaml"
# shellcheck disable=SC2034
CHART_CRD_FILE="${CHART}/crds/gasoline.dev_gasolineworkerpools.yaml"
# shellcheck disable=SC2034
CRD_NAME="gasolineworkerpools.gasoline.dev"
# shellcheck disable=SC2034
CHECK_PY="${CHART_TESTS_DIR}/check_manifests.py"

fail() { echo "FAIL: $*" >&2; exit 1; }
info() { echo "[$(date +%H:%M:%S)] $*"; }
# A failing command outside a check (set -e) names itself instead of ending the test silently.
trap 'echo "FAIL: line ${LINENO}: command failed (rc $?): ${BASH_COMMAND}" >&2' ERR

# helm and kubectl from hack/cluster.sh (built from source; the machine's kubectl may be too old).
eval "$("$CLUSTER_SH" env)"
command -v helm >/dev/null 2>&1 || fail "helm is not built: run 'hack/cluster.sh build' (hack/test.sh does this before ctest)"

# A private helm home, so the tests neither read nor write the user's repositories and caches.
CHART_WORK="$(mktemp -d)"
export HELM_CACHE_HOME="${CHART_WORK}/helm/cache" HELM_CONFIG_HOME="${CHART_WORK}/helm/config" \
       HELM_DATA_HOME="${CHART_WORK}/helm/data"
cleanup_work() { rm -rf "$CHART_WORK"; }
trap cleanup_work EXIT

# helm prints a warning on stderr for the crds/ symlink ("found symbolic link in path ... Contents of
# linked file included and used"); that is expected, every other line of stderr is shown.
quiet_helm() {
  local err="${CHART_WORK}/helm.err" rc=0
  helm "$@" 2>"$err" || rc=$?
  grep -v 'found symbolic link in path' "$err" >&2 || true
  return "$rc"
}

# expect_fail DESCRIPTION WANT_SUBSTRING COMMAND...: COMMAND must fail and print WANT_SUBSTRING (stdout or
# stderr, case-sensitive, fixed string).
expect_fail() {
  local what="$1" want="$2" out rc=0; shift 2
  out="$("$@" 2>&1)" || rc=$?
  [ "$rc" -ne 0 ] || fail "${what}: was accepted, want an error containing '${want}'; output: ${out}"
  grep -qF -- "$want" <<<"$out" || fail "${what}: error does not contain '${want}'; output: ${out}"
  info "ok: ${what} rejected: $(grep -F -- "$want" <<<"$out" | grep -v 'found symbolic link' | head -1)"
}

# An earlier test may have just deleted the CRD; applying it (or creating pools) fails while it terminates.
crd_settled() { [ -z "$(kubectl get crd "$CRD_NAME" -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null)" ]; }
