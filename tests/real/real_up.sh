#!/usr/bin/env bash
# ctest fixture setup of the `real` label: our images (hack/images.sh from GASOLINE_BIN_DIR into
# GASOLINE_IMAGES_DIR), a snapshot of the host, then a real node (`hack/cluster.sh up --real`),
# replacing any leftover of an interrupted run.
. "$(dirname "$0")/lib.sh"
skip_unless_real
"$CLUSTER_SH" built --real || fail "run 'hack/cluster.sh build --real' first (hack/test.sh does)"
"$CLUSTER_SH" down
"$(dirname "$0")/../../hack/images.sh" --bin-dir "${GASOLINE_BIN_DIR}" --out "${GASOLINE_IMAGES_DIR}"
"${TESTS_REAL_DIR}/host_snapshot.sh" >"${GASOLINE_CLUSTER_DIR}.host-before"
"$CLUSTER_SH" up --real
