#!/usr/bin/env bash
# shellcheck disable=SC2154
# status.activeWorkers comes from the kv: a real gasoline-kv and a real gasoline-worker sidecar pinging as the
# pool's worker. When the worker leaves the count drops; when the kv goes away the field is dropped and the
# operator keeps reconciling (it must never fail because of the kv). A pool naming a kv address outside the
# operator's allowlist is Degraded and the operator never connects there (it would send its token).
source "$(dirname "$0")/lib.sh"
new_namespace op-kv
work="$(mktemp -d)"
KV_PID="" WORKER_PID="" THIEF_PID=""
# shellcheck disable=SC2064
trap "show_log_on_failure; cleanup_operators; kill -TERM \$WORKER_PID \$KV_PID \$THIEF_PID 2>/dev/null || true; kubectl delete namespace '$ns' --wait=false >/dev/null 2>&1 || true; rm -rf '$work'" EXIT
install_crd
echo "kv-test-token" >"${work}/token"
"${GASOLINE_BIN}/gasoline-kv" --listen 127.0.0.1:0 --port-file "${work}/kv.port" --data-dir "${work}/kv" \
  --token-file "${work}/token" --metrics-listen '' >>"${LOGDIR}/kv.log" 2>&1 &
KV_PID=$!
wait_until "kv listening" 30 test -s "${work}/kv.port"
kv="127.0.0.1:$(cat "${work}/kv.port")"

PORT=18230
start_operator kvstatus "$PORT" --namespace "$ns" --kv-address "$kv" --kv-token-file "${work}/token" \
  --kv-poll-seconds 1 --sidecar-image registry.invalid/gasoline:test
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata: {name: counted}
spec:
  workflows: [order]
  template: {spec: {containers: [{name: app, image: registry.invalid/app:1}]}}
YAML
wait_until "activeWorkers 0 with no worker" 60 equals gwp/counted '{.status.activeWorkers}' 0

# A listener standing in for a tenant's "kv": it counts the connections it gets.
python3 -c '
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
n = 0
while True:
    c, _ = s.accept()
    n += 1
    open(sys.argv[2], "w").write(str(n))
    c.close()
' "${work}/thief.port" "${work}/thief.count" &
THIEF_PID=$!
wait_until "the tenant's listener is up" 30 test -s "${work}/thief.port"
kubectl -n "$ns" apply -f - <<YAML
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata: {name: thief}
spec:
  workflows: [order]
  kv: {address: "127.0.0.1:$(cat "${work}/thief.port")"}
  template: {spec: {containers: [{name: app, image: registry.invalid/app:1}]}}
YAML
degraded_for_address() {
  jp gwp/thief '{.status.conditions[?(@.type=="Degraded")].message}' | grep -qF "is not a kv this operator may connect to"
}
wait_until "a pool with a kv address outside the allowlist is Degraded" 60 degraded_for_address
# Several kv polls (1 s each) later the listener has still seen nothing, and the pool has no children.
quiet_until=$((SECONDS + 4))
while [ "$SECONDS" -lt "$quiet_until" ]; do
  [ ! -e "${work}/thief.count" ] || fail "the operator connected to a tenant-chosen kv address ($(cat "${work}/thief.count") connections)"
  sleep 0.2
done
gone deploy/thief || fail "a Deployment was rendered for a pool with a refused kv address"
info "ok: no connection to a kv address outside the allowlist; the pool says why"

mkdir -p "${work}/cgroup"  # an empty cgroup root: this host's process is not in a container
POD_NAME=counted-abc POD_UID=uid-1 "${GASOLINE_BIN}/gasoline-worker" --pool "${ns}.counted" --kv "$kv" \
  --token-file "${work}/token" --api-port 0 --admin-listen '' --cgroup-root "${work}/cgroup" --workflows order \
  >>"${LOGDIR}/worker.log" 2>&1 &
WORKER_PID=$!
wait_until "activeWorkers 1 while the sidecar pings" 60 equals gwp/counted '{.status.activeWorkers}' 1
kubectl -n "$ns" get gwp counted

kill -TERM "$WORKER_PID"
wait_until "activeWorkers 0 after the sidecar left" 60 equals gwp/counted '{.status.activeWorkers}' 0

kill -TERM "$KV_PID"
wait_until "activeWorkers dropped while the kv is away" 60 equals gwp/counted '{.status.activeWorkers}' ''
kill -0 "$OPERATOR_PID" || fail "the operator died without its kv"
kubectl -n "$ns" patch gwp counted --type merge -p '{"spec":{"replicas":3,"autoscaling":{"enabled":false}}}' >/dev/null
wait_until "reconciling goes on without the kv" 60 equals deploy/counted '{.spec.replicas}' 3
info "PASS"
