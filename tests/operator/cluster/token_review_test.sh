#!/usr/bin/env bash
# shellcheck disable=SC2154
# Kubernetes-native kv credentials (docs/security.md, "Roles") against the real API server of hack/cluster.sh: a
# real gasoline-kv with --kube-token-review verifies projected-style ServiceAccount tokens (kubectl create token
# --audience gasoline-kv) with TokenReviews, as a ServiceAccount that may only create tokenreviews (the chart's
# ClusterRole). A sidecar with namespace A's token joins A's pool; namespace B's token can use B's pools but
# not A's workflows, pools or the cluster ops; a token for another audience and a kv without the RBAC are refused
# with a reason; positive reviews are cached.
source "$(dirname "$0")/lib.sh"
new_namespace tr-a
ns_a="$ns"
ns_b="tr-b-$(date +%s)-$$"
kubectl create namespace "$ns_b" >/dev/null
work="$(mktemp -d)"
KV_PID="" KV2_PID="" WORKER_PID=""
role="gasoline-test-token-review-${ns_a}"
# shellcheck disable=SC2064
trap "show_log_on_failure; kill -TERM \$WORKER_PID \$KV_PID \$KV2_PID 2>/dev/null || true; kubectl delete namespace '$ns_a' '$ns_b' --wait=false >/dev/null 2>&1 || true; kubectl delete clusterrole,clusterrolebinding '$role' >/dev/null 2>&1 || true; rm -rf '$work'" EXIT
GASCTL="${GASOLINE_BIN}/gasctl"

# The kv's own identity: a ServiceAccount with exactly the chart's kv ClusterRole (charts/gasoline/templates/kv-rbac.yaml),
# and one without it.
kubectl -n "$ns_a" create serviceaccount kv >/dev/null
kubectl -n "$ns_a" create serviceaccount kv-without-rbac >/dev/null
kubectl create clusterrole "$role" --verb=create --resource=tokenreviews.authentication.k8s.io >/dev/null
kubectl create clusterrolebinding "$role" --clusterrole="$role" --serviceaccount="${ns_a}:kv" >/dev/null
# kubeconfig_for SA FILE: a kubeconfig for the test API server that authenticates as the ServiceAccount.
kubeconfig_for() {
  local server ca
  server="$(kubectl config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(kubectl config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  cat >"$2" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "${server}", certificate-authority-data: "${ca}"}}]
users: [{name: sa, user: {token: "$(kubectl -n "$ns_a" create token "$1" --duration 1h)"}}]
contexts: [{name: test, context: {cluster: test, user: sa}}]
current-context: test
YAML
}
kubeconfig_for kv "${work}/kv.kubeconfig"
kubeconfig_for kv-without-rbac "${work}/norbac.kubeconfig"

# The sidecars' tokens: what the kubelet would project for the pods of each namespace (audience gasoline-kv).
kubectl -n "$ns_a" create serviceaccount pool >/dev/null
kubectl -n "$ns_b" create serviceaccount pool >/dev/null
kubectl -n "$ns_a" create token pool --audience gasoline-kv --duration 10m >"${work}/token-a"
kubectl -n "$ns_b" create token pool --audience gasoline-kv --duration 10m >"${work}/token-b"
kubectl -n "$ns_a" create token pool --duration 10m >"${work}/token-api-audience"  # for the API server, not the kv
echo "token-review-test-admin-token" >"${work}/admin"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
metrics_port="$(free_port)"
start_kv() {  # NAME KUBECONFIG LISTEN [flags...]
  local name="$1" kubeconfig="$2" listen="$3"; shift 3
  rm -f "${work}/${name}.port"
  "${GASOLINE_BIN}/gasoline-kv" --listen "$listen" --port-file "${work}/${name}.port" --data-dir "${work}/${name}" \
    --token-file "${work}/admin" --kube-token-review --kubeconfig "$kubeconfig" "$@" >>"${LOGDIR}/${name}.log" 2>&1 &
}
start_kv kv "${work}/kv.kubeconfig" 127.0.0.1:0 --metrics-listen "127.0.0.1:${metrics_port}"
KV_PID=$!
wait_until "kv listening" 30 test -s "${work}/kv.port"
kv="127.0.0.1:$(cat "${work}/kv.port")"
admin() { "$GASCTL" --kv "$kv" --token-file "${work}/admin" "$@"; }
as() { local who="$1"; shift; "$GASCTL" --kv "$kv" --token-file "${work}/token-${who}" "$@"; }
# refused WHAT CODE COMMAND...: the command fails with the kv error CODE.
refused() {
  local what="$1" code="$2" out; shift 2
  if out="$("$@" 2>&1)"; then fail "${what}: allowed, want ${code}: ${out}"; fi
  grep -qF "$code" <<<"$out" || fail "${what}: want ${code}, got: ${out}"
  info "ok: ${what} is refused (${code})"
}

admin dispatch --pool "${ns_a}.p" --name job --id wf-a >/dev/null
admin dispatch --pool "${ns_b}.p" --name job --id wf-b >/dev/null

# A sidecar of namespace A, authenticated by its ServiceAccount token alone, joins A's pool.
mkdir -p "${work}/cgroup"
POD_NAME=pool-a-0 POD_UID=uid-a "${GASOLINE_BIN}/gasoline-worker" --pool "${ns_a}.p" --kv "$kv" \
  --token-file "${work}/token-a" --api-port 0 --admin-listen '' --cgroup-root "${work}/cgroup" --workflows other \
  >>"${LOGDIR}/worker.log" 2>&1 &
