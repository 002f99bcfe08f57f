#!/usr/bin/env bash
# observe.fleet: the dashboard and the alerts against real data. A local fleet on loopback (3 gasoline-kv
# replicas with Raft, 2 gasoline-worker sidecars each with the example app, a gasoline-operator whose API server
# is unreachable), a real `prometheus` scraping them every second with the labels the chart's ServiceMonitors and
# PodMonitor give (namespace, job, pool, pod) and the chart's rendered alert rules loaded; a workload of short and
# sleeping workflows. Then, through Prometheus's HTTP API: every dashboard panel query returns data, a few of them
# the values this fleet must show (one leader, two active workers, shares summing to 1, ...), every alert rule
# evaluates without error and none fires on this healthy fleet, and work for a pool without workers turns
# GasolinePoolNoActiveWorkers pending. Every process is stopped by pid at the end.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || fail "prometheus is missing: ./hack/deps.sh installs it"
need_binaries gasoline-kv gasoline-worker gasoline-example-app gasctl gasoline-operator
use_helm
POOL=observe

make_secrets
start_kv 3
info "kv replicas on ${KV_ADDRESSES}"
# `workers` is a linearizable read: it answers only once a leader is elected (status answers on any replica).
wait_until "the kv elected a leader" 60 gasctl --timeout-ms 1000 workers
start_worker worker-1 "$POOL"
start_worker worker-2 "$POOL"

# The operator with an API server that refuses connections: it serves /metrics (reconcile counters at 0, API
# errors with code 0), which is all the operator panels need here; reconciling real pools is tests/operator's job.
read -r op_metrics op_probe api_port <<<"$(free_ports 3)"
cat >"${WORK}/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:${api_port}", insecure-skip-tls-verify: true}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: observe}}]
current-context: none
KC
start operator "${BIN}/gasoline-operator" --kubeconfig "${WORK}/kubeconfig" --metrics-listen "127.0.0.1:${op_metrics}" \
  --probe-listen "127.0.0.1:${op_probe}" --kv-address "$KV_ADDRESSES" --kv-token-file "${WORK}/token" \
  --sidecar-image gasoline/gasoline-worker:test
wait_until "the operator serves /metrics" 30 curl -sf "http://127.0.0.1:${op_metrics}/metrics"

# Prometheus: the chart's rules, and targets labelled as the ServiceMonitors/PodMonitor would label them.
render_rules "${WORK}/rules.yaml"
prom_port="$(free_ports 1)"
{
  echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
  echo "rule_files: [${WORK}/rules.yaml]"
  echo "scrape_configs:"
  echo "  - job_name: gasoline-kv"
  echo "    static_configs:"
  echo "      - labels: {namespace: observe}"
  echo "        targets: [$(printf '"127.0.0.1:%s",' "${KV_METRICS_PORTS[@]}" | sed 's/,$//')]"
  echo "  - job_name: observe/gasoline-sidecars"
  echo "    static_configs:"
  echo "      - {labels: {namespace: observe, pool: ${POOL}, pod: worker-1}, targets: [\"127.0.0.1:${ADMIN_PORTS[worker-1]}\"]}"
  echo "      - {labels: {namespace: observe, pool: ${POOL}, pod: worker-2}, targets: [\"127.0.0.1:${ADMIN_PORTS[worker-2]}\"]}"
  echo "  - job_name: gasoline-operator"
  echo "    static_configs:"
  echo "      - {labels: {namespace: observe}, targets: [\"127.0.0.1:${op_metrics}\"]}"
} >"${WORK}/prometheus.yml"
promtool check config "${WORK}/prometheus.yml" >/dev/null || fail "prometheus.yml is invalid: $(cat "${WORK}/prometheus.yml")"
start prometheus prometheus --config.file "${WORK}/prometheus.yml" --storage.tsdb.path "${WORK}/tsdb" \
  --web.listen-address "127.0.0.1:${prom_port}" --storage.tsdb.retention.time 1h
PROM="http://127.0.0.1:${prom_port}"
wait_until "prometheus is ready" 60 curl -sf "${PROM}/-/ready"

# query EXPR [CHECK]: the instant query's result as JSON lines "labels<TAB>value"; fails on an API error.
# CHECK is a Python expression over `r` (the result list) that must hold.
query() {
  curl -sf --max-time 10 "${PROM}/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, math, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
r = d["data"]["result"]
vals = [float(x["value"][1]) for x in r]
ok = eval(sys.argv[1]) if len(sys.argv) > 1 else bool(r)
for x in r:
    print(json.dumps(x["metric"], sort_keys=True), x["value"][1], sep="\t")
sys.exit(0 if ok else 1)' "${@:2}"
}
wait_until "every target is up (3 kv, 2 sidecars, 1 operator)" 60 \
  query 'up' 'len(r) == 6 and all(v == 1 for v in vals)'

