#!/usr/bin/env bash
# shellcheck disable=SC2154  # ns comes from new_namespace
# The operator against the real API server (full cluster: GC, Deployment controller, kwok pods):
# a pool becomes a Deployment (native sidecar), Service, HPA, PDB and NetworkPolicy with owner references; an update is applied;
# an unchanged pool costs zero writes over several resyncs; a child deleted by hand comes back; status follows
# the Deployment's readiness; deleting the pool lets the garbage collector remove the children.
source "$(dirname "$0")/lib.sh"
new_namespace op-reconcile
install_cleanup
install_crd
PORT=18180
start_operator reconcile "$PORT" --namespace "$ns" --resync-seconds 2 --kv-address 127.0.0.1:1 \
  --sidecar-image registry.invalid/gasoline:test
wait_until "operator ready" 60 ready "$PORT"

kubectl -n "$ns" create secret generic gasoline-kv-token --from-literal=token=t >/dev/null
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata:
  name: orders
spec:
  workflows: [order, ship]
  template:
    metadata:
      annotations: {kwok.x-k8s.io/usage-cpu: 10m}
    spec:
      containers:
      - name: app
        image: registry.invalid/app:1
        resources: {requests: {cpu: 100m, memory: 32Mi}}
  autoscaling: {minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 60}
  drain: {timeoutSeconds: 20}
YAML

wait_until "Deployment, Service, HPA, PDB and NetworkPolicy exist" 60 \
  bash -c "kubectl -n '$ns' get deploy/orders svc/orders hpa/orders pdb/orders networkpolicy/orders >/dev/null 2>&1"
uid="$(jp gwp/orders '{.metadata.uid}')"
for kind in deploy svc hpa pdb networkpolicy; do
  [ "$(jp "$kind/orders" '{.metadata.ownerReferences[0].uid}')" = "$uid" ] || fail "$kind has no owner reference to the pool"
  [ "$(jp "$kind/orders" '{.metadata.ownerReferences[0].controller}')" = true ] || fail "$kind: owner is not controller"
  [ "$(jp "$kind/orders" '{.metadata.labels.app\.kubernetes\.io/managed-by}')" = gasoline-operator ] ||
    fail "$kind lacks the managed-by label"
done
info "ok: owner references and labels on all five children"

# The Deployment: native sidecar, downward API, grace period, HPA owns replicas.
[ "$(jp deploy/orders '{.spec.template.spec.initContainers[0].name}')" = gasoline-worker ] || fail "no sidecar"
[ "$(jp deploy/orders '{.spec.template.spec.initContainers[0].restartPolicy}')" = Always ] || fail "sidecar is not native"
# (Captured first: `cmd | grep -q` under pipefail fails when grep exits before cmd is done writing.)
sidecar_env="$(jp deploy/orders '{.spec.template.spec.initContainers[0].env}')"
grep -q 'metadata.uid' <<<"$sidecar_env" || fail "no POD_UID from the downward API"
grep -q 'order,ship' <<<"$sidecar_env" || fail "workflows not passed"
grace="$(jp deploy/orders '{.spec.template.spec.terminationGracePeriodSeconds}')"
[ "$grace" -ge 25 ] || fail "grace period ${grace}s does not cover the 20 s drain plus a margin"
grep -q drain <<<"$(jp deploy/orders '{.spec.template.spec.containers[0].lifecycle.preStop.httpGet.path}')" ||
  fail "the app container has no preStop drain hook"
