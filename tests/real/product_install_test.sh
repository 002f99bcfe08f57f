#!/usr/bin/env bash
# Steps 1 and 2 of the product on real pods, as a new user meets them:
#   1. `helm install` the chart with our images: the operator (2 replicas, leader election) runs in pods with its
#      own ServiceAccount; the kv StatefulSet (3 replicas) forms its Raft group over the headless Service's DNS
#      names, on PersistentVolumes this test provides (the node has no provisioner).
#      The pool's sidecars authenticate with their projected ServiceAccount token (audience gasoline-kv), which
#      the kv verifies with a TokenReview: no token Secret exists in the pool's namespace, none is copied by hand.
#   2. `kubectl apply` a pool of the example app: its pods run Ready with gasoline-worker as a native sidecar and
#      `kubectl get gwp` shows Replicas/Ready/Active matching the Deployment and the kv.
# The install stays for the other product tests (fixture gasoline_product); product_uninstall_test.sh removes it.
# shellcheck source=product_lib.sh
. "$(dirname "$0")/product_lib.sh"
require_node

# A previous run that died before its uninstall: start from nothing.
if kc get namespace "$PRODUCT_NS" >/dev/null 2>&1 || kc get namespace "$POOLS_NS" >/dev/null 2>&1; then
  info "removing the leftovers of an earlier run"
  in_node helm uninstall "$RELEASE" -n "$PRODUCT_NS" --wait >/dev/null 2>&1 || true
  kc delete namespace "$PRODUCT_NS" "$POOLS_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
fi
kc delete pv -l gasoline.dev/test=product --ignore-not-found >/dev/null
rm -rf "$PRODUCT_DIR"
mkdir -p "$PRODUCT_DIR"

# PersistentVolumes for the kv's three claims: hostPath directories the kv's uid owns (a hostPath volume gets no
# fsGroup), bound by the PV controller through the storage class the chart is told to use.
for i in 0 1 2; do
  install -d -o 65532 -g 65532 -m 0750 "${PRODUCT_DIR}/pv-${i}"
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: gasoline-product-kv-${i}, labels: {gasoline.dev/test: product}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: gasoline-product
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: ${PRODUCT_DIR}/pv-${i}, type: Directory}
YAML
done
kc create namespace "$POOLS_NS" >/dev/null

info "helm install ${RELEASE} (namespace ${PRODUCT_NS}, images ${IMAGE_TAG})"
start=$SECONDS
if ! in_node helm install "$RELEASE" "$CHART" -n "$PRODUCT_NS" --create-namespace --wait --timeout 5m \
  --set kv.persistence.storageClass=gasoline-product --set kv.persistence.size=1Gi \
  --set kv.persistence.deleteOnUninstall=true \
  --set kv.resources.requests.cpu=100m >"${PRODUCT_DIR}/helm-install.log" 2>&1; then
  cat "${PRODUCT_DIR}/helm-install.log" >&2
  kc -n "$PRODUCT_NS" get pods -o wide >&2 || true
  kc -n "$PRODUCT_NS" get events --sort-by=.lastTimestamp | tail -20 >&2 || true
  fail "helm install failed"
fi
info "ok: helm install --wait returned in $((SECONDS - start))s"
kc -n "$PRODUCT_NS" get pods,pvc -o wide

# The token the chart generated: the admin's credential for gasctl below (mode 0600, in the test's own dir).
kc -n "$PRODUCT_NS" get secret gasoline-kv-token -o jsonpath='{.data.token}' | base64 -d >"${PRODUCT_DIR}/token"
chmod 600 "${PRODUCT_DIR}/token"
[ -s "${PRODUCT_DIR}/token" ] || fail "the chart created no kv token"
# TLS is on by default: the chart made a CA and the kv's certificate; gasctl trusts that CA (product_lib.sh).
kc -n "$PRODUCT_NS" get secret gasoline-kv-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >"${PRODUCT_DIR}/ca.crt"
openssl x509 -in "${PRODUCT_DIR}/ca.crt" -noout >/dev/null 2>&1 || fail "the chart's Secret gasoline-kv-tls holds no CA"

