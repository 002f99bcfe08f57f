#!/usr/bin/env bash
# Step 7 of the product on real pods (the fixture's cleanup): delete the pool, then `helm uninstall`. Nothing of
# ours is left but the CRD (the test asked the chart to delete the kv's claims on uninstall), and the operator
# logged no error loop while the pool went away.
# shellcheck source=product_lib.sh
. "$(dirname "$0")/product_lib.sh"
require_node
if ! kc get namespace "$PRODUCT_NS" >/dev/null 2>&1; then
  info "no product install to remove"
  exit 0
fi

since="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
leader_op="$(kc -n "$PRODUCT_NS" get lease -o jsonpath='{.items[*].spec.holderIdentity}' 2>/dev/null || true)"
kc -n "$POOLS_NS" delete gwp --all --wait=true --timeout=120s >/dev/null
children_gone() { [ -z "$(kc -n "$POOLS_NS" get deploy,svc,hpa,pdb -l "gasoline.dev/pool=${POOL}" -o name)" ]; }
wait_until "the pool's Deployment, Service, HPA and PDB are gone (owner references, garbage collector)" 120 children_gone
pods_gone() { [ -z "$(kc -n "$POOLS_NS" get pods -l "gasoline.dev/pool=${POOL}" -o name)" ]; }
wait_until "the pool's pods are gone" 120 pods_gone
if [ -n "$leader_op" ]; then
  errors="$(kc -n "$PRODUCT_NS" logs "$leader_op" --since-time="$since" 2>/dev/null | grep -c '"level":"error"' || true)"
  echo "RESULT operator_errors_after_pool_delete=${errors}"
  [ "${errors:-0}" -le 2 ] ||
    fail "the operator logged ${errors} errors after the pool was deleted: $(kc -n "$PRODUCT_NS" logs "$leader_op" --since-time="$since" | grep '"level":"error"' | tail -5)"
fi

in_node helm uninstall "$RELEASE" -n "$PRODUCT_NS" --wait --timeout 3m >/dev/null || fail "helm uninstall failed"
gone() {
  [ -z "$(kc get all,pvc,secret,configmap,serviceaccount,role,rolebinding,lease,networkpolicy,pdb -n "$PRODUCT_NS" \
    -l "app.kubernetes.io/instance=${RELEASE}" -o name 2>/dev/null)" ] &&
    [ -z "$(kc get pvc -n "$PRODUCT_NS" -o name 2>/dev/null)" ] &&
    [ -z "$(kc get clusterrole,clusterrolebinding,validatingadmissionpolicy,validatingadmissionpolicybinding \
      -l "app.kubernetes.io/instance=${RELEASE}" -o name 2>/dev/null)" ] &&
    [ -z "$(kc get secret -n "$POOLS_NS" -l "app.kubernetes.io/instance=${RELEASE}" -o name 2>/dev/null)" ] &&
    [ -z "$(kc get pods -n "$PRODUCT_NS" -o name 2>/dev/null)" ]
}
if ! (wait_until "nothing of the release is left (pods, claims, Secrets, RBAC, admission policy)" 120 gone); then
  kc get all,pvc,secret,lease -n "$PRODUCT_NS" >&2 || true
  fail "the uninstall left objects behind"
fi
kc get crd gasolineworkerpools.gasoline.dev >/dev/null || fail "helm uninstall removed the CRD (helm keeps crds/)"
kc delete namespace "$PRODUCT_NS" "$POOLS_NS" --wait=false >/dev/null
kc delete pv -l gasoline.dev/test=product --ignore-not-found --wait=false >/dev/null
info "ok: step 7: only the CRD is left"
