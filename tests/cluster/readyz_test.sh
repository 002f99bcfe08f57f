#!/usr/bin/env bash
# The apiserver answers /readyz with "ok" through kubectl and the generated kubeconfig.
source "$(dirname "$0")/lib.sh"
out="$(kubectl get --raw /readyz)" || fail "kubectl get --raw /readyz failed"
[ "$out" = ok ] || fail "/readyz answered '${out}', want 'ok'"
info "/readyz: ${out}"
ver="$(kubectl get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
if [ -z "$ver" ] || [ "$ver" = "v0.0.0-master+\$Format:%H\$" ]; then fail "apiserver reports no version (got '${ver}')"; fi
info "apiserver version: ${ver}"
