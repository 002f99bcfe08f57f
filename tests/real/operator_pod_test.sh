#!/usr/bin/env bash
# gasoline-operator runs in a pod on the real node with the chart's ServiceAccount, RBAC and Deployment
# (helm template, our image): it reaches the API server through the kubernetes Service (10.96.0.1:443 ->
# kube-proxy -> the apiserver) with its projected ServiceAccount token, verifies it with the mounted CA,
# takes the leader Lease and becomes Ready once its caches synced.
. "$(dirname "$0")/lib.sh"
require_node
new_namespace real-operator
chart="${TESTS_REAL_DIR}/../../charts/gasoline"
release="op$$"

kc apply --server-side -f "${chart}/crds/" >/dev/null
in_node helm template "$release" "$chart" --namespace "$ns" --set operator.replicas=1 \
  --show-only templates/operator-serviceaccount.yaml --show-only templates/operator-rbac.yaml \
  --show-only templates/operator-deployment.yaml --show-only templates/kv-secret.yaml \
  --show-only templates/kv-tls-secret.yaml |
  kc -n "$ns" apply -f - >/dev/null
# Cluster-scoped RBAC of this release goes with the test, not with the node.
# shellcheck disable=SC2064  # expand now
trap "'$CLUSTER_SH' exec kubectl delete clusterrole,clusterrolebinding -l app.kubernetes.io/instance=${release} --wait=false >/dev/null 2>&1 || true
      '$CLUSTER_SH' exec kubectl delete namespace '$ns' --wait=false >/dev/null 2>&1 || true" EXIT

operator_pod() { kc -n "$ns" get pods -l app.kubernetes.io/component=operator -o jsonpath='{.items[0].metadata.name}'; }
wait_until "an operator pod exists" 30 operator_pod
pod="$(operator_pod)"
ready() { pod_ready "$pod"; }
if ! (wait_until "operator pod ${pod} Ready (leader, caches synced through the API)" 90 ready); then
  describe_pod "$pod"
  kc -n "$ns" logs "$pod" --tail=20 >&2 || true
  fail "the operator did not become Ready"
fi
holder() { [ "$(kc -n "$ns" get lease -o jsonpath='{.items[*].spec.holderIdentity}')" = "$pod" ]; }
wait_until "the leader Lease names ${pod}" 30 holder

sa="$(kc -n "$ns" get pod "$pod" -o jsonpath='{.spec.serviceAccountName}')"
{ [ -n "$sa" ] && [ "$sa" != default ]; } || fail "the operator pod runs as ServiceAccount '${sa}', not the chart's"
mounted="$(kc -n "$ns" get pod "$pod" -o jsonpath='{.spec.containers[0].volumeMounts[*].mountPath}')"
case " $mounted " in *" /var/run/secrets/kubernetes.io/serviceaccount "*) ;; *) fail "no ServiceAccount token mounted (${mounted})" ;; esac
exec_ok="$(kc -n "$ns" exec "$pod" -- /usr/bin/gasoline-operator --help >/dev/null 2>&1 && echo yes || echo no)"
info "ok: operator ${pod} (ServiceAccount ${sa}) is Ready and holds the Lease; kubectl exec into it: ${exec_ok}"
kc -n "$ns" logs "$pod" --tail=5 || true
