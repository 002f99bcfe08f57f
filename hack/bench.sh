#!/usr/bin/env bash
# Runs the gasoline-bench scenarios and prints their JSON lines on stdout (progress goes to stderr).
#   ./hack/bench.sh [--quick] [scenario ...]     scenarios: pull raft fleet operator tls gateway (default: all six)
#   ./hack/bench.sh peers [--quick]   Gasoline vs Graphile Worker and Restate (installs them: not in the default list;
#                                     hack/bench/peers/run-peers.sh, docs/benchmarks-peers.md)
# `operator` builds and starts its own minimal Kubernetes (hack/cluster.sh up --minimal, state in
# build/bench-cluster) and stops it; the first build of its binaries takes minutes. docs/benchmarks.md has results.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
scenarios=()
for a in "$@"; do
  case "$a" in
    --quick) quick=(--quick) ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) scenarios+=("$a") ;;
  esac
done
./hack/build.sh gasoline-bench gasoline-kv gasoline-worker gasoline-example-app gasoline-operator gasoline-gateway >&2
available=$(build/bin/gasoline-bench --help | awk '/^Subcommands:/{f=1;next} f && NF {print $1}')
[ ${#scenarios[@]} -eq 0 ] && scenarios=(pull raft fleet operator tls gateway)
for s in "${scenarios[@]}"; do
  if [ "$s" != peers ] && ! grep -qx "$s" <<<"$available"; then
    echo "bench: gasoline-bench has no scenario '$s' (it has: ${available//$'\n'/ }); skipping" >&2
    continue
  fi
  echo "bench: running $s ${quick[*]}" >&2
  if [ "$s" = peers ]; then
    ./hack/bench/peers/run-peers.sh "${quick[@]}"
    continue
  fi
  if [ "$s" = operator ]; then
    export GASOLINE_CLUSTER_DIR="$PWD/build/bench-cluster"
    ./hack/cluster.sh build >&2
    ./hack/cluster.sh up --minimal >&2
    trap './hack/cluster.sh down >&2' EXIT
    KUBECONFIG="${GASOLINE_CLUSTER_DIR}/kubeconfig" build/bin/gasoline-bench operator "${quick[@]}"
    ./hack/cluster.sh down >&2
    trap - EXIT
    continue
  fi
  build/bin/gasoline-bench "$s" "${quick[@]}"
done
