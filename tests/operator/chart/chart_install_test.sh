#!/usr/bin/env bash
# operator.chart_install: charts/gasoline installs into the real API server (the gasoline_cluster fixture; kwok
# runs the pods, so images are never pulled): every object is accepted, the operator Deployment and the kv
# StatefulSet become ready, the CRD from crds/ is Established, the operator's RBAC grants exactly what it should
# (kubectl auth can-i as its ServiceAccount), the kv token survives `helm upgrade` (lookup), samplePool.enabled
# installs the sample pool, and `helm uninstall` removes everything but the CRD.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../../cluster/lib.sh
source "${REPO_ROOT}/tests/cluster/lib.sh"

wait_until "no terminating GasolineWorkerPool CRD" 90 crd_settled
crd_existed=false
kubectl get crd "$CRD_NAME" >/dev/null 2>&1 && crd_existed=true
ns="gasoline-chart-$(date +%s)-$$"
pool_ns="${ns}-pools"
release=gasoline
cleanup() {
  helm uninstall "$release" -n "$ns" --wait=false >/dev/null 2>&1 || true
  kubectl delete namespace "$ns" "$pool_ns" --wait=false >/dev/null 2>&1 || true
  # Waits until it is gone: the next test of the fixture may apply it again, which fails while it terminates.
  $crd_existed || kubectl delete crd "$CRD_NAME" --ignore-not-found --timeout=90s >/dev/null 2>&1 || true
  cleanup_work
}
trap cleanup EXIT
kubectl create namespace "$ns" >/dev/null
info "namespace ${ns}"
k() { kubectl -n "$ns" "$@"; }

# No StorageClass/provisioner in the test cluster: the kv uses emptyDir here.
quiet_helm install "$release" "$CHART" -n "$ns" --set kv.persistence.enabled=false --wait --timeout 180s \
  >"${CHART_WORK}/install.out" || { cat "${CHART_WORK}/install.out"; fail "helm install failed"; }
info "helm install ok"
grep -qF "kubectl -n ${ns} get gwp" "${CHART_WORK}/install.out" || fail "helm install did not print NOTES.txt"

