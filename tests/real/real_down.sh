#!/usr/bin/env bash
# ctest fixture cleanup of the `real` label, and its test: `hack/cluster.sh down` must leave the host
# exactly as real.up found it (processes, mounts, cgroups, links, routes, namespaces, iptables,
# sysctls, host paths), compared with the snapshot real.up took before `up --real`.
. "$(dirname "$0")/lib.sh"
skip_unless_real
before="${GASOLINE_CLUSTER_DIR}.host-before"
start=$SECONDS
"$CLUSTER_SH" down
info "down took $((SECONDS - start))s"
[ -f "$before" ] || fail "no snapshot ${before}: real.up did not get as far as taking it"
after="$(mktemp)"
trap 'rm -f "$after"' EXIT
"${TESTS_REAL_DIR}/host_snapshot.sh" >"$after"
if ! diff -u "$before" "$after"; then
  fail "the host differs after down (- before up, + after down)"
fi
info "ok: the host is as before up ($(grep -c . "$after") facts compared: $(grep '^## ' "$after" | tr -d '#' | tr '\n' ' '))"
rm -f "$before"
