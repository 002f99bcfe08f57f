#!/usr/bin/env bash
# ctest fixture cleanup: stops the cluster by pid and removes its state dir.
set -euo pipefail
exec "$(cd "$(dirname "$0")/../.." && pwd)/hack/cluster.sh" down
