#!/usr/bin/env bash
# shellcheck disable=SC2016  # CEL and jsonpath expressions are single-quoted on purpose
# operator.crd: crds/gasoline.dev_gasolineworkerpools.yaml against the real API server (the gasoline_cluster
# fixture): the CRD installs (the API server accepts the structural schema and the cost of every CEL rule) and
# becomes Established; a minimal pool gets every default of docs/pool-spec.md; each invalid pool is rejected with
# the message written in the CRD; selectorLabels are immutable; unknown fields are refused while template.spec
# keeps PodSpec fields; the printer columns show status; the scale subresource works.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../../cluster/lib.sh
source "${REPO_ROOT}/tests/cluster/lib.sh"

wait_until "no terminating GasolineWorkerPool CRD" 90 crd_settled
crd_existed=false
kubectl get crd "$CRD_NAME" >/dev/null 2>&1 && crd_existed=true
ns="gwp-crd-$(date +%s)-$$"
cleanup() {
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  # Leave a CRD that was there before (another suite's); remove ours, with every pool.
  # Waits until it is gone: the next test of the fixture may apply it again, which fails while it terminates.
  $crd_existed || kubectl delete crd "$CRD_NAME" --ignore-not-found --timeout=90s >/dev/null 2>&1 || true
  cleanup_work
}
trap cleanup EXIT

# --- install -------------------------------------------------------------------------------------------------
kubectl apply --server-side --force-conflicts --field-manager=gasoline-crd-test -f "$CRD_FILE" >/dev/null ||
  fail "the API server refused the CRD (schema or CEL cost; see above)"
