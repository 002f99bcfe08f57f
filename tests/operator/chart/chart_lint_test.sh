#!/usr/bin/env bash
# operator.chart_lint: charts/gasoline lints cleanly (--strict) and renders what it should with default and
# non-default values (check_manifests.py: security contexts, least-privilege RBAC without wildcards, the
# operator's flags, the kv StatefulSet, the CRD identical to crds/). `helm package` carries the CRD. Every
# key of values.yaml is documented. No cluster needed.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# The chart's crds/ entry is a relative symlink to the single source of truth.
[ -L "$CHART_CRD_FILE" ] || fail "${CHART_CRD_FILE} must be a symlink to crds/ (found a regular file or nothing)"
[ "$(readlink "$CHART_CRD_FILE")" = "../../../crds/gasoline.dev_gasolineworkerpools.yaml" ] ||
  fail "${CHART_CRD_FILE} links to '$(readlink "$CHART_CRD_FILE")'"
cmp -s "$CHART_CRD_FILE" "$CRD_FILE" || fail "the chart's CRD does not resolve to crds/"
info "ok: charts/gasoline/crds/ links to crds/"

# Values sets: name|release|namespace|helm flags (one word per flag).
custom_flags=(
  --set kv.replicas=5 --set operator.replicas=1 --set kv.persistence.enabled=false
  --set kv.auth.existingSecret=my-kv-token --set kv.auth.existingSecretKey=tok --set kv.auth.serviceAccountTokens=false
  --set kv.raftSecret.existingSecret=my-raft-secret --set kv.raftSecret.existingSecretKey=rs --set kv.tls.existingSecret=my-kv-tls
  --set kv.auth.credentialsSecret=my-kv-credentials --set gateway.enabled=false
  --set image.repository=registry.example/operator --set-string "image.tag=sha256:$(printf 'a%.0s' {1..64})"
  --set sidecar.image.repository=registry.example/worker --set-string sidecar.image.tag=9.9.9
  --set fullnameOverride=gw --set samplePool.enabled=true --set operator.podAntiAffinity=hard
  --set kv.podAntiAffinity=none --set commonLabels.team=gasoline --set 'operator.extraArgs={--log-level=debug}'
  --set kv.pdb.maxUnavailable=1 --set 'operator.allowedKvAddresses={kv-b.example:7400}'
  --set-json 'networkPolicy.kvClientsFrom=[{"namespaceSelector":{"matchLabels":{"gasoline.dev/pools":"true"}}}]'
  --set-json 'networkPolicy.kvMetricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]'
  --set-json 'networkPolicy.poolAdminFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]'
  --set-json 'networkPolicy.operatorMetricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}},{"ipBlock":{"cidr":"10.1.2.0/24"}}]'
)
external_flags=(--set kv.enabled=false --set 'operator.kvAddress=kv-a.example:7400\,kv-b.example:7400')
monitoring_flags=(--set monitoring.serviceMonitors.enabled=true --set monitoring.podMonitor.enabled=true
                  --set monitoring.prometheusRule.enabled=true --set monitoring.dashboard.enabled=true
                  --set monitoring.labels.release=kps --set monitoring.prometheusRule.additionalLabels.team=platform
                  --set 'monitoring.podMonitor.namespaces={shop,billing}')
norbac_flags=(--set operator.rbac.create=false --set operator.serviceAccount.create=false
              --set operator.serviceAccount.name=existing-sa --set kv.rbac.create=false
              --set kv.serviceAccount.create=false --set kv.serviceAccount.name=existing-kv-sa
              --set networkPolicy.enabled=false)

render_and_check() {  # scenario release namespace flags...
  local scenario="$1" release="$2" ns="$3"; shift 3
  local out="${CHART_WORK}/${scenario}-${release}.yaml"
  quiet_helm lint --strict "$CHART" --namespace "$ns" "$@" >"${CHART_WORK}/lint.out" ||
    { cat "${CHART_WORK}/lint.out"; fail "helm lint --strict failed for scenario ${scenario}"; }
  grep -q '0 chart(s) failed' "${CHART_WORK}/lint.out" || { cat "${CHART_WORK}/lint.out"; fail "helm lint: failures"; }
  if grep -E '^\[(WARNING|ERROR)\]' "${CHART_WORK}/lint.out"; then fail "helm lint warnings for scenario ${scenario}"; fi
  quiet_helm template "$release" "$CHART" --namespace "$ns" --include-crds "$@" >"$out" ||
    fail "helm template failed for scenario ${scenario}"
  info "scenario ${scenario} (release ${release}, namespace ${ns}): lint ok, $(grep -c '^kind:' "$out") objects"
  python3 "$CHECK_PY" "$out" --scenario "$scenario" --release "$release" --namespace "$ns" \
    --crd "$CRD_FILE" --example "${CHART}/examples/sample-pool.yaml" || fail "rendered manifests of scenario ${scenario}"
}

