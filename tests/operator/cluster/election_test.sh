#!/usr/bin/env bash
# shellcheck disable=SC2154
# Two operator replicas with leader election on a Lease: exactly one leads (and writes); after kill -9 of the
# leader the other takes over once the lease expires (15 s) and reconciles new pools.
source "$(dirname "$0")/lib.sh"
new_namespace op-election
install_cleanup
install_crd
A=18200 B=18210
flags=(--namespace "$ns" --leader-elect --leader-election-namespace "$ns" --kv-address 127.0.0.1:1
  --sidecar-image registry.invalid/gasoline:test)
start_operator alpha "$A" "${flags[@]}"; pid_a=$OPERATOR_PID
start_operator beta "$B" "${flags[@]}"; pid_b=$OPERATOR_PID
leaders() { echo $(( $(metric "$A" gasoline_operator_leader) + $(metric "$B" gasoline_operator_leader) )); }
wait_until "one leader" 60 bash -c "[ \"\$(kubectl -n '$ns' get lease gasoline-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)\" != '' ]"
holder="$(jp lease/gasoline-operator '{.spec.holderIdentity}')"
info "leader: ${holder}"
# Both replicas answer; exactly one reports itself leader, and it is the Lease's holder — checked repeatedly
# over several renewals (2 s each).
wait_until "both operators serve metrics" 30 bash -c "curl -sf http://127.0.0.1:$A/metrics >/dev/null && curl -sf http://127.0.0.1:$B/metrics >/dev/null"
renewed0="$(jp lease/gasoline-operator '{.spec.renewTime}')"
wait_until "the lease was renewed" 30 bash -c "[ \"\$(kubectl -n '$ns' get lease gasoline-operator -o jsonpath='{.spec.renewTime}')\" != '$renewed0' ]"
[ "$(leaders)" = 1 ] || fail "$(leaders) replicas report themselves leader"
case "$holder" in
  alpha) leader_pid=$pid_a leader_port=$A other_port=$B ;;
  beta) leader_pid=$pid_b leader_port=$B other_port=$A ;;
  *) fail "unexpected lease holder '${holder}'" ;;
esac
[ "$(metric "$leader_port" gasoline_operator_leader)" = 1 ] || fail "the lease holder does not report leadership"
# A standby that reaches the API server is ready (a spare); one that cannot reach it is not.
wait_until "the standby is ready" 30 ready "$other_port"
unreachable="${LOGDIR}/unreachable.kubeconfig"
sed -E 's#server: https://[^ ]+#server: https://127.0.0.1:1#' "$KUBECONFIG" >"$unreachable"
C=18220
KUBECONFIG="$unreachable" start_operator gamma "$C" "${flags[@]}"
wait_until "the cut-off standby serves probes" 30 bash -c "curl -s -o /dev/null --max-time 2 http://127.0.0.1:$((C + 1))/healthz"
wait_until "the cut-off standby says why it is not ready" 30 bash -c \
  "curl -s --max-time 2 http://127.0.0.1:$((C + 1))/readyz | grep -q 'cannot reach the API server'"
ready "$C" && fail "a standby that cannot reach the API server reports ready"
kill -TERM "$OPERATOR_PID"

kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata: {name: before}
spec:
  workflows: [order]
  template: {spec: {containers: [{name: app, image: registry.invalid/app:1}]}}
YAML
wait_until "the leader reconciles" 60 exists deploy/before
[ "$(metric "$other_port" gasoline_operator_writes_total)" = 0 ] || fail "the standby wrote"

kill -KILL "$leader_pid"
t0=$SECONDS
wait_until "the standby takes the lease" 40 bash -c "[ \"\$(kubectl -n '$ns' get lease gasoline-operator -o jsonpath='{.spec.holderIdentity}')\" != '$holder' ]"
info "takeover after $((SECONDS - t0))s (lease 15 s)"
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata: {name: after}
spec:
  workflows: [order]
  template: {spec: {containers: [{name: app, image: registry.invalid/app:1}]}}
YAML
wait_until "the new leader reconciles" 60 exists deploy/after
[ "$(metric "$other_port" gasoline_operator_leader)" = 1 ] || fail "the new leader does not report leadership"
[ "$(jp lease/gasoline-operator '{.spec.leaseTransitions}')" -ge 1 ] || fail "leaseTransitions did not count the takeover"

# A graceful stop releases the lease at once (no 15 s wait for the next replica).
kill -TERM "$( [ "$holder" = alpha ] && echo "$pid_b" || echo "$pid_a")"
wait_until "the lease is released on SIGTERM" 30 bash -c "[ -z \"\$(kubectl -n '$ns' get lease gasoline-operator -o jsonpath='{.spec.holderIdentity}')\" ]"
info "PASS"