mgr="$(kubectl -n "$ns" get deploy/orders --show-managed-fields -o json |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(m["manager"] for m in d["metadata"]["managedFields"] if "f:replicas" in json.dumps(m.get("fieldsV1",{})) and m["manager"]=="gasoline-operator"))')"
[ -z "$mgr" ] || fail "the operator manages spec.replicas although the HPA owns it"
# The HPA measures the app container only.
[ "$(jp hpa/orders '{.spec.metrics[0].type}')" = ContainerResource ] || fail "HPA is not ContainerResource"
[ "$(jp hpa/orders '{.spec.metrics[0].containerResource.container}')" = app ] || fail "HPA does not measure the app"
[ "$(jp hpa/orders '{.spec.maxReplicas}')" = 5 ] || fail "HPA max"
[ -n "$(jp hpa/orders '{.spec.behavior.scaleDown.stabilizationWindowSeconds}')" ] || fail "HPA has no scale-down window"
[ "$(jp pdb/orders '{.spec.maxUnavailable}')" = 1 ] || fail "PDB maxUnavailable"
# The NetworkPolicy (as the API server stored it): the admin port 7481 has no rule (only the node reaches it), every
# other port is open to all.
np_ports="$(jp networkpolicy/orders '{range .spec.ingress[*].ports[*]}{.protocol}:{.port}-{.endPort} {end}')"
[ "$np_ports" = "TCP:1-7480 TCP:7482-65535 UDP:1-65535 SCTP:1-65535 " ] || fail "NetworkPolicy ports: ${np_ports}"
[ "$(jp networkpolicy/orders '{.spec.ingress[*].from}')" = "" ] || fail "NetworkPolicy admits peers by default"
info "ok: children have the right fields"

# Status follows the Deployment: the HPA scales to 2 (min), kwok makes the pods Ready.
wait_until "status Ready=True with 2 ready replicas" 120 \
  bash -c "[ \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.status.readyReplicas}/{.status.conditions[?(@.type==\"Ready\")].status}')\" = 2/True ]"
[ "$(jp gwp/orders '{.status.observedGeneration}')" = "$(jp gwp/orders '{.metadata.generation}')" ] || fail "observedGeneration"
[ -n "$(jp gwp/orders '{.status.selector}')" ] || fail "status.selector is empty"
kubectl -n "$ns" get gwp orders
wait_until "an Event on the pool" 30 bash -c "[ -n \"\$(kubectl -n '$ns' get events --field-selector involvedObject.name=orders -o name)\" ]"

# Unchanged: zero writes over several resyncs (2 s each). Counted by the operator and by the API server.
wait_until "no reconcile in flight" 30 bash -c "[ \"\$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^gasoline_operator_workqueue_depth/ {print \$2}')\" = 0 ]"
writes0="$(metric "$PORT" gasoline_operator_writes_total)"
reconciles0="$(metric "$PORT" gasoline_operator_reconciles_total)"
patches0="$(metric "$PORT" 'gasoline_operator_api_requests_total{code="200",method="PATCH"}')"
wait_until "3 resyncs" 60 bash -c "[ \$(( \$(curl -s http://127.0.0.1:$PORT/metrics | awk 'index(\$0,\"gasoline_operator_reconciles_total\")==1 {s+=\$NF} END {print int(s)}') - $reconciles0 )) -ge 3 ]"
writes1="$(metric "$PORT" gasoline_operator_writes_total)"
patches1="$(metric "$PORT" 'gasoline_operator_api_requests_total{code="200",method="PATCH"}')"
[ "$writes1" = "$writes0" ] || fail "an unchanged pool caused $((writes1 - writes0)) writes over 3 resyncs"
[ "$patches1" = "$patches0" ] || fail "PATCH requests went from ${patches0} to ${patches1} with nothing changed"
info "ok: zero writes over 3 resyncs (writes_total ${writes1}, PATCH ${patches1})"

# An update is applied.
kubectl -n "$ns" patch gwp orders --type merge -p '{"spec":{"autoscaling":{"maxReplicas":7},"sidecar":{"concurrency":5}}}' >/dev/null
wait_until "HPA max 7" 30 equals hpa/orders '{.spec.maxReplicas}' 7
wait_until "sidecar concurrency 5" 30 bash -c "kubectl -n '$ns' get deploy/orders -o jsonpath='{.spec.template.spec.initContainers[0].env}' | grep -q '\"GASOLINE_CONCURRENCY\",\"value\":\"5\"'"
wait_until "observedGeneration caught up" 30 bash -c "[ \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.status.observedGeneration}')\" = \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.metadata.generation}')\" ]"

