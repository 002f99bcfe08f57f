#!/usr/bin/env bash
# Writes tests/raft/testdata/previous-release.tar.gz: the Raft directory (log segments and snapshots) of a
# single-voter gasoline-kv of an earlier release after a small workload, and manifest.json (every workflow's final
# status and steps). raft_upgrade_test replays it with the current gasoline-kv on an empty state directory: a log
# written by the previous release must replay on this one.
#
# Usage: make_previous_release_log.sh OLD_BIN_DIR
#   OLD_BIN_DIR  build/bin of the previous release (git worktree add /tmp/old <commit>; cmake --build ... --target
#                gasoline-kv gasctl gasoline-worker gasoline-example-app): its kv writes the log, its sidecar and
#                example app run the workload, as a cluster of that release would.
set -euo pipefail
bin="$1"
old_kv="$bin/gasoline-kv"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
echo "previous-release-token" >"$work/token"
raft=127.0.0.1:27871 client=127.0.0.1:27872
# Snapshots every 64 entries, so the data holds snapshots and the log after them.
"$old_kv" --data-dir "$work/data" --token-file "$work/token" --listen "$client" --metrics-listen "" \
  --raft-id 1 --peer "1=${raft},${client}" --snapshot-threshold 64 --snapshot-trailing 16 >"$work/kv.log" 2>&1 &
pids+=($!)
gasctl() { "$bin/gasctl" --kv "$client" --token-file "$work/token" "$@"; }
for _ in $(seq 100); do gasctl status >/dev/null 2>&1 && break; sleep 0.1; done
"$bin/gasoline-worker" --kv "$client" --token-file "$work/token" --pool old --api-port 0 \
  --port-file "$work/api.port" --ping-interval 100ms --cgroup-root "$work/no-cgroup" >"$work/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/api.port" ] && break; sleep 0.1; done
"$bin/gasoline-example-app" --api "127.0.0.1:$(cat "$work/api.port")" >"$work/app.log" 2>&1 &
pids+=($!)

for i in $(seq 1 60); do gasctl dispatch --pool old --name noop --id "noop-$i" >/dev/null; done
for i in $(seq 1 8); do gasctl dispatch --pool old --name sleep --id "sleep-$i" --input '{"ms": 50, "times": 2}' >/dev/null; done
for i in 1 2 3; do
  gasctl dispatch --pool old --name order --id "order-$i" --key "order-key-$i" \
    --input '{"payment_timeout_ms": 800, "hold_ms": 20}' >/dev/null
done
for i in 1 2; do gasctl signal "order-$i" --name payment --body '{"amount": 12}' >/dev/null; done
for i in $(seq 1 4); do gasctl dispatch --pool nobody --name noop --id "waiting-$i" >/dev/null; done
gasctl cancel waiting-4 --reason "no longer needed" >/dev/null
# Until the old pool has nothing left to run.
for _ in $(seq 300); do
  left=$(gasctl -o json list --pool old --limit 1000 |
    jq '[.workflows[] | select(.status != "complete" and .status != "failed" and .status != "cancelled")] | length')
  [ "$left" = 0 ] && break
  sleep 0.1
done
[ "$left" = 0 ] || { echo "workload did not finish: $left left" >&2; exit 1; }
{
  gasctl -o json list --pool old --limit 1000
  gasctl -o json list --pool nobody --limit 1000
} | jq -s '[.[].workflows[] | {id, status, steps}] | sort_by(.id)' >"$work/manifest.json"
kill -TERM "${pids[2]}" "${pids[1]}"
wait "${pids[2]}" "${pids[1]}" 2>/dev/null || true
kill -TERM "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
pids=()
ls "$work/data/raft" >&2
tar -C "$work" -czf "$here/previous-release.tar.gz" --sort=name --mtime=@0 --owner=0 --group=0 data/raft
cp "$work/manifest.json" "$here/previous-release-manifest.json"
echo "wrote $here/previous-release.tar.gz ($(du -h "$here/previous-release.tar.gz" | cut -f1)) and the manifest" \
  "($(jq length "$here/previous-release-manifest.json") workflows)"
