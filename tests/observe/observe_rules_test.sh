#!/usr/bin/env bash
# observe.rules: the chart's alerts and dashboard, offline. `helm template` renders the PrometheusRule, and
# promtool checks it (`check rules`) and runs alerts_test.yaml (`test rules`: every alert fires where it should and
# stays silent in the healthy neighbour case). Every dashboard query, turned into a recording rule, goes through
# `promtool check rules` too, so a PromQL syntax error in a panel fails here without a Prometheus. Needs helm
# (hack/cluster.sh build) and promtool (hack/deps.sh: prometheus).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool is missing: ./hack/deps.sh installs the prometheus package"
use_helm

render_rules "${WORK}/rules.yaml"
promtool check rules "${WORK}/rules.yaml" || fail "promtool check rules rejects the chart's alerts"
info "ok: promtool check rules: the chart's alerts"

cp "${OBSERVE_DIR}/alerts_test.yaml" "${WORK}/alerts_test.yaml"
promtool test rules "${WORK}/alerts_test.yaml" || fail "promtool test rules: an alert fired or stayed silent wrongly"
info "ok: promtool test rules: every alert fires and stays silent as alerts_test.yaml says"

# Every alert of the chart has a unit test (a new alert without one fails here).
python3 - "${WORK}/rules.yaml" "${WORK}/alerts_test.yaml" <<'PY' || fail "an alert has no promtool unit test"
import sys, yaml
alerts = {r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]}
tested = {c["alertname"] for t in yaml.safe_load(open(sys.argv[2]))["tests"] for c in t.get("alert_rule_test", [])
          if c.get("exp_alerts")}
missing = sorted(alerts - tested)
print("alerts without a firing test:", missing) if missing else None
sys.exit(1 if missing else 0)
PY
info "ok: every alert has a firing test case"

# Non-default thresholds reach the expressions.
render_rules "${WORK}/rules-custom.yaml" --set monitoring.prometheusRule.overdueSeconds=600 \
  --set monitoring.prometheusRule.shedFor=1h --set monitoring.prometheusRule.replicaLagEntries=50
grep -q 'gasoline_kv_oldest_due_age_seconds) > 600' "${WORK}/rules-custom.yaml" || fail "overdueSeconds not applied"
grep -q "for: 1h" "${WORK}/rules-custom.yaml" || fail "shedFor not applied"
grep -q '> 50' "${WORK}/rules-custom.yaml" || fail "replicaLagEntries not applied"
promtool check rules "${WORK}/rules-custom.yaml" >/dev/null || fail "custom thresholds give invalid rules"
info "ok: thresholds from values"

# The dashboard's queries as recording rules: promtool parses each.
dashboard_queries "${WORK}/queries.tsv" 'observe' '1m'
python3 - "${WORK}/queries.tsv" "${WORK}/dashboard-rules.yaml" <<'PY'
import sys, yaml
rules = [{"record": f"gasoline:dashboard_query_{i}", "expr": line.split("\t", 1)[1]}
         for i, line in enumerate(open(sys.argv[1]).read().splitlines())]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
PY
promtool check rules "${WORK}/dashboard-rules.yaml" || fail "a dashboard query is not valid PromQL"
info "ok: $(wc -l <"${WORK}/queries.tsv") dashboard queries parse"

# Only metrics the binaries export: every gasoline_* name in the dashboard and the alerts is registered in the
# C++ (histogram series by their family name).
python3 - "$REPO_ROOT" "${CHART}/dashboards/gasoline.json" "${WORK}/rules.yaml" <<'PY' || fail "unknown metric names"
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
code = "".join(p.read_text() for d in ("kv", "worker", "operator") for p in (root / d).rglob("*.cc"))
known = set(re.findall(r'"(gasoline_[a-z_]+)"', code))
used = set()
for f in sys.argv[2:]:
    used |= set(re.findall(r"gasoline_[a-z_]+", open(f).read()))
def family(name):
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return name
unknown = sorted(u for u in used if family(u) not in known)
print("metrics not exported by any binary:", unknown) if unknown else None
sys.exit(1 if unknown else 0)
PY
info "ok: the dashboard and the alerts use only exported metrics"
info "PASS observe.rules"