WORKER_PID=$!
joined() { admin workers --pool "${ns_a}.p" | grep -q "pool-a-0"; }
wait_until "the sidecar with namespace A's ServiceAccount token joined ${ns_a}.p" 60 joined

# Namespace B's token: its own pools work, namespace A's do not, nor the admin ops.
as b get wf-b >/dev/null || fail "namespace B's token cannot read its own workflow"
as b dispatch --pool "${ns_b}.p" --name job >/dev/null || fail "namespace B's token cannot dispatch into its pool"
refused "B reading A's workflow" permission_denied as b get wf-a
refused "B listing A's pool" permission_denied as b list --pool "${ns_a}.p"
refused "B cancelling A's workflow" permission_denied as b cancel wf-a
refused "B dispatching into A's pool" permission_denied as b dispatch --pool "${ns_a}.p" --name job
refused "B reading the kv's status" permission_denied as b status
refused "B changing the membership" permission_denied as b cluster add --id 2 --raft 127.0.0.1:1 --client 127.0.0.1:2
as a get wf-a >/dev/null || fail "namespace A's token cannot read its own workflow"
# A token for the API server's audience, and garbage, are not kv credentials.
refused "a ServiceAccount token for another audience" unauthenticated as api-audience status
echo "not-a-token" >"${work}/token-garbage"
refused "garbage" unauthenticated as garbage status
admin status >/dev/null || fail "the admin token no longer works"

# Repeated connections with the same token are answered from the cache.
for _ in 1 2 3; do as b get wf-b >/dev/null; done
reviews() { curl -sS --max-time 2 "http://127.0.0.1:${metrics_port}/metrics" | awk -v m="gasoline_kv_token_reviews_total{result=\"$1\"}" 'index($0, m) == 1 { print $NF }'; }
[ "$(reviews authenticated)" -ge 2 ] || fail "authenticated reviews: '$(reviews authenticated)'"
[ "$(reviews cached)" -ge 3 ] || fail "cached reviews: '$(reviews cached)'"
[ "$(reviews refused)" -ge 2 ] || fail "refused reviews: '$(reviews refused)'"
denied="$(curl -sS --max-time 2 "http://127.0.0.1:${metrics_port}/metrics" | grep -c '^gasoline_kv_requests_denied_total')"
[ "$denied" -ge 4 ] || fail "denials not counted ($denied series)"
info "ok: reviews authenticated $(reviews authenticated), cached $(reviews cached), refused $(reviews refused)"

# Rotation: while the kv is down, namespace A's ServiceAccount is replaced (which invalidates every token it had)
# and the sidecar's token file gets a new token, as the kubelet would write it. The sidecar presents the new token
# on its next connection and pings again.
kill -TERM "$KV_PID"
wait "$KV_PID" || true
cp "${work}/token-a" "${work}/token-a-old"
kubectl -n "$ns_a" delete serviceaccount pool >/dev/null
kubectl -n "$ns_a" create serviceaccount pool >/dev/null
kubectl -n "$ns_a" create token pool --audience gasoline-kv --duration 10m >"${work}/token-a.new"
mv "${work}/token-a.new" "${work}/token-a"
# The API server notices the deletion through its ServiceAccount cache: wait until it refuses the old token.
old_token_invalid() {
  [ "$(kubectl create -o jsonpath='{.status.authenticated}' -f - <<YAML
apiVersion: authentication.k8s.io/v1
kind: TokenReview
spec: {token: "$(cat "${work}/token-a-old")", audiences: [gasoline-kv]}
YAML
)" != true ]
}
wait_until "the API server refuses the replaced ServiceAccount's token" 60 old_token_invalid
start_kv kv "${work}/kv.kubeconfig" "$kv" --metrics-listen "127.0.0.1:${metrics_port}"
KV_PID=$!
wait_until "kv listening again on ${kv}" 30 test -s "${work}/kv.port"
pinged_lately() {
  admin -o json workers --pool "${ns_a}.p" | python3 -c '
import json, sys
ages = [w["last_ping_age_ms"] for p in json.load(sys.stdin)["pools"] for w in p["workers"] if w["pod"] == "pool-a-0"]
sys.exit(0 if ages and ages[0] < 1000 else 1)'
}
wait_until "the sidecar pings again with the rotated token" 60 pinged_lately
grep -qF "the kv token file changed" "${LOGDIR}/worker.log" || fail "the sidecar did not say it re-read its token file"
refused "a token of the replaced ServiceAccount" unauthenticated as a-old get wf-a

# A kv whose ServiceAccount may not create TokenReviews refuses ServiceAccount tokens and says why.
start_kv kv2 "${work}/norbac.kubeconfig" 127.0.0.1:0 --metrics-listen ''
KV2_PID=$!
wait_until "second kv listening" 30 test -s "${work}/kv2.port"
out="$("$GASCTL" --kv "127.0.0.1:$(cat "${work}/kv2.port")" --token-file "${work}/token-a" status 2>&1)" &&
  fail "a kv without TokenReview RBAC accepted a ServiceAccount token: ${out}"
grep -qF "cannot verify the token" <<<"$out" || fail "no reason for the refusal: ${out}"
grep -qi "forbidden" <<<"$out" || fail "the refusal does not say the kv lacks the permission: ${out}"
info "ok: without 'create tokenreviews' the kv refuses ServiceAccount tokens and says why"
