# shellcheck shell=bash
# Shared by the product tests (tests/real/product_*_test.sh): the whole product as a user runs it on the real
# node. product_install_test.sh installs the chart and a pool once (fixture gasoline_product); the workload,
# failure, autoscaling and upgrade tests use that install; product_uninstall_test.sh removes it and checks that
# nothing is left.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELEASE=gasoline
PRODUCT_NS=gasoline-product     # the release namespace (operator, kv)
POOLS_NS=gasoline-product-pools # the pool's own namespace: its token Secret is written there by the chart
POOL=sample
KV_POOL="${POOLS_NS}.${POOL}"
PRODUCT_DIR="${GASOLINE_CLUSTER_DIR:-/tmp/gasoline-cluster}/product"
BIN_DIR="${GASOLINE_BIN_DIR:-$(cd "${TESTS_REAL_DIR}/../.." && pwd)/build/bin}"
export CHART="${TESTS_REAL_DIR}/../../charts/gasoline"
KV_CLIENT="${RELEASE}-kv-client.${PRODUCT_NS}.svc:7400"
# Every replica by its own DNS name (the headless Service): `gasctl cluster status` asks each one.
KV_ALL="$(for i in 0 1 2; do printf '%s-kv-%s.%s-kv.%s.svc:7400,' "$RELEASE" "$i" "$RELEASE" "$PRODUCT_NS"; done)"
KV_ALL="${KV_ALL%,}"
# lib.sh's pod helpers and in_node_dns's search path use $ns.
export ns="$PRODUCT_NS"

require_product() {
  require_node
  [ -s "${PRODUCT_DIR}/token" ] || fail "no product install in ${PRODUCT_DIR}: the fixture real.product_install did not run or failed"
}

# gasctl ARGS...: the CLI from this build, in the node's namespace with the cluster's DNS, through the kv's client
# Service, as an admin outside the pods would run it: the chart's token, over TLS trusting the chart's CA.
gasctl() {
  in_node_dns env GASOLINE_KV="$KV_CLIENT" GASOLINE_TOKEN_FILE="${PRODUCT_DIR}/token" \
    GASOLINE_KV_TLS_CA="${PRODUCT_DIR}/ca.crt" "${BIN_DIR}/gasctl" "$@"
}

# pool_pods: names of the pool's running pods (not terminating).
pool_pods() {
  kc -n "$POOLS_NS" get pods -l "gasoline.dev/pool=${POOL}" \
    -o jsonpath='{range .items[?(@.status.phase=="Running")]}{.metadata.deletionTimestamp}{"|"}{.metadata.name}{"\n"}{end}' |
    awk -F'|' '$1 == "" { print $2 }'
}
ready_pool_pods() {
  kc -n "$POOLS_NS" get pods -l "gasoline.dev/pool=${POOL}" \
    -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.metadata.name}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk -F'|' '$1 == "" && $3 == "True" { print $2 }'
}

# gwp_field JSONPATH: one field of the pool.
gwp_field() { kc -n "$POOLS_NS" get gwp "$POOL" -o jsonpath="$1"; }

# kv_leader_pod: the kv pod that leads (its Raft id is its ordinal + 1).
kv_leader_pod() {
  local id
  id="$(gasctl --kv "$KV_ALL" cluster status -o json 2>/dev/null | jq -r '[.. | objects | select(.state? == "leader") | .id] | first // empty')"
  [ -n "$id" ] || return 1
  echo "${RELEASE}-kv-$((id - 1))"
}

# kv_metric NAME: the sum of a counter over every kv replica (each pod's /metrics, through its pod IP).
kv_metric() {
  local ip total=0 v
  for ip in $(kc -n "$PRODUCT_NS" get pods -l app.kubernetes.io/component=kv -o jsonpath='{.items[*].status.podIP}'); do
    v="$(in_node curl -sf --max-time 2 "http://${ip}:9400/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }')" || v=0
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# dispatch_count NAME COUNT ID_PREFIX INPUT [RATE]: gasctl dispatch --count; every dispatch must be acknowledged.
dispatch_count() {
  local out
  out="$(gasctl dispatch --pool "$KV_POOL" --name "$1" --count "$2" --id "$3" --input "$4" --rate "${5:-0}" 2>&1)" ||
    fail "dispatching $2 '$1' workflows failed: ${out}"
  info "dispatched $2 '$1' workflows (ids $3-<n>): $(tail -1 <<<"$out")"
}

# A jq filter for the workflows whose id starts with one of the prefixes given with --args ("PREFIX-<n>").
# shellcheck disable=SC2016  # jq variables, expanded by jq
JQ_PREFIXED='def prefixed: select(.id as $id | any($ARGS.positional[]; . as $p | $id | startswith($p + "-")));'

# all_workflows FILE: every workflow of the pool, as JSON, into FILE.
all_workflows() { gasctl list --pool "$KV_POOL" --all --limit 5000 -o json >"$1"; }

# unfinished ID_PREFIX...: how many acknowledged workflows with these id prefixes are not complete yet.
unfinished() {
  local f
  f="$(mktemp)"
  all_workflows "$f" || { rm -f "$f"; echo 999999; return; }
  jq --args "${JQ_PREFIXED}"'[.workflows[] | prefixed
              | select(.status != "complete")] | length' "$@" <"$f"
  rm -f "$f"
}
all_complete() { [ "$(unfinished "$@")" = 0 ]; }

