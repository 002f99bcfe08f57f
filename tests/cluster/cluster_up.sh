#!/usr/bin/env bash
# ctest fixture setup: a full cluster (etcd, apiserver, controller-manager, scheduler, kwok,
# metrics-server) in GASOLINE_CLUSTER_DIR, replacing any leftover of an interrupted run.
set -euo pipefail
CLUSTER_SH="$(cd "$(dirname "$0")/../.." && pwd)/hack/cluster.sh"
"$CLUSTER_SH" built || { echo "FAIL: run 'hack/cluster.sh build' first" >&2; exit 1; }
"$CLUSTER_SH" down
"$CLUSTER_SH" up --full
