#!/usr/bin/env bash
# shellcheck disable=SC2154
# End to end on the full local cluster (kube-apiserver, controller-manager with GC and the HPA, scheduler, kwok
# fake pods with simulated CPU, metrics-server):
#   1. helm install the chart (CRD, operator, RBAC, the kv StatefulSet on static PersistentVolumes);
#   2. the operator runs as a local process authenticated as the chart's ServiceAccount (kwok pods are fake, so
#      the operator pod the chart created cannot run code) — which also proves the chart's RBAC is sufficient;
#   3. apply the sample pool; its pods reach Running;
#   4. the HPA scales the pool's Deployment when the app container's simulated CPU rises;
#   5. delete the pool and helm uninstall: nothing of the release is left.
# shellcheck source=../operator/cluster/lib.sh
source "$(cd "$(dirname "$0")/../operator/cluster" && pwd)/lib.sh"
ns="gasoline-e2e-$$"
release=gasoline
work="$(mktemp -d)"
# shellcheck disable=SC2064
trap "show_log_on_failure; cleanup_operators; helm uninstall '$release' -n '$ns' >/dev/null 2>&1 || true; kubectl delete namespace '$ns' --wait=false >/dev/null 2>&1 || true; kubectl delete pv -l e2e='$ns' --wait=false >/dev/null 2>&1 || true; rm -rf '$work'" EXIT
CHART="${REPO}/charts/gasoline"

# Static volumes for the kv's three PVCs (no dynamic provisioner here); the PV controller binds them.
for i in 0 1 2; do
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: ${ns}-kv-${i}, labels: {e2e: ${ns}}}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: e2e-static
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /tmp/${ns}-kv-${i}}
YAML
done

info "helm install"
helm install "$release" "$CHART" -n "$ns" --create-namespace --wait --timeout 5m \
  --set kv.persistence.storageClass=e2e-static >"${LOGDIR}/helm-install.log" 2>&1 ||
  { cat "${LOGDIR}/helm-install.log"; fail "helm install failed"; }
sed -n '1,40p' "${LOGDIR}/helm-install.log"
kubectl -n "$ns" get pods,pvc
[ "$(kubectl -n "$ns" get statefulset "${release}-kv" -o jsonpath='{.status.readyReplicas}')" = 3 ] || fail "kv not ready"
kubectl wait --for condition=established --timeout=60s crd/gasolineworkerpools.gasoline.dev >/dev/null

# The operator as the chart's ServiceAccount.
sa="$(kubectl -n "$ns" get deploy -l app.kubernetes.io/component=operator -o jsonpath='{.items[0].spec.template.spec.serviceAccountName}')"
[ -n "$sa" ] || fail "the operator Deployment names no ServiceAccount"
token="$(kubectl -n "$ns" create token "$sa" --duration 1h)"
server="$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')"
ca="$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
[ -n "$ca" ] || ca="$(base64 -w0 <"$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')")"
cat >"${work}/sa.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "${server}", certificate-authority-data: "${ca}"}}]
users: [{name: operator, user: {token: "${token}"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: operator, namespace: "${ns}"}}]
current-context: e2e
YAML
PORT=18240
"$OPERATOR" --kubeconfig "${work}/sa.kubeconfig" --leader-elect --leader-election-namespace "$ns" \
  --metrics-listen "127.0.0.1:${PORT}" --probe-listen "127.0.0.1:$((PORT + 1))" --identity e2e \
  --kv-address "${release}-kv.${ns}.svc:7400" --sidecar-image gasoline/gasoline-worker:0.1.0 \
  >>"${LOGDIR}/operator.log" 2>&1 &
OPERATOR_PIDS+=($!)
wait_until "operator (as ServiceAccount ${sa}) ready" 90 ready "$PORT"

info "apply the sample pool"
kubectl -n "$ns" apply -f "${CHART}/examples/sample-pool.yaml" >/dev/null
wait_until "the sample pool's pods Running and Ready" 120 bash -c \
  "[ \"\$(kubectl -n '$ns' get gwp sample -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
kubectl -n "$ns" get pods -l app.kubernetes.io/instance=sample -o wide
phases="$(kubectl -n "$ns" get pods -l app.kubernetes.io/instance=sample -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')"
grep -qx Running <<<"$phases" || fail "no Running pod"
# (Writes into namespaces other tests left terminating are refused with 403 as well; those are not RBAC.)
forbidden="$(grep '403 Forbidden' "${LOGDIR}/operator.log" | grep -vc 'because it is being terminated' || true)"
[ "$forbidden" = 0 ] || fail "the operator got ${forbidden} 403s with the chart's RBAC"
kubectl -n "$ns" get gwp

info "simulate CPU load on the app containers"
# New pods take the template's annotation, so keep annotating every pod of the pool until the HPA reacts.
load() {
  kubectl -n "$ns" annotate pods -l app.kubernetes.io/instance=sample --overwrite kwok.x-k8s.io/usage-cpu=400m >/dev/null 2>&1
  [ "$(kubectl -n "$ns" get deploy sample -o jsonpath='{.spec.replicas}')" -ge 3 ]
}
wait_until "the HPA scales the pool's Deployment up on CPU" 240 load
kubectl -n "$ns" get hpa sample
wait_until "the pool's status follows (replicas >= 3)" 60 bash -c \
  "[ \"\$(kubectl -n '$ns' get gwp sample -o jsonpath='{.status.replicas}')\" -ge 3 ]"
kubectl -n "$ns" get gwp sample

info "clean up: delete the pool, helm uninstall"
kubectl -n "$ns" delete gwp sample --wait=true >/dev/null
wait_until "the pool's Deployment is garbage-collected" 90 bash -c "! kubectl -n '$ns' get deploy sample >/dev/null 2>&1"
cleanup_operators
OPERATOR_PIDS=()
helm uninstall "$release" -n "$ns" --wait --timeout 3m >/dev/null
wait_until "nothing of the release is left" 90 bash -c "[ -z \"\$(kubectl -n '$ns' get deploy,sts,svc,pdb,sa,role,rolebinding -l app.kubernetes.io/instance=${release} -o name 2>/dev/null)\" ]"
[ -z "$(kubectl get clusterrole,clusterrolebinding -l "app.kubernetes.io/instance=${release}" -o name)" ] ||
  fail "cluster-scoped RBAC of the release is left"
info "PASS"