# check_history EXPECTED_COUNT ID_PREFIX...: the whole history of the workflows with these id prefixes: exactly
# EXPECTED_COUNT top-level ones exist (every acknowledged dispatch; an order's child ship is counted apart), each
# of them and of their children is complete, and each ran exactly its steps: noop and ship 1; sleep input.times + 1;
# burn input.steps; order as many as its own state counted (a step committed twice, or a commit lost and redone,
# makes the kv's count differ from the app's).
check_history() {
  local want="$1" f bad n
  shift
  f="$(mktemp)"
  all_workflows "$f" || fail "listing the pool's workflows failed"
  n="$(jq --args "${JQ_PREFIXED}"'[.workflows[] | prefixed
                   | select((.parent_id // "") == "")] | length' "$@" <"$f")"
  [ "$n" = "$want" ] || fail "history: ${n} workflows with prefixes $*, ${want} were acknowledged"
  bad="$(jq -r --args "${JQ_PREFIXED}"'
    def expected:
      if .name == "noop" or .name == "ship" then 1
      elif .name == "sleep" then ((.input.times // 1) + 1)
      elif .name == "burn" then (.input.steps // 1)
      elif .name == "order" then .output.steps
      else .steps end;
    .workflows[] | prefixed
    | select(.status != "complete" or .steps != expected)
    | "\(.id) \(.name) status=\(.status) steps=\(.steps) expected=\(expected) error=\(.error)"' "$@" <"$f")"
  rm -f "$f"
  [ -z "$bad" ] || fail "history: $(wc -l <<<"$bad") workflows incomplete or with a wrong step count:
$(head -20 <<<"$bad")"
  info "ok: history of ${want} workflows ($*): every one complete, every step committed exactly once"
}

# leased_by POD: "id steps" of the running workflows whose lease a worker of this pod holds.
leased_by() {
  gasctl list --pool "$KV_POOL" --status running --all --limit 5000 -o json |
    jq -r --arg p "$1-" '.workflows[] | select((.lease_worker // "") | startswith($p)) | "\(.id) \(.steps)"'
}

# progressed FILE: every workflow listed ("id steps") has committed a step since, or completed: its work went on
# without the worker that held it.
progressed() {
  local f left
  f="$(mktemp)"
  all_workflows "$f" || { rm -f "$f"; return 1; }
  left="$(jq -r --rawfile held "$1" '
    ($held | split("\n") | map(select(. != "") | split(" ") | {key: .[0], value: (.[1] | tonumber)}) | from_entries) as $h
    | [.workflows[] | select($h[.id] != null) | select(.status != "complete" and .steps <= $h[.id])] | length' <"$f")"
  rm -f "$f"
  [ "$left" = 0 ]
}

# larger A B: the larger of two numbers (floats included).
larger() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a ? b : a) }'; }

# now_ms: wall clock in ms (takeover times).
now_ms() { date +%s%3N; }

# pool_manifest: the sample pool (charts/gasoline/examples/sample-pool.yaml) with every example workflow, at least
# 2 pods (the failure tests need one to lose and one to take over), and a scale-down fast enough for a test.
pool_manifest() {
  cat <<YAML
apiVersion: gasoline.dev/v1alpha1
kind: GasolineWorkerPool
metadata: {name: ${POOL}}
spec:
  workflows: [order, ship, noop, sleep, burn]
  template:
    metadata:
      labels: {app: gasoline-sample}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: gasoline/example-app:${IMAGE_TAG}
          args: [--threads=4, --batch=16]
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
  autoscaling:
    enabled: true
    minReplicas: 2
    maxReplicas: 4
    targetCPUUtilizationPercentage: 50
    behavior:
      scaleUp: {stabilizationWindowSeconds: 0}
      scaleDown:
        stabilizationWindowSeconds: 20
        policies: [{type: Pods, value: 2, periodSeconds: 10}]
  drain:
    timeoutSeconds: 20
YAML
}