# Drift: a child deleted by hand is recreated (level-triggered: the child's DELETED event requeues the pool).
kubectl -n "$ns" delete svc orders --wait=true >/dev/null
wait_until "Service recreated" 30 exists svc/orders

# The NetworkPolicy follows spec.networkPolicy: peers for the admin port, then off, then on again.
kubectl -n "$ns" patch gwp orders --type merge \
  -p '{"spec":{"networkPolicy":{"adminFrom":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]}}}' >/dev/null
wait_until "NetworkPolicy admits the monitoring namespace to 7481" 30 equals networkpolicy/orders \
  '{.spec.ingress[1].from[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name}:{.spec.ingress[1].ports[0].port}' monitoring:7481
kubectl -n "$ns" patch gwp orders --type merge -p '{"spec":{"networkPolicy":{"enabled":false}}}' >/dev/null
wait_until "NetworkPolicy deleted" 30 gone networkpolicy/orders
kubectl -n "$ns" patch gwp orders --type merge -p '{"spec":{"networkPolicy":{"enabled":true}}}' >/dev/null
wait_until "NetworkPolicy back" 30 exists networkpolicy/orders

# Autoscaling off with one replica: the HPA and the PDB go, replicas come from the pool.
kubectl -n "$ns" patch gwp orders --type merge -p '{"spec":{"autoscaling":{"enabled":false},"replicas":1}}' >/dev/null
wait_until "HPA deleted" 30 gone hpa/orders
wait_until "PDB deleted" 30 gone pdb/orders
wait_until "Deployment replicas 1" 30 equals deploy/orders '{.spec.replicas}' 1
# The scale subresource drives the Deployment when autoscaling is off.
kubectl -n "$ns" scale gwp/orders --replicas=3 >/dev/null
wait_until "Deployment replicas 3 after kubectl scale" 30 equals deploy/orders '{.spec.replicas}' 3
wait_until "PDB back at 3 replicas" 30 exists pdb/orders

# paused: the operator stops writing children.
kubectl -n "$ns" patch gwp orders --type merge -p '{"spec":{"paused":true}}' >/dev/null
wait_until "Progressing=False/Paused" 30 bash -c "[ \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}')\" = Paused ]"
kubectl -n "$ns" scale gwp/orders --replicas=2 >/dev/null
wait_until "observedGeneration caught up while paused" 30 bash -c "[ \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.status.observedGeneration}')\" = \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.metadata.generation}')\" ]"
[ "$(jp deploy/orders '{.spec.replicas}')" = 3 ] || fail "a paused pool's Deployment was changed"
kubectl -n "$ns" patch gwp orders --type merge -p '{"spec":{"paused":false}}' >/dev/null
wait_until "unpaused: Deployment replicas 2" 30 equals deploy/orders '{.spec.replicas}' 2

# Autoscaling back on: the HPA takes replicas over, and the Deployment must not drop to one pod on the way (server-
# side apply deletes a field its manager set before and now leaves out; the operator keeps the live value until
# the HPA owns it).
kubectl -n "$ns" scale gwp/orders --replicas=4 >/dev/null
wait_until "Deployment replicas 4" 30 equals deploy/orders '{.spec.replicas}' 4
kubectl -n "$ns" patch gwp orders --type merge \
  -p '{"spec":{"autoscaling":{"enabled":true,"minReplicas":2,"maxReplicas":6}}}' >/dev/null
wait_until "HPA recreated" 30 exists hpa/orders
wait_until "observedGeneration caught up after autoscaling on" 30 bash -c "[ \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.status.observedGeneration}')\" = \"\$(kubectl -n '$ns' get gwp/orders -o jsonpath='{.metadata.generation}')\" ]"
replicas=$(jp deploy/orders '{.spec.replicas}')
[ "${replicas:-0}" -ge 2 ] || fail "turning autoscaling on dropped the Deployment to ${replicas:-no} replicas (HPA minimum 2)"

# Deleting the pool: the garbage collector removes the children.
kubectl -n "$ns" delete gwp orders --wait=false >/dev/null
for kind in deploy svc pdb networkpolicy; do wait_until "$kind garbage-collected" 60 gone "$kind/orders"; done
info "PASS"
