#!/usr/bin/env bash
# shellcheck disable=SC2154
# The operator's watches survive an API server restart: they reconnect (resuming from their resourceVersion, or
# relisting after 410) and a pool created after the restart is reconciled without restarting the operator.
source "$(dirname "$0")/lib.sh"
new_namespace op-watch
install_cleanup
install_crd
PORT=18220
start_operator watcher "$PORT" --namespace "$ns" --kv-address 127.0.0.1:1 --sidecar-image registry.invalid/gasoline:test
wait_until "operator ready" 60 ready "$PORT"
pool() {
  kubectl -n "$ns" apply -f - <<YAML
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata: {name: $1}
spec:
  workflows: [order]
  template: {spec: {containers: [{name: app, image: registry.invalid/app:1}]}}
YAML
}
pool before >/dev/null
wait_until "pool before reconciled" 60 exists deploy/before

"$CLUSTER_SH" restart kube-apiserver
kill -0 "$OPERATOR_PID" || fail "the operator died with the API server"
pool after >/dev/null
wait_until "pool after reconciled after the restart" 90 exists deploy/after
# Only a re-established pool watch can have told the operator about "after"; the Deployment informer must
# be back too, or a hand-deleted child would never return.
kubectl -n "$ns" delete deploy before --wait=true >/dev/null
wait_until "Deployment before recreated through the re-established watches" 60 exists deploy/before
wait_until "operator still ready" 30 ready "$PORT"
info "PASS"