# Operator: 2 replicas, each Ready as standby or leader, one Lease holder, the chart's ServiceAccount.
ops="$(kc -n "$PRODUCT_NS" get pods -l app.kubernetes.io/component=operator -o jsonpath='{.items[*].metadata.name}')"
[ "$(wc -w <<<"$ops")" = 2 ] || fail "expected 2 operator pods, got: ${ops}"
for p in $ops; do
  pod_ready "$p" || fail "operator pod ${p} is not Ready"
  sa="$(kc -n "$PRODUCT_NS" get pod "$p" -o jsonpath='{.spec.serviceAccountName}')"
  [ "$sa" = "${RELEASE}-operator" ] || fail "operator pod ${p} runs as ServiceAccount '${sa}'"
done
holder() { kc -n "$PRODUCT_NS" get lease -o jsonpath='{.items[*].spec.holderIdentity}'; }
leader_is_a_pod() { local h; h="$(holder)"; [ -n "$h" ] && grep -qw -- "$h" <<<"$ops"; }
wait_until "one operator pod holds the leader Lease" 60 leader_is_a_pod
info "ok: operator pods ${ops}, leader $(holder)"

# kv: 3 replicas Ready on the test's volumes, one Raft group with a leader and 3 voters.
[ "$(kc -n "$PRODUCT_NS" get statefulset "${RELEASE}-kv" -o jsonpath='{.status.readyReplicas}')" = 3 ] ||
  fail "the kv StatefulSet has not 3 ready replicas"
bound="$(kc get pv -l gasoline.dev/test=product -o jsonpath='{range .items[*]}{.status.phase}{" "}{end}')"
[ "$bound" = "Bound Bound Bound " ] || fail "the kv's PersistentVolumes are not all Bound: ${bound}"
raft_formed() {
  local s
  s="$(gasctl --kv "$KV_ALL" cluster status -o json)" || return 1
  [ "$(jq '[.. | objects | select(.state? == "leader")] | length' <<<"$s")" = 1 ] &&
    [ "$(jq '[.. | objects | select(.state? == "leader") | .members[] | select(.role == "voter")] | length' <<<"$s")" = 3 ]
}
wait_until "the kv's Raft group has one leader and 3 voters (asked of each replica by its DNS name)" 60 raft_formed
info "ok: kv leader $(kv_leader_pod)"
# Each replica wrote its data to its own PersistentVolume.
for i in 0 1 2; do
  [ -n "$(ls -A "${PRODUCT_DIR}/pv-${i}")" ] || fail "the kv wrote nothing to PersistentVolume gasoline-product-kv-${i}"
done

# No kv credential is stored in the pool's namespace: its sidecars present ServiceAccount tokens.
[ -z "$(kc -n "$POOLS_NS" get secret -o name)" ] || fail "Secrets exist in ${POOLS_NS}: $(kc -n "$POOLS_NS" get secret -o name)"