render_and_check default gasoline gasoline-system
render_and_check default acme shop
render_and_check custom gw tenant-a "${custom_flags[@]}"
render_and_check external gasoline gasoline-system "${external_flags[@]}"
render_and_check norbac gasoline gasoline-system "${norbac_flags[@]}"
render_and_check monitoring gasoline gasoline-system "${monitoring_flags[@]}"

# Without the include flag the CRD is not a template (helm installs crds/ itself).
quiet_helm template gasoline "$CHART" >"${CHART_WORK}/no-crds.yaml"
! grep -q '^kind: CustomResourceDefinition' "${CHART_WORK}/no-crds.yaml" || fail "the CRD is rendered as a template"

# kv.enabled=false without an address is refused with a clear message.
expect_fail "kv.enabled=false without operator.kvAddress" "kv.enabled=false needs operator.kvAddress" \
  quiet_helm template gasoline "$CHART" --set kv.enabled=false

# NOTES.txt renders and tells how to apply a pool, `kubectl get gwp`, the per-namespace token Secret and the
# CRD upgrade. (`helm install --dry-run` needs a cluster, and `helm template` skips NOTES.txt: a copy of the
# chart renders it into a ConfigMap through `tpl`.)
notes_chart="${CHART_WORK}/notes-chart"
cp -rL "$CHART" "$notes_chart"
mkdir -p "${notes_chart}/notes-src" && cp "${CHART}/templates/NOTES.txt" "${notes_chart}/notes-src/NOTES.txt"
cat >"${notes_chart}/templates/zz-notes.yaml" <<'TPL'
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: {{ tpl (.Files.Get "notes-src/NOTES.txt") . | quote }}
TPL
# By default pools need no token Secret (ServiceAccount tokens); without them NOTES says how to copy it.
for flags in "" "--set kv.auth.serviceAccountTokens=false --set kv.auth.existingSecret=mine --set samplePool.enabled=true"; do
  # shellcheck disable=SC2086  # word splitting of the flags is intended
  helm template gasoline "$notes_chart" --namespace gasoline-system --show-only templates/zz-notes.yaml $flags \
    | python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["data"]["notes"])' >"${CHART_WORK}/notes.out" ||
    fail "NOTES.txt does not render (flags: ${flags})"
  wants=("kubectl -n gasoline-system get gwp" "examples/sample-pool.yaml" "gasoline-kv-token" "kubectl apply --server-side -f")
  if [ -z "$flags" ]; then
    wants+=("projected ServiceAccount token" "do not copy it into pool namespaces"
            "http://gasoline-gateway.gasoline-system.svc:7490")
  else
    wants+=("create secret generic gasoline-kv-token" "Prefer")
  fi
  for want in "${wants[@]}"; do
    grep -qF -- "$want" "${CHART_WORK}/notes.out" || { cat "${CHART_WORK}/notes.out"; fail "NOTES.txt does not mention '${want}'"; }
  done
done
grep -qF 'kv.auth.existingSecret is "mine"' "${CHART_WORK}/notes.out" || fail "NOTES.txt: no existingSecret hint"
info "ok: NOTES.txt"

# helm package takes the CRD's content through the symlink.
quiet_helm package "$CHART" -d "${CHART_WORK}/pkg" >/dev/null || fail "helm package failed"
tgz="$(ls "${CHART_WORK}"/pkg/gasoline-*.tgz)"
mkdir -p "${CHART_WORK}/untar" && tar -m -xzf "$tgz" -C "${CHART_WORK}/untar"
packaged="${CHART_WORK}/untar/gasoline/crds/gasoline.dev_gasolineworkerpools.yaml"
if [ ! -f "$packaged" ] || [ -L "$packaged" ]; then fail "the packaged chart has no regular crds/ file"; fi
cmp -s "$packaged" "$CRD_FILE" || fail "the packaged CRD differs from crds/"
[ -f "${CHART_WORK}/untar/gasoline/examples/sample-pool.yaml" ] || fail "the packaged chart lacks examples/sample-pool.yaml"
quiet_helm template gasoline "$tgz" --include-crds | grep '^kind: CustomResourceDefinition' >/dev/null ||
  fail "the packaged chart does not render the CRD"
info "ok: helm package ($(basename "$tgz")) carries the CRD identical to crds/"

# Every key of values.yaml has a comment right above it (the `# --` lines).
python3 - "${CHART}/values.yaml" <<'PY' || fail "values.yaml has undocumented keys"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
bad = []
for n, line in enumerate(lines):
    if re.match(r"^\s*[A-Za-z][A-Za-z0-9_]*:", line):
        prev = next((l for l in reversed(lines[:n]) if l.strip()), "")
        if not prev.strip().startswith("#"):
            bad.append(f"line {n + 1}: {line.strip()}")
for b in bad:
    print("undocumented:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
info "ok: every key of values.yaml is documented"
info "PASS operator.chart_lint"
