#!/usr/bin/env bash
# lint.include_boundaries: the layering of the sources (docs/design.md), checked on their #include lines, so a
# change that reaches across a boundary fails here rather than in review:
# - the pure cores include nothing with I/O: kv/assign only itself; kv/store's codecs, commands and apply never
#   RocksDB (only state_machine.* is the RocksDB shell); operator/pool never the Kubernetes client;
# - kv/rpc (the wire protocol, linked by the sidecar, gasctl and the operator) knows nothing of the kv's inside;
# - kv/raft sees the service only through kv/service/log.h, and its loop-free core (RaftCore, framing, peers,
#   snapshots) includes no libuv, no thread headers and reads no clock, so the deterministic fixture test
#   (tests/raft/fixture_test.cc) runs exactly the code gasoline-kv runs on its loop thread;
# - the sidecar (worker/), the gateway and the operator reach the kv through kv/rpc only.
# Each rule: DIRECTORY (its files, not its subdirectories), then the include prefixes its files may use.
set -euo pipefail
cd "$(dirname "$0")/../.."

rules=(
  "common|common/"
  "kv|common/ kv/ operator/kube/"
  "kv/assign|kv/assign/"
  "kv/store|common/ kv/store/"
  "kv/rpc|common/ kv/rpc/"
  "kv/service|common/ kv/assign/ kv/rpc/ kv/service/ kv/store/"
  "kv/raft|common/ kv/raft/ kv/store/ kv/service/log.h"
  "kv/auth|common/ kv/auth/ kv/rpc/ operator/kube/"
  "kv/cli|common/ kv/cli/ kv/rpc/"
  "operator/pool|operator/pool/"
  "operator/kube|common/ operator/kube/"
  "operator|common/ kv/rpc/ operator/"
  "worker|common/ kv/rpc/ worker/"
  "worker/sdk|common/ worker/sdk/"
  "worker/examples|common/ worker/"
  "gateway|common/ kv/rpc/ gateway/"
)
# Files of kv/store that are the RocksDB shell; every other file there must stay free of RocksDB.
rocksdb_shell="kv/store/state_machine.h kv/store/state_machine.cc"
# The loop-free raft core (the library gasoline_raft_core); raft_log.cc, transport.cc and tls_pump.cc are its shell.
raft_core="kv/raft/libraft.h kv/raft/raft_core.h kv/raft/raft_core.cc kv/raft/entry_framing.h kv/raft/entry_framing.cc
  kv/raft/peers.h kv/raft/peers.cc kv/raft/raft_result.h kv/raft/raft_result.cc kv/raft/snapshot.h kv/raft/snapshot.cc"

problems=0
checked=0
for rule in "${rules[@]}"; do
  dir="${rule%%|*}"
  read -r -a allowed <<<"${rule#*|}"
  for f in "$dir"/*.h "$dir"/*.cc; do
    [ -e "$f" ] || continue
    while IFS=: read -r line inc; do
      checked=$((checked + 1))
      ok=0
      for prefix in "${allowed[@]}"; do
        case "$inc" in "$prefix"*) ok=1 ;; esac
      done
      if [ "$ok" = 0 ]; then
        echo "lint.include_boundaries: ${f}:${line} includes \"${inc}\"; ${dir}/ may include only: ${allowed[*]}" >&2
        problems=$((problems + 1))
      fi
    done < <(grep -n '^#include "' "$f" | sed 's/^\([0-9]*\):#include "\([^"]*\)".*/\1:\2/')
  done
done

# A new directory of sources needs a rule: otherwise it would be outside every boundary.
while read -r dir; do
  known=0
  for rule in "${rules[@]}"; do [ "${rule%%|*}" = "$dir" ] && known=1; done
  if [ "$known" = 0 ]; then
    echo "lint.include_boundaries: ${dir}/ has sources but no rule here: add one" >&2
    problems=$((problems + 1))
  fi
done < <(find common kv operator worker gateway \( -name '*.cc' -o -name '*.h' \) -printf '%h\n' | sort -u)

for f in kv/store/*.h kv/store/*.cc; do
  case " $rocksdb_shell " in *" $f "*) continue ;; esac
  if grep -n -E '^#include (<rocksdb/|"kv/store/state_machine.h")' "$f" >&2; then
    echo "lint.include_boundaries: ${f} is part of kv/store's pure core and must not include RocksDB or the state machine" >&2
    problems=$((problems + 1))
  fi
done

for f in $raft_core; do
  if [ ! -e "$f" ]; then
    echo "lint.include_boundaries: ${f} is listed as part of the raft core but does not exist: update the list" >&2
    problems=$((problems + 1))
    continue
  fi
  if grep -n -E '^#include (<uv\.h>|<raft/uv\.h>|<thread>|<mutex>|<shared_mutex>|<condition_variable>|<future>|<atomic>|"(kv/raft/(libraft_uv|raft_log|transport|tls_pump)\.h|common/clock\.h)")' "$f" >&2; then
    echo "lint.include_boundaries: ${f} is part of the loop-free raft core and must not include libuv, threads or the clock" >&2
    problems=$((problems + 1))
  fi
  if grep -n -E '_clock::now\(|(^|[^.>[:alnum:]_])(wall_ms|mono_ms)\(' "$f" >&2; then
    echo "lint.include_boundaries: ${f} is part of the loop-free raft core and must not read a clock (take it from CoreOptions)" >&2
    problems=$((problems + 1))
  fi
done

if [ "$problems" -gt 0 ]; then
  echo "lint.include_boundaries: ${problems} include(s) across a boundary" >&2
  exit 1
fi
echo "lint.include_boundaries: ${checked} project includes in ${#rules[@]} directories keep their boundaries"
