#!/usr/bin/env bash
# Step 6 of the product on real pods: `helm upgrade` to new kv and worker image tags (the same images re-tagged)
# under load. The kv StatefulSet rolls one replica at a time (never two kv pods unready at once: the Raft quorum
# holds), the pool's pods roll to the new sidecar image, and no acknowledged workflow is lost or run twice.
# shellcheck source=product_lib.sh
. "$(dirname "$0")/product_lib.sh"
require_product

run="$(date +%s)"
u="up${run}"
new_tag="${IMAGE_TAG}-rollout${run}"
for img in gasoline-kv gasoline-worker; do
  "$CLUSTER_SH" ctr images tag --force "docker.io/gasoline/${img}:${IMAGE_TAG}" "docker.io/gasoline/${img}:${new_tag}" >/dev/null ||
    fail "re-tagging ${img} failed"
done
info "re-tagged gasoline-kv and gasoline-worker as ${new_tag}"

gasctl dispatch --pool "$KV_POOL" --name sleep --count 600 --id "${u}-load" --rate 20 \
  --input '{"ms": 500, "times": 2}' >"${PRODUCT_DIR}/${u}.dispatch.log" 2>&1 &
load_pid=$!
# Watches the kv pods while the upgrade runs: the most that were unready at one time.
watch_kv() {
  local most=0 n
  while [ ! -e "${PRODUCT_DIR}/${u}.stop" ]; do
    # One snapshot per sample: Ready pods that are not being deleted. Two separate reads (unready ones, then
    # missing ones) counted a pod replaced between them twice. A failed read is skipped, not counted.
    local pods
    pods="$(kc -n "$PRODUCT_NS" get pods -l app.kubernetes.io/component=kv \
      -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null)" ||
      { sleep 0.5; continue; }
    n=$((3 - $(grep -c '^|True$' <<<"$pods" || true)))
    [ "$n" -le "$most" ] || most="$n"
    echo "$most" >"${PRODUCT_DIR}/${u}.most-unready"
    sleep 0.5
  done
}
watch_kv &
watch_pid=$!
trap 'touch "${PRODUCT_DIR}/${u}.stop"; kill "$load_pid" "$watch_pid" 2>/dev/null || true' EXIT

info "helm upgrade to ${new_tag}"
t0=$SECONDS
in_node helm upgrade "$RELEASE" "$CHART" -n "$PRODUCT_NS" --reuse-values --wait --timeout 8m \
  --set "kv.image.tag=${new_tag}" --set "sidecar.image.tag=${new_tag}" >"${PRODUCT_DIR}/${u}.helm.log" 2>&1 ||
  { cat "${PRODUCT_DIR}/${u}.helm.log" >&2; kc -n "$PRODUCT_NS" get pods >&2; fail "helm upgrade failed"; }
info "ok: helm upgrade --wait returned in $((SECONDS - t0))s"

kv_rolled() {
  [ "$(kc -n "$PRODUCT_NS" get pods -l app.kubernetes.io/component=kv -o jsonpath='{range .items[*]}{.spec.containers[0].image}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c "gasoline-kv:${new_tag} True")" = 3 ]
}
wait_until "the 3 kv pods run ${new_tag} and are Ready" 300 kv_rolled
pool_rolled() {
  local images
  images="$(kc -n "$POOLS_NS" get pods -l "gasoline.dev/pool=${POOL}" -o jsonpath='{range .items[*]}{.spec.initContainers[0].image}{"\n"}{end}')"
  [ -n "$images" ] && ! grep -qv "gasoline-worker:${new_tag}" <<<"$images" &&
    [ "$(ready_pool_pods | wc -l)" -ge "$(gwp_field '{.spec.autoscaling.minReplicas}')" ]
}
wait_until "the pool's pods run the sidecar ${new_tag} and are Ready" 300 pool_rolled
echo "RESULT helm_upgrade_seconds=$((SECONDS - t0))"

wait "$load_pid" || fail "the load's dispatches were not all acknowledged: $(tail -3 "${PRODUCT_DIR}/${u}.dispatch.log")"
touch "${PRODUCT_DIR}/${u}.stop"
wait "$watch_pid" || true
trap - EXIT
most="$(cat "${PRODUCT_DIR}/${u}.most-unready")"
echo "RESULT kv_most_unready_during_upgrade=${most}"
[ "$most" -le 1 ] || fail "${most} kv pods were unready at once during the rolling upgrade (the Raft quorum needs 2 of 3)"
wait_until "every workflow of the load complete" 240 all_complete "${u}-load"
check_history 600 "${u}-load"
info "ok: step 6 on real pods"
