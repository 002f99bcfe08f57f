#!/usr/bin/env bash
# operator.chart_schema: values.schema.json rejects wrong types, out-of-range values, unknown enum values and
# unknown keys with a message naming the key, in `helm template`, `helm lint` and `helm install`; values of the
# right type pass. No cluster needed.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2016  # a Python expression, not shell
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); assert s["$schema"].startswith("http://json-schema.org/draft-07/")' \
  "${CHART}/values.schema.json" || fail "values.schema.json is not a draft-07 JSON schema"

tmpl() { quiet_helm template gasoline "$CHART" --namespace gasoline-system "$@"; }

# The example the brief asks for: a string where an integer belongs.
expect_fail "kv.replicas=three (template)" "at '/kv/replicas': got string, want integer" tmpl --set kv.replicas=three
expect_fail "kv.replicas=three (lint)" "at '/kv/replicas': got string, want integer" \
  quiet_helm lint "$CHART" --set kv.replicas=three
expect_fail "operator.replicas=two" "at '/operator/replicas': got string, want integer" tmpl --set operator.replicas=two
expect_fail "samplePool.enabled=yes" "at '/samplePool/enabled': got string, want boolean" tmpl --set samplePool.enabled=yes
expect_fail "kv.persistence.enabled=1" "at '/kv/persistence/enabled': got number, want boolean" \
  tmpl --set kv.persistence.enabled=1
expect_fail "operator.extraArgs as a string" "at '/operator/extraArgs': got string, want array" \
  tmpl --set operator.extraArgs=--foo
expect_fail "kv.replicas=0" "at '/kv/replicas'" tmpl --set kv.replicas=0
expect_fail "operator.replicas=-1" "at '/operator/replicas'" tmpl --set operator.replicas=-1
expect_fail "kv.podAntiAffinity=sometimes" "at '/kv/podAntiAffinity'" tmpl --set kv.podAntiAffinity=sometimes
expect_fail "image.pullPolicy=Sometimes" "at '/image/pullPolicy'" tmpl --set image.pullPolicy=Sometimes
expect_fail "kv.pdb.maxUnavailable=abc" "at '/kv/pdb/maxUnavailable'" tmpl --set kv.pdb.maxUnavailable=abc
expect_fail "monitoring.prometheusRule.shedRatio=2" "at '/monitoring/prometheusRule/shedRatio'" \
  tmpl --set monitoring.prometheusRule.shedRatio=2
expect_fail "monitoring.serviceMonitors.interval=soon" "at '/monitoring/serviceMonitors/interval'" \
  tmpl --set monitoring.serviceMonitors.interval=soon
expect_fail "monitoring.dashboard.label (unknown key)" "monitoring/dashboard" tmpl --set monitoring.dashboard.label=x
expect_fail "kv.persistence.size=big" "at '/kv/persistence/size'" tmpl --set kv.persistence.size=big
expect_fail "networkPolicy.operatorMetricsFrom as a string" "at '/networkPolicy/operatorMetricsFrom': got string, want array" \
  tmpl --set networkPolicy.operatorMetricsFrom=monitoring
expect_fail "a typo in a key (kv.replica)" "additional properties 'replica' not allowed" tmpl --set kv.replica=3
expect_fail "an unknown top-level key" "additional properties 'operatorr' not allowed" tmpl --set operatorr.replicas=1
values="${CHART_WORK}/bad-values.yaml"
printf 'kv:\n  resources:\n    requests: [cpu]\n' >"$values"
expect_fail "kv.resources.requests as a list (values file)" "at '/kv/resources/requests': got array, want object" \
  tmpl -f "$values"

# Right types pass.
tmpl --set kv.replicas=5 --set operator.replicas=0 --set kv.pdb.maxUnavailable=34% --set kv.persistence.size=20Gi \
  --set-string image.tag=1.10 --set samplePool.enabled=true --set 'operator.extraArgs={--a=1,--b=2}' >/dev/null ||
  fail "valid values were rejected"
printf 'global:\n  imageRegistry: x\nkv:\n  resources:\n    requests: {cpu: 1, memory: 1Gi}\n' >"$values"
tmpl -f "$values" >/dev/null || fail "valid values file (with global) was rejected"
info "ok: values of the right types are accepted"
info "PASS operator.chart_schema"
