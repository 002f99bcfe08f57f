# shellcheck shell=bash
# Helpers for the operator tests (sourced): the cluster helpers of tests/cluster/lib.sh plus starting the real
# gasoline-operator binary as a local process. kwok pods are fake, so the operator (like every process whose code
# must really run) runs on this machine against the test cluster's API server.
# shellcheck source=../../cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../cluster" && pwd)/lib.sh"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
OPERATOR="${GASOLINE_BIN:?GASOLINE_BIN must name the build bin dir}/gasoline-operator"
CRD="${REPO}/crds/gasoline.dev_gasolineworkerpools.yaml"
[ -x "$OPERATOR" ] || fail "no operator binary at ${OPERATOR}"
LOGDIR="${TEST_LOGDIR:-$(mktemp -d)}"
mkdir -p "$LOGDIR"

OPERATOR_PIDS=()
cleanup_operators() {
  local p
  for p in "${OPERATOR_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${OPERATOR_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}

# The test's EXIT trap: stop the operators, then delete the namespace (lib.sh's new_namespace sets its own trap;
# call new_namespace first, then this).
install_cleanup() {
  # shellcheck disable=SC2064
  trap "show_log_on_failure; cleanup_operators; kubectl delete namespace '${ns:-none}' --wait=false >/dev/null 2>&1 || true" EXIT
}

install_crd() {
  kubectl apply --server-side --force-conflicts -f "$CRD" >/dev/null
  kubectl wait --for condition=established --timeout=60s crd/gasolineworkerpools.gasoline.dev >/dev/null
}

# start_operator NAME METRICS_PORT [flags...]: starts an operator, records its pid in $OPERATOR_PID.
start_operator() {
  local name="$1" port="$2"; shift 2
  "$OPERATOR" --kubeconfig "$KUBECONFIG" --metrics-listen "127.0.0.1:${port}" \
    --probe-listen "127.0.0.1:$((port + 1))" --identity "$name" --log-level debug "$@" \
    >>"${LOGDIR}/${name}.log" 2>&1 &
  OPERATOR_PID=$!
  OPERATOR_PIDS+=("$OPERATOR_PID")
  info "started operator ${name} (pid ${OPERATOR_PID}, metrics :${port}, log ${LOGDIR}/${name}.log)"
}

# metric PORT NAME_AND_LABELS: the sum of matching samples ("gasoline_operator_writes_total" sums all labels).
metric() {
  curl -sS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }'
}

ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$(($1 + 1))/readyz")" = 200 ]; }

jp() { kubectl -n "$ns" get "$1" -o "jsonpath=$2" 2>/dev/null; }
exists() { kubectl -n "$ns" get "$1" >/dev/null 2>&1; }
gone() { ! exists "$1"; }
equals() { [ "$(jp "$1" "$2")" = "$3" ]; }

show_log_on_failure() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    local f
    for f in "${LOGDIR}"/*.log; do echo "----- last lines of $f -----"; tail -40 "$f"; done
  fi
}