info "kubectl apply the pool ${POOLS_NS}/${POOL}"
pool_manifest | kc -n "$POOLS_NS" apply -f - >/dev/null
pool_ready() { [ "$(gwp_field '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
if ! (wait_until "the pool is Ready" 180 pool_ready); then
  kc -n "$POOLS_NS" get gwp,deploy,pods -o wide >&2 || true
  kc -n "$POOLS_NS" get events --sort-by=.lastTimestamp | tail -20 >&2 || true
  fail "the pool did not become Ready"
fi
two_ready() { [ "$(ready_pool_pods | wc -l)" -ge 2 ]; }
wait_until "2 pool pods Ready" 120 two_ready

for p in $(ready_pool_pods); do
  init="$(kc -n "$POOLS_NS" get pod "$p" -o jsonpath='{.spec.initContainers[0].name} {.spec.initContainers[0].restartPolicy}')"
  [ "$init" = "gasoline-worker Always" ] || fail "pod ${p}: gasoline-worker is not a native sidecar (initContainers[0]: ${init})"
  state="$(kc -n "$POOLS_NS" get pod "$p" -o jsonpath='{.status.initContainerStatuses[0].ready} {.status.containerStatuses[0].ready}')"
  [ "$state" = "true true" ] || fail "pod ${p}: sidecar and app ready: ${state}"
done

columns_match() {
  local replicas ready act deploy_replicas pods kv_active
  replicas="$(gwp_field '{.status.replicas}')"
  ready="$(gwp_field '{.status.readyReplicas}')"
  act="$(gwp_field '{.status.activeWorkers}')"
  deploy_replicas="$(kc -n "$POOLS_NS" get deploy "$POOL" -o jsonpath='{.status.replicas}')"
  pods="$(ready_pool_pods | wc -l)"
  kv_active="$(gasctl workers --pool "$KV_POOL" -o json | jq --arg p "$KV_POOL" '[.pools[]? | select(.pool == $p) | .active] | add // 0')"
  [ "$replicas" = "$deploy_replicas" ] && [ "$ready" = "$pods" ] && [ "$act" = "$kv_active" ] && [ "$act" = "$pods" ]
}
if ! (wait_until "kubectl get gwp: Replicas, Ready and Active match the Deployment, the Ready pods and the kv" 60 columns_match); then
  kc -n "$POOLS_NS" get gwp "$POOL" -o yaml >&2
  gasctl workers --pool "$KV_POOL" -o json >&2 || true
  fail "kubectl get gwp does not tell what is true"
fi
kc -n "$POOLS_NS" get gwp
reviews="$(kv_metric 'gasoline_kv_token_reviews_total{result="authenticated"}')"
[ "$reviews" -gt 0 ] || fail "the kv made no TokenReview: the sidecars did not authenticate with their ServiceAccount tokens"
info "ok: the sidecars authenticated with ServiceAccount tokens (${reviews} TokenReviews by the kv)"

# Every connection to the kv is TLS: a client without it is refused with the reason, the sidecars were given the
# chart's CA (in their pod spec), and the sidecars and the operator (Active above) reached the kv through it.
plain="$(in_node_dns env GASOLINE_KV="$KV_CLIENT" GASOLINE_TOKEN_FILE="${PRODUCT_DIR}/token" "${BIN_DIR}/gasctl" status 2>&1)" &&
  fail "a plaintext client was served: ${plain}"
case "$plain" in *"accepts TLS connections only"*) ;; *) fail "a plaintext client was not told why it was refused: ${plain}" ;; esac
pem="$(kc -n "$POOLS_NS" get deploy "$POOL" -o jsonpath='{.spec.template.spec.initContainers[0].env[?(@.name=="GASOLINE_KV_TLS_CA_PEM")].value}')"
[ "$pem" = "$(cat "${PRODUCT_DIR}/ca.crt")" ] || fail "the sidecars do not trust the chart's CA (GASOLINE_KV_TLS_CA_PEM)"
info "ok: the kv serves TLS only; sidecars, operator and gasctl verify it with the chart's CA"
# Between the replicas too: each one runs Raft over TLS (kv.tls.raft "auto" on a new install), and they formed
# their group through it (the voters checked above).
for i in 0 1 2; do
  # The whole log first: `logs | grep -q` under pipefail fails when grep stops reading early (SIGPIPE).
  kv_log="$(kc -n "$PRODUCT_NS" logs "${RELEASE}-kv-${i}")"
  if ! grep -q '"raft traffic over TLS"' <<<"$kv_log"; then
    kc -n "$PRODUCT_NS" get pod "${RELEASE}-kv-${i}" -o jsonpath='{.spec.containers[0].args}' >&2 || true
    head -5 <<<"$kv_log" >&2
    fail "kv replica ${i} does not run Raft over TLS"
  fi
done
info "ok: the kv replicas' Raft traffic is TLS"
info "ok: the product is installed; the pool runs $(ready_pool_pods | wc -l) Ready pods with native sidecars"
