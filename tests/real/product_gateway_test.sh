#!/usr/bin/env bash
# real.product_gateway: the chart's gasoline-gateway on real pods, used as a service outside the cluster's workers
# would use it: clients/python/example_service.py, which knows the gateway only through its OpenAPI document,
# dispatches a batch through the gateway's Service, waits until the sample pool's workers completed it and pages
# through the pool. Requests without a token, or with one the kv does not know, are refused with 401.
# shellcheck source=product_lib.sh
. "$(dirname "$0")/product_lib.sh"
require_product

ROOT="$(cd "${TESTS_REAL_DIR}/../.." && pwd)"
GATEWAY="http://${RELEASE}-gateway.${PRODUCT_NS}.svc:7490"

gateway_ready() { [ "$(kc -n "$PRODUCT_NS" get deploy "${RELEASE}-gateway" -o jsonpath='{.status.readyReplicas}')" = 2 ]; }
wait_until "the gateway's 2 pods are ready" 180 gateway_ready

# curl_status ARGS...: the HTTP status of one request from the node's namespace, with the cluster's DNS.
curl_status() { in_node_dns curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
status="$(curl_status "${GATEWAY}/v1/workflows/none")"
[ "$status" = 401 ] || fail "a request without a token got ${status}, want 401"
status="$(curl_status -H "Authorization: Bearer not-a-token-of-this-kv-0123456789" "${GATEWAY}/v1/workflows/none")"
[ "$status" = 401 ] || fail "a request with a token the kv does not know got ${status}, want 401"
info "ok: the gateway refuses requests without a credential the kv accepts (401)"

out="$(in_node_dns env GASOLINE_TOKEN="$(cat "${PRODUCT_DIR}/token")" python3 "${ROOT}/clients/python/example_service.py" \
  "${ROOT}/docs/openapi/gateway.yaml" "$GATEWAY" "$KV_POOL" 20 ship 2>&1)" ||
  { kc -n "$PRODUCT_NS" logs "deploy/${RELEASE}-gateway" --tail=30 >&2 || true; fail "example_service.py failed: ${out}"; }
grep -q '"completed": 20' <<<"$out" || fail "example_service.py did not report 20 completed workflows: ${out}"
info "ok: a Python service dispatched, awaited and listed 20 workflows through the gateway on real pods: ${out}"
info "PASS"
