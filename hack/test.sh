#!/usr/bin/env bash
# The README's test command: deps, build, then every ctest label this machine can run. Prints ctest's summary and
# exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

./hack/deps.sh
./hack/build.sh

# The local Kubernetes (kube-apiserver, etcd, kwok, ...) is built from Go modules into a cache outside the repo.
# The real node's parts (containerd, runc, kubelet, ...) only where it can run (root, namespaces): elsewhere
# the `real` tests are skipped with that reason, and building them would only cost time.
if [ -x hack/cluster.sh ] && [ "${GASOLINE_SKIP_CLUSTER:-0}" != "1" ]; then
  if ./hack/cluster.sh can-real; then
    ./hack/cluster.sh build --real
  else
    ./hack/cluster.sh build
  fi
fi

labels="${TEST_LABELS:-}"
args=(--test-dir build --output-on-failure --timeout 900)
[ -n "$labels" ] && args+=(-L "$labels")
status=0
ctest "${args[@]}" || status=$?
echo "test.sh: finished in $(( $(date +%s) - start ))s with status ${status}"
exit "$status"
