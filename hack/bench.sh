#!/usr/bin/env bash
# Runs every gasoline-bench scenario and prints their JSON lines on stdout (progress goes to stderr).
#   ./hack/bench.sh [--quick] [scenario ...]     scenarios: pull raft fleet (default: all that exist)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
scenarios=()
for a in "$@"; do
  case "$a" in
    --quick) quick=(--quick) ;;
    -h|--help) sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) scenarios+=("$a") ;;
  esac
done
./hack/build.sh gasoline-bench gasoline-kv >&2
available=$(build/bin/gasoline-bench --help | awk '/^Subcommands:/{f=1;next} f && NF {print $1}')
[ ${#scenarios[@]} -eq 0 ] && scenarios=(pull raft fleet)
for s in "${scenarios[@]}"; do
  if ! grep -qx "$s" <<<"$available"; then
    echo "bench: scenario '$s' is not built yet; skipping" >&2
    continue
  fi
  echo "bench: running $s ${quick[*]}" >&2
  build/bin/gasoline-bench "$s" "${quick[@]}"
done