# The workload: a steady trickle of noop workflows during the checks, and sleeping workflows so every status
# panel has something to show.
start trickle "${BIN}/gasctl" --kv "$KV_ADDRESSES" --token-file "${WORK}/token" dispatch --pool "$POOL" --name noop \
  --count 1000000 --rate 20
gasctl dispatch --pool "$POOL" --name sleep --input '{"ms": 3000, "times": 3}' --count 40 >/dev/null
wait_until "100 workflows completed" 120 completed_at_least 100 "$POOL"

# Every panel query returns data ($__rate_interval as Grafana computes it for a 1 s scrape: 4 x 1 s, rounded up).
dashboard_queries "${WORK}/queries.tsv" "$POOL" '15s'
while IFS=$'\t' read -r title expr; do
  wait_until "panel '${title}' has data: ${expr}" 60 query "$expr"
done <"${WORK}/queries.tsv"
info "ok: all $(wc -l <"${WORK}/queries.tsv") dashboard queries return data"

# What this fleet must show.
wait_until "exactly one kv leader" 30 query 'sum(gasoline_kv_raft_is_leader)' 'vals == [1]'
wait_until "two active workers in the pool" 30 query "max(gasoline_kv_active_workers{pool=\"${POOL}\"})" 'vals == [2]'
wait_until "throughput above 0" 30 query "sum(rate(gasoline_kv_leases_granted_total{pool=\"${POOL}\"}[15s]))" 'vals[0] > 0'
wait_until "both workers have a share, summing to 1" 30 query \
  "sum by (pool, pod) (rate(gasoline_worker_tasks_pulled_total{pool=\"${POOL}\"}[15s])) / on (pool) group_left sum by (pool) (rate(gasoline_worker_tasks_pulled_total{pool=\"${POOL}\"}[15s]))" \
  'len(r) == 2 and abs(sum(vals) - 1) < 0.01 and min(vals) > 0'
wait_until "the workflows by status add up to the live and finished ones" 30 query \
  "sum(max by (status) (gasoline_kv_workflows_by_status{pool=\"${POOL}\"})) - sum(max by (state) (gasoline_kv_workflows{pool=\"${POOL}\"}))" 'vals == [0]'
wait_until "completed workflows counted" 30 query \
  "max(gasoline_kv_workflows_by_status{pool=\"${POOL}\",status=\"complete\"})" 'vals[0] >= 100'
wait_until "Raft commits take between 0 and 5 s (p99)" 30 query \
  'histogram_quantile(0.99, sum by (le) (rate(gasoline_kv_raft_commit_duration_seconds_bucket[15s])))' '0 < vals[0] < 5'
wait_until "the leader learned of one leader per replica at least" 30 query \
  'sum(gasoline_kv_raft_leader_changes_total)' 'vals[0] >= 3'
wait_until "no due workflow waits long (oldest due under 30 s)" 30 query \
  "max(gasoline_kv_oldest_due_age_seconds{pool=\"${POOL}\"})" 'vals[0] < 30'

# The alert rules: loaded, evaluated without error, and silent on this healthy fleet.
rules_ok() {
  curl -sf "${PROM}/api/v1/rules?type=alert" | python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules
       if r.get("health") != "ok" or r.get("lastEvaluation", "0001").startswith("0001")]
print(len(rules), "rules; not evaluated or failing:", bad)
firing = [a for r in rules for a in r.get("alerts", []) if a["state"] == "firing"]
print("firing:", firing)
sys.exit(0 if len(rules) == 6 and not bad and not firing else 1)'
}
wait_until "all 6 alert rules evaluated (health ok) and none firing" 60 rules_ok
rules_ok
# Each alert expression also evaluates as a plain query (an empty result on a healthy fleet is right).
python3 -c 'import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        print(r["alert"], " ".join(r["expr"].split()), sep="\t")' "${WORK}/rules.yaml" >"${WORK}/alerts.tsv"
while IFS=$'\t' read -r alert expr; do
  query "$expr" 'True' >/dev/null || fail "alert ${alert}: its expression does not evaluate"
done <"${WORK}/alerts.tsv"
info "ok: every alert expression evaluates"

# One alert on real data: work dispatched to a pool nobody serves makes GasolinePoolNoActiveWorkers pending at
# once (it fires after its 2 minutes; promtool's tests cover the firing).
gasctl dispatch --pool nobody --name noop --count 5 >/dev/null
alert_pending() {
  curl -sf "${PROM}/api/v1/alerts" | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
sys.exit(0 if any(a["labels"].get("alertname") == "GasolinePoolNoActiveWorkers" and a["labels"].get("pool") == "nobody"
                  and a["state"] in ("pending", "firing") for a in alerts) else 1)'
}
wait_until "GasolinePoolNoActiveWorkers is pending for pool nobody (5 due, no worker)" 60 alert_pending
info "PASS observe.fleet"