crd_cond() { [ "$(kubectl get crd "$CRD_NAME" -o jsonpath="{.status.conditions[?(@.type==\"$1\")].status}")" = True ]; }
wait_until "CRD NamesAccepted" 60 crd_cond NamesAccepted
wait_until "CRD Established" 60 crd_cond Established
kubectl create namespace "$ns" >/dev/null
info "namespace ${ns}"
gwp_served() { kubectl get gwp -n "$ns" >/dev/null 2>&1; }
wait_until "gwp served (discovery)" 60 gwp_served

k() { kubectl -n "$ns" "$@"; }
pool() {  # pool NAME [EXTRA_SPEC_YAML]: a minimal pool, plus extra lines under spec
  cat <<YAML
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata:
  name: $1
spec:
  workflows: [order]
  template:
    spec:
      containers:
        - name: app
          image: gasoline/example-app:0.1.0
${2:-}
YAML
}
apply_pool() { k apply -f -; }

# --- a minimal pool gets its defaults --------------------------------------------------------------------------
pool minimal | apply_pool >/dev/null || fail "a minimal valid pool was rejected"
k get gwp minimal -o json | python3 -c '
import json, sys
spec = json.load(sys.stdin)["spec"]
want = {
  "replicas": 1, "paused": False,
  "sidecar": {"imagePullPolicy": "IfNotPresent", "concurrency": 32, "pingInterval": "500ms", "apiPort": 7480,
              "adminPort": 7481,
              "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
              "shedding": {"startPercent": 50, "endPercent": 80, "minRatioPermille": 100}},
  "kv": {},
  "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70,
                  "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300,
                                             "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                               "scaleUp": {"stabilizationWindowSeconds": 0}}},
  "disruption": {"enabled": True, "maxUnavailable": 1},
  "drain": {"timeoutSeconds": 30},
  "workflows": ["order"],
  "template": {"spec": {"containers": [{"name": "app", "image": "gasoline/example-app:0.1.0"}]}},
}
bad = [f"{k}: got {json.dumps(spec.get(k))}, want {json.dumps(v)}" for k, v in want.items() if spec.get(k) != v]
# Not defaulted by the schema (render computes them): appContainer, selectorLabels, sidecar.image, kv.address,
# kv.pool, drain.terminationGracePeriodSeconds.
extra = sorted(set(spec) - set(want))
if extra: bad.append(f"unexpected fields {extra}")
for b in bad: print("  " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
' || fail "the minimal pool did not get the defaults of docs/pool-spec.md"
info "ok: a minimal pool is accepted and defaulted"

# --- a pool using every field is accepted; template.spec keeps PodSpec fields -------------------------------------
python3 - "${CHART_WORK}/full.yaml" <<'PY'
import sys, yaml
doc = {"apiVersion": "gasoline.dev/v1alpha1", "kind": "GasolineWorkerPool", "metadata": {"name": "full"}, "spec": {
  "workflows": ["order", "ship"], "replicas": 2, "appContainer": "helper", "selectorLabels": {"track": "stable"},
  "template": {"metadata": {"labels": {"app": "full"}, "annotations": {"note": "x"}},
               "spec": {"nodeSelector": {"disk": "ssd"},
                        "containers": [{"name": "app", "image": "gasoline/example-app:0.1.0",
                                        "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m"}}},
                                       {"name": "helper", "image": "busybox"}]}},
  "sidecar": {"image": "gasoline/gasoline-worker:0.1.0", "imagePullPolicy": "Always",
              "resources": {"requests": {"cpu": "10m"}}, "concurrency": 4096, "pingInterval": "2s", "apiPort": 9000,
              "adminPort": 9001, "shedding": {"startPercent": 20.5, "endPercent": 21, "minRatioPermille": 0}},
  "kv": {"address": "a:7400,b:7400", "pool": "shop.full", "tokenSecretRef": {"name": "other", "key": "tok"}},
  "autoscaling": {"enabled": False, "minReplicas": 3, "maxReplicas": 3, "targetCPUUtilizationPercentage": 1000},
  "disruption": {"enabled": True, "maxUnavailable": "25%"},
  "drain": {"timeoutSeconds": 30, "terminationGracePeriodSeconds": 35},
  "paused": True}}
yaml.safe_dump(doc, open(sys.argv[1], "w"))
PY
k apply -f "${CHART_WORK}/full.yaml" >/dev/null || fail "a pool using every field was rejected"
[ "$(k get gwp full -o jsonpath='{.spec.template.spec.nodeSelector.disk}/{.spec.template.spec.containers[0].ports[0].containerPort}')" = "ssd/8080" ] ||
  fail "template.spec lost PodSpec fields (x-kubernetes-preserve-unknown-fields)"
[ "$(k get gwp full -o jsonpath='{.spec.disruption.maxUnavailable}')" = "25%" ] || fail "maxUnavailable '25%' not kept"
info "ok: a pool using every field is accepted; template.spec keeps PodSpec fields"

# --- invalid pools are rejected with the CRD's messages ------------------------------------------------------
reject() {  # reject DESCRIPTION WANT_MESSAGE NAME EXTRA_SPEC
  expect_fail "$1" "$2" bash -c 'cat | kubectl -n "$1" apply -f -' _ "$ns" < <(pool "$3" "$4")
}
reject "minReplicas > maxReplicas" \
  "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas" \
  bad-minmax '  autoscaling: {minReplicas: 5, maxReplicas: 2}'
reject "minReplicas > the default maxReplicas" \
  "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas" \
  bad-minmax2 '  autoscaling: {minReplicas: 11}'
reject "drain timeout not fitting the grace period" \
  "the drain timeout must fit inside the grace period with 5 s to spare" \
  bad-drain '  drain: {timeoutSeconds: 30, terminationGracePeriodSeconds: 34}'
reject "default drain timeout not fitting the grace period" \
  "the drain timeout must fit inside the grace period with 5 s to spare" \
  bad-drain2 '  drain: {terminationGracePeriodSeconds: 20}'
reject "unknown appContainer" \
  "spec.appContainer must name a container of spec.template.spec.containers: there is no container 'nope'" \
  bad-app '  appContainer: nope'
reject "shedding start == end" \
  "sidecar.shedding.startPercent must be less than sidecar.shedding.endPercent" \
  bad-shed '  sidecar: {shedding: {startPercent: 80, endPercent: 80}}'
reject "shedding start > the default end" \
  "sidecar.shedding.startPercent must be less than sidecar.shedding.endPercent" \
  bad-shed2 '  sidecar: {shedding: {startPercent: 90}}'
reject "bad pingInterval" "spec.sidecar.pingInterval in body should match" bad-ping '  sidecar: {pingInterval: 1h}'
reject "bad maxUnavailable string" "spec.disruption.maxUnavailable in body should match" \
  bad-pdb '  disruption: {maxUnavailable: "abc"}'
reject "negative replicas" "spec.replicas in body should be greater than or equal to 0" bad-replicas '  replicas: -1'
# Creating a pool is creating pods: nothing that reaches into the node, no PDB that blocks node drains.
reject "hostNetwork" "spec.template.spec.hostNetwork is not allowed" bad-hostnet '      hostNetwork: true'
reject "hostPID" "spec.template.spec.hostPID is not allowed" bad-hostpid '      hostPID: true'
reject "hostIPC" "spec.template.spec.hostIPC is not allowed" bad-hostipc '      hostIPC: true'
reject "hostPath volume" "hostPath volumes are not allowed" bad-hostpath \
  '      volumes: [{name: root, hostPath: {path: /}}]'
reject "privileged container" "spec.template.spec.containers: privileged containers are not allowed" bad-priv \
  '          securityContext: {privileged: true}'
reject "privileged init container" "spec.template.spec.initContainers: privileged containers are not allowed" \
  bad-priv-init '      initContainers: [{name: init, image: busybox, securityContext: {privileged: true}}]'
reject "maxUnavailable 0" "disruption.maxUnavailable must allow at least one eviction" bad-pdb0 \
  '  disruption: {maxUnavailable: 0}'
reject "maxUnavailable 0%" "disruption.maxUnavailable must allow at least one eviction" bad-pdb0p \
  '  disruption: {maxUnavailable: "0%"}'
reject "kv.pool without a namespace part" 'spec.kv.pool must be "<namespace>.<name>"' bad-kv-pool \
  '  kv: {pool: orders}'
reject "unknown field (strict field validation, no pruning surprise)" 'unknown field "spec.autoscaling.minReplica"' \
  bad-field '  autoscaling: {minReplica: 2}'
expect_fail "missing workflows" "spec.workflows: Required value" bash -c \
  'printf "apiVersion: gasoline.dev/v1alpha1\nkind: GasolineWorkerPool\nmetadata: {name: bad-wf}\nspec:\n  template: {spec: {containers: [{name: a, image: b}]}}\n" | kubectl -n "$1" apply -f -' _ "$ns"
expect_fail "empty workflows" "spec.workflows in body should have at least 1 items" bash -c \
  'printf "apiVersion: gasoline.dev/v1alpha1\nkind: GasolineWorkerPool\nmetadata: {name: bad-wf2}\nspec:\n  workflows: []\n  template: {spec: {containers: [{name: a, image: b}]}}\n" | kubectl -n "$1" apply -f -' _ "$ns"
expect_fail "no containers" "spec.template.spec.containers: Required value" bash -c \
  'printf "apiVersion: gasoline.dev/v1alpha1\nkind: GasolineWorkerPool\nmetadata: {name: bad-c}\nspec:\n  workflows: [a]\n  template: {spec: {}}\n" | kubectl -n "$1" apply -f -' _ "$ns"
expect_fail "container without image" "spec.template.spec.containers[0].image: Required value" bash -c \
  'printf "apiVersion: gasoline.dev/v1alpha1\nkind: GasolineWorkerPool\nmetadata: {name: bad-i}\nspec:\n  workflows: [a]\n  template: {spec: {containers: [{name: a}]}}\n" | kubectl -n "$1" apply -f -' _ "$ns"
expect_fail "missing spec" "spec: Required value" bash -c \
  'printf "apiVersion: gasoline.dev/v1alpha1\nkind: GasolineWorkerPool\nmetadata: {name: bad-s}\n" | kubectl -n "$1" apply -f -' _ "$ns"
left="$(k get gwp -o name | sort | tr '\n' ' ')"
[ "$left" = "gasolineworkerpool.gasoline.dev/full gasolineworkerpool.gasoline.dev/minimal " ] ||
  fail "rejected pools were stored: ${left}"

# --- selectorLabels are immutable (rule on spec with oldSelf) ----------------------------------------------------
immutable="spec.selectorLabels is immutable"
expect_fail "changing a selectorLabel" "$immutable" \
  kubectl -n "$ns" patch gwp full --type merge -p '{"spec":{"selectorLabels":{"track":"canary"}}}'
expect_fail "adding a selectorLabel" "$immutable" \
  kubectl -n "$ns" patch gwp full --type merge -p '{"spec":{"selectorLabels":{"zone":"a"}}}'
expect_fail "removing selectorLabels" "$immutable" \
  kubectl -n "$ns" patch gwp full --type json -p '[{"op":"remove","path":"/spec/selectorLabels"}]'
expect_fail "adding selectorLabels to a pool without" "$immutable" \
  kubectl -n "$ns" patch gwp minimal --type merge -p '{"spec":{"selectorLabels":{"track":"stable"}}}'
k patch gwp full --type merge -p '{"spec":{"selectorLabels":{"track":"stable"},"replicas":4}}' >/dev/null ||
  fail "an update keeping selectorLabels was rejected"
k patch gwp minimal --type merge -p '{"spec":{"replicas":2}}' >/dev/null || fail "an update of a pool without selectorLabels was rejected"
info "ok: selectorLabels cannot be added, removed or changed; other updates pass"

# --- status subresource and printer columns ------------------------------------------------------------------
k patch gwp minimal --subresource=status --type merge -p '{"status":{"observedGeneration":2,"replicas":2,
  "readyReplicas":1,"updatedReplicas":2,"availableReplicas":1,"activeWorkers":2,
  "selector":"app.kubernetes.io/instance=minimal,app.kubernetes.io/name=gasoline-worker",
  "conditions":[{"type":"Ready","status":"True","reason":"AllReplicasReady","message":"","lastTransitionTime":"2026-01-01T00:00:00Z","observedGeneration":2},
                {"type":"Progressing","status":"False","reason":"UpToDate","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}' \
  >/dev/null || fail "writing status through the status subresource failed"
[ "$(k get gwp minimal -o jsonpath='{.spec.replicas}')" = 2 ] || fail "a status write changed spec"
expect_fail "a condition with an invalid status" "Unsupported value: \"Maybe\"" \
  kubectl -n "$ns" patch gwp minimal --subresource=status --type merge -p \
  '{"status":{"conditions":[{"type":"Ready","status":"Maybe","reason":"X","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}'

# (sed, not head: head would close the pipe early and kubectl's SIGPIPE would fail the pipeline under pipefail)
header="$(k get gwp | sed -n 1p | tr -s ' ')"
[ "$header" = "NAME REPLICAS READY ACTIVE MIN MAX CPU STATUS AGE" ] || fail "printer columns: '${header}'"
header="$(k get gwp -o wide | sed -n 1p | tr -s ' ')"
[ "$header" = "NAME REPLICAS READY ACTIVE MIN MAX CPU STATUS AGE PAUSED" ] || fail "wide printer columns: '${header}'"
row="$(k get gwp minimal --no-headers | tr -s ' ' | cut -d' ' -f1-8)"
[ "$row" = "minimal 2 1 2 1 10 70 True" ] || fail "printer row '${row}', want 'minimal 2 1 2 1 10 70 True'"
row="$(k get gwp full -o wide --no-headers | tr -s ' ' | awk '{print $1, $(NF)}')"
[ "$row" = "full true" ] || fail "wide row (name, paused) '${row}'"
k get gasoline -o name | grep 'gasolineworkerpool.gasoline.dev/minimal' >/dev/null || fail "the 'gasoline' category does not list pools"
k get gasolineworkerpools.gasoline.dev minimal -o name >/dev/null || fail "plural name"
info "ok: printer columns ($(k get gwp minimal | tr -s ' ' | tail -1))"

# --- scale subresource ---------------------------------------------------------------------------------------
k scale gwp/minimal --replicas=3 >/dev/null || fail "kubectl scale gwp/minimal failed"
[ "$(k get gwp minimal -o jsonpath='{.spec.replicas}')" = 3 ] || fail "kubectl scale did not set spec.replicas"
scale="$(k get gwp minimal --subresource=scale -o jsonpath='{.spec.replicas}|{.status.replicas}|{.status.selector}')"
[ "$scale" = "3|2|app.kubernetes.io/instance=minimal,app.kubernetes.io/name=gasoline-worker" ] ||
  fail "scale subresource reads '${scale}'"
expect_fail "a negative scale" "spec.replicas" \
  kubectl -n "$ns" patch gwp minimal --subresource=scale --type merge -p '{"spec":{"replicas":-1}}'
k patch gwp minimal --subresource=scale --type merge -p '{"spec":{"replicas":0}}' >/dev/null || fail "scaling to 0"
[ "$(k get gwp minimal -o jsonpath='{.spec.replicas}')" = 0 ] || fail "a scale patch to 0 did not reach spec.replicas"
info "ok: kubectl scale works through the scale subresource (spec.replicas, status.replicas, status.selector)"
info "PASS operator.crd"
