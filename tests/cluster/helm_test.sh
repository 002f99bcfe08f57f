#!/usr/bin/env bash
# shellcheck disable=SC2154  # ns is set by new_namespace (lib.sh)
# The built helm 3 runs, and installs a chart into the cluster (pods go Running under kwok).
source "$(dirname "$0")/lib.sh"
work="$(mktemp -d)"
export HELM_CACHE_HOME="$work/cache" HELM_CONFIG_HOME="$work/config" HELM_DATA_HOME="$work/data"
new_namespace helm
# shellcheck disable=SC2064  # expand now
trap "helm uninstall demo -n '$ns' >/dev/null 2>&1 || true; kubectl delete namespace '$ns' --wait=false >/dev/null 2>&1 || true; rm -rf '$work'" EXIT

v="$(helm version --short)" || fail "helm version failed"
info "helm version: ${v}"
case "$v" in v3.*) ;; *) fail "want helm v3, got '${v}'" ;; esac

helm create "$work/demo" >/dev/null
helm install demo "$work/demo" -n "$ns" --wait --timeout 120s >/dev/null || fail "helm install failed"
st="$(helm status demo -n "$ns" -o json | sed -n 's/.*"status":"\([a-z-]*\)".*/\1/p' | head -1)"
[ "$st" = deployed ] || fail "helm release status '${st}', want deployed"
wait_until "chart's deployment has a Running pod" 60 bash -c "[ \"\$(kubectl -n '$ns' get pods --field-selector=status.phase=Running -o name | wc -l)\" -ge 1 ]"
helm uninstall demo -n "$ns" >/dev/null || fail "helm uninstall failed"
info "helm install/uninstall ok"
