#!/usr/bin/env bash
# shellcheck disable=SC2154
# An operator restart resumes where the last one left off: with nothing changed it writes nothing (its caches
# start from a LIST and the children already match), and a change made while it was down is applied.
source "$(dirname "$0")/lib.sh"
new_namespace op-restart
install_cleanup
install_crd
PORT=18190
flags=(--namespace "$ns" --resync-seconds 3 --kv-address 127.0.0.1:1 --sidecar-image registry.invalid/gasoline:test)
start_operator first "$PORT" "${flags[@]}"
wait_until "operator ready" 60 ready "$PORT"
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata: {name: resume}
spec:
  workflows: [order]
  template: {spec: {containers: [{name: app, image: registry.invalid/app:1}]}}
  autoscaling: {enabled: false}
  replicas: 2
YAML
wait_until "Deployment with 2 replicas" 60 equals deploy/resume '{.spec.replicas}' 2
# Let the world settle (kwok makes the pods Ready, the operator writes the final status) before the restart, so
# that "nothing changed" is true.
wait_until "pool Ready with 2/2" 90 bash -c "[ \"\$(kubectl -n '$ns' get gwp/resume -o jsonpath='{.status.readyReplicas}/{.status.conditions[?(@.type==\"Ready\")].status}')\" = 2/True ]"

kill -TERM "$OPERATOR_PID"
wait_until "first operator exited" 40 bash -c "! kill -0 $OPERATOR_PID 2>/dev/null"
generation="$(jp deploy/resume '{.metadata.generation}')"

# Nothing changed: the new operator reconciles every pool once (its first LIST) and writes nothing.
start_operator second "$PORT" "${flags[@]}"
wait_until "second operator ready" 60 ready "$PORT"
wait_until "second operator reconciled the pool twice" 60 bash -c "[ \$(curl -s http://127.0.0.1:$PORT/metrics | awk 'index(\$0,\"gasoline_operator_reconciles_total\")==1 {s+=\$NF} END {print int(s)}') -ge 2 ]"
[ "$(metric "$PORT" gasoline_operator_writes_total)" = 0 ] || fail "a restarted operator rewrote unchanged objects"
[ "$(jp deploy/resume '{.metadata.generation}')" = "$generation" ] || fail "the Deployment's spec changed on restart"
info "ok: restart with nothing changed wrote nothing"

# A change made while the operator is down is applied when it comes back.
kill -TERM "$OPERATOR_PID"
wait_until "second operator exited" 40 bash -c "! kill -0 $OPERATOR_PID 2>/dev/null"
kubectl -n "$ns" patch gwp resume --type merge -p '{"spec":{"replicas":4}}' >/dev/null
start_operator third "$PORT" "${flags[@]}"
wait_until "the change made while down is applied" 60 equals deploy/resume '{.spec.replicas}' 4
info "PASS"