[ "$(kubectl get crd "$CRD_NAME" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ] ||
  fail "the chart's CRD is not Established"
ready() {  # ready KIND NAME WANT
  [ "$(k get "$1" "$2" -o jsonpath='{.status.readyReplicas}')" = "$3" ]
}
# The chart's ValidatingAdmissionPolicy refuses a pool naming another namespace's kv pool (the CRD's rules cannot
# see metadata.namespace), and admits one of its own namespace. Policies take a moment to become active.
pool_with_kv_pool() {  # pool_with_kv_pool KV_POOL: a server-side dry run, so nothing is stored
  printf 'apiVersion: gasoline.dev/v1alpha1\nkind: GasolineWorkerPool\nmetadata: {name: policy-probe}\nspec:\n  workflows: [a]\n  kv: {pool: "%s"}\n  template: {spec: {containers: [{name: a, image: b}]}}\n' "$1" |
    kubectl -n "$ns" apply --dry-run=server -f - 2>&1
}
policy_refuses() {
  pool_with_kv_pool other-namespace.victim >"${CHART_WORK}/policy.out" || true
  grep -qF "spec.kv.pool must start with \"${ns}.\"" "${CHART_WORK}/policy.out"
}
policy_deadline=$((SECONDS + 60))
until policy_refuses; do
  [ "$SECONDS" -lt "$policy_deadline" ] ||
    fail "the pool admission policy did not refuse another namespace's kv pool within 60 s: $(cat "${CHART_WORK}/policy.out")"
  sleep 0.5
done
pool_with_kv_pool "${ns}.own" >/dev/null || fail "the pool admission policy refused a kv pool of the pool's own namespace"
info "ok: the pool admission policy keeps spec.kv.pool within the namespace"

wait_until "operator Deployment 2/2 ready" 120 ready deployment gasoline-operator 2
wait_until "kv StatefulSet 3/3 ready" 120 ready statefulset gasoline-kv 3
pods="$(k get pods -l app.kubernetes.io/component=kv -o jsonpath='{.items[*].metadata.name}')"
[ "$pods" = "gasoline-kv-0 gasoline-kv-1 gasoline-kv-2" ] || fail "kv pods '${pods}'"
headless="$(k get svc gasoline-kv -o jsonpath='{.spec.clusterIP}/{.spec.publishNotReadyAddresses}')"
[ "$headless" = "None/true" ] || fail "headless kv Service: ${headless}"

token_of() { k get secret gasoline-kv-token -o jsonpath='{.data.token}' | base64 -d; }
token="$(token_of)"
[ "${#token}" -eq 48 ] || fail "kv token is ${#token} characters, want 48"
raft_secret_of() { k get secret gasoline-kv-raft -o jsonpath='{.data.secret}' | base64 -d; }
# The kv's TLS certificate and CA (chart-made): replaced on upgrade, every sidecar would distrust the kv.
tls_of() { k get secret gasoline-kv-tls -o jsonpath='{.data.tls\.crt}/{.data.ca\.crt}'; }
raft_secret="$(raft_secret_of)"
tls="$(tls_of)"
if [ -z "${tls%%/*}" ] || [ -z "${tls#*/}" ]; then fail "no TLS certificate or CA in Secret gasoline-kv-tls"; fi
[ "${#raft_secret}" -eq 48 ] || fail "kv Raft secret is ${#raft_secret} characters, want 48"
[ "$raft_secret" != "$token" ] || fail "the Raft secret equals the client token"

# RBAC as the operator's ServiceAccount, through the API server's authorizer.
sa="system:serviceaccount:${ns}:gasoline-operator"
can() { kubectl auth can-i --as="$sa" "$@" 2>/dev/null; }
allowed=(
  "list gasolineworkerpools.gasoline.dev --all-namespaces"
  "watch gasolineworkerpools.gasoline.dev -n shop"
  "patch gasolineworkerpools.gasoline.dev --subresource=status -n shop"
  "get gasolineworkerpools.gasoline.dev --subresource=status -n shop"
  "update gasolineworkerpools.gasoline.dev --subresource=status -n shop"
  "create deployments.apps -n shop"
  "delete deployments.apps -n shop"
  "patch services -n shop"
  "create horizontalpodautoscalers.autoscaling -n shop"
  "delete poddisruptionbudgets.policy -n shop"
  "patch networkpolicies.networking.k8s.io -n shop"
  "create events -n shop"
  "patch events.events.k8s.io -n shop"
  "create leases.coordination.k8s.io -n ${ns}"
  "update leases.coordination.k8s.io -n ${ns}"
)
denied=(
  "get secrets -n ${ns}"
  "list secrets --all-namespaces"
  "update gasolineworkerpools.gasoline.dev -n shop"
  "delete gasolineworkerpools.gasoline.dev -n shop"
  "create pods -n shop"
  "delete pods -n shop"
  "create statefulsets.apps -n shop"
  "create leases.coordination.k8s.io -n shop"
  "delete leases.coordination.k8s.io -n ${ns}"
  "list nodes"
  "create clusterroles.rbac.authorization.k8s.io"
)
for a in "${allowed[@]}"; do
  # shellcheck disable=SC2086  # the words of the check are separate arguments
  [ "$(can $a)" = yes ] || fail "the operator may not: ${a}"
done
for a in "${denied[@]}"; do
  # shellcheck disable=SC2086
  [ "$(can $a)" = no ] || fail "the operator may: ${a}"
done
info "ok: RBAC (${#allowed[@]} allowed and ${#denied[@]} denied checks as ${sa})"

# The kv's ServiceAccount may verify the sidecars' ServiceAccount tokens (kv.auth.serviceAccountTokens, the
# default), and nothing else.
kv_sa="system:serviceaccount:${ns}:gasoline-kv"
[ "$(kubectl auth can-i --as="$kv_sa" create tokenreviews.authentication.k8s.io 2>/dev/null)" = yes ] ||
  fail "the kv may not create TokenReviews"
for a in "get secrets -n ${ns}" "list pods --all-namespaces" "create tokenrequests.authentication.k8s.io" \
         "create subjectaccessreviews.authorization.k8s.io" "list gasolineworkerpools.gasoline.dev --all-namespaces"; do
  # shellcheck disable=SC2086
  [ "$(kubectl auth can-i --as="$kv_sa" $a 2>/dev/null)" = no ] || fail "the kv may: ${a}"
done
[ "$(k get statefulset gasoline-kv -o jsonpath='{.spec.template.spec.serviceAccountName}/{.spec.template.spec.automountServiceAccountToken}')" = "gasoline-kv/true" ] ||
  fail "the kv pods do not run as their ServiceAccount with its token"
info "ok: the kv may create TokenReviews and nothing else"

# Upgrade: the token is kept (lookup), values change, the sample pool appears, and the token is written into a
# namespace where pools live (kv.auth.poolNamespaces), so nobody copies it by hand.
kubectl create namespace "$pool_ns" >/dev/null
quiet_helm upgrade "$release" "$CHART" -n "$ns" --reuse-values --set samplePool.enabled=true --set operator.replicas=1 \
  --set "kv.auth.poolNamespaces={${pool_ns}}" --wait --timeout 180s >/dev/null || fail "helm upgrade failed"
copied="$(kubectl -n "$pool_ns" get secret gasoline-kv-token -o jsonpath='{.data.token}' | base64 -d)"
[ "$copied" = "$token" ] || fail "the token Secret in ${pool_ns} does not hold the kv token"
info "ok: kv.auth.poolNamespaces writes the token into ${pool_ns}"
[ "$(token_of)" = "$token" ] || fail "helm upgrade replaced the kv token"
[ "$(raft_secret_of)" = "$raft_secret" ] || fail "helm upgrade replaced the Raft secret (replicas would refuse each other)"
[ "$(tls_of)" = "$tls" ] || fail "helm upgrade replaced the kv's TLS certificate or CA"
[ "$(k get deployment gasoline-operator -o jsonpath='{.spec.replicas}')" = 1 ] || fail "upgrade did not apply operator.replicas"
wf="$(k get gwp sample -o jsonpath='{.spec.workflows}/{.spec.autoscaling.maxReplicas}/{.spec.autoscaling.targetCPUUtilizationPercentage}/{.spec.sidecar.concurrency}')"
[ "$wf" = '["order","ship"]/4/50/32' ] || fail "sample pool (workflows/max/cpu/defaulted concurrency) '${wf}'"
info "ok: helm upgrade keeps the token and installs the sample pool"

# A second upgrade with the defaults again still keeps the token.
quiet_helm upgrade "$release" "$CHART" -n "$ns" --set kv.persistence.enabled=false --wait --timeout 180s >/dev/null ||
  fail "second helm upgrade failed"
[ "$(token_of)" = "$token" ] || fail "the second helm upgrade replaced the kv token"
[ "$(raft_secret_of)" = "$raft_secret" ] || fail "the second helm upgrade replaced the Raft secret"
[ "$(tls_of)" = "$tls" ] || fail "the second helm upgrade replaced the kv's TLS certificate or CA"
k get gwp sample >/dev/null 2>&1 && fail "samplePool.enabled=false did not remove the sample pool"
kubectl -n "$pool_ns" get secret gasoline-kv-token >/dev/null 2>&1 &&
  fail "the token Secret stayed in ${pool_ns} after it left kv.auth.poolNamespaces"

quiet_helm uninstall "$release" -n "$ns" --wait --timeout 120s >/dev/null || fail "helm uninstall failed"
left="$(k get deployment,statefulset,service,secret,pdb,serviceaccount,role,rolebinding -l app.kubernetes.io/instance=$release -o name)"
[ -z "$left" ] || fail "left after uninstall: ${left}"
kubectl get clusterrole gasoline-operator >/dev/null 2>&1 && fail "ClusterRole left after uninstall"
kubectl get clusterrole gasoline-kv-token-review >/dev/null 2>&1 && fail "the kv's ClusterRole left after uninstall"
kubectl get crd "$CRD_NAME" >/dev/null || fail "helm uninstall removed the CRD (crds/ must be kept)"
info "ok: helm uninstall removes the release's objects and keeps the CRD"
info "PASS operator.chart_install"
