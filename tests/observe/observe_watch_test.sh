#!/usr/bin/env bash
# observe.gasctl_watch: gasctl as a person uses it. Against a local kv with two sidecars and the example app:
# `--help` shows examples; `gasctl status` counts each pool's workflows by status; `gasctl watch POOL` runs in a
# detached tmux session (a real terminal, 150x40) and the test reads the screen with capture-pane: one frame at a
# time (the screen is cleared), rates from the second frame on, both workers, counts that follow new work, a
# "kv unreachable" frame while the kv is down and the pool again once it is back. Piped or with --once it prints
# one plain-text frame without control codes. The tmux server runs on a private socket and is killed at the end.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || fail "tmux is missing: ./hack/deps.sh installs it"
need_binaries gasoline-kv gasoline-worker gasoline-example-app gasctl
POOL=observe

# --help: the examples a person copies.
help="$("${BIN}/gasctl" --help)"
for want in "Examples:" "gasctl watch shop" "gasctl status" "GASOLINE_TOKEN_FILE"; do
  grep -qF -- "$want" <<<"$help" || fail "gasctl --help lacks '${want}':"$'\n'"$help"
done
"${BIN}/gasctl" watch --help | grep -qF -- "gasctl watch shop --once" || fail "gasctl watch --help has no examples"
info "ok: gasctl --help and watch --help show examples"

make_secrets
start_kv 1
start_worker worker-1 "$POOL"
start_worker worker-2 "$POOL"
gasctl dispatch --pool "$POOL" --name noop --count 50 >/dev/null
wait_until "50 workflows completed" 60 completed_at_least 50 "$POOL"
wait_until "both workers active" 30 bash -c \
  "'${BIN}/gasctl' --kv '${KV_ADDRESSES}' --token-file '${WORK}/token' status | grep -E '^${POOL} +2 +2 '"

# gasctl status: a table with a column per status, the pool's row counting what ran.
status_out="$(gasctl status)"
header="$(grep '^POOL' <<<"$status_out")" || fail "gasctl status has no table:"$'\n'"$status_out"
for col in WORKERS ACTIVE DUE "OLDEST DUE" PENDING RUNNING SLEEPING WAITING COMPLETE FAILED CANCELLED RETENTION; do
  grep -qF "$col" <<<"$header" || fail "gasctl status lacks column ${col}: ${header}"
done
python3 - "$status_out" "$POOL" <<'PY' || fail "gasctl status row is wrong:"$'\n'"$status_out"
import re, sys
lines = sys.argv[1].splitlines()
header = next(l for l in lines if l.startswith("POOL"))
row = next(l for l in lines if l.startswith(sys.argv[2] + " "))
# Columns start where the header's names start (a two-space gap separates them).
starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
names = [header[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
cells = dict(zip(names, (row[a:b].strip() for a, b in zip(starts, starts[1:] + [None]))))
assert cells["COMPLETE"] == "50" and cells["PENDING"] == "0" and cells["FAILED"] == "0", cells
assert cells["WORKERS"] == "2" and cells["ACTIVE"] == "2", cells
PY
info "ok: gasctl status counts the pool's workflows by status"

# Not a terminal (a pipe) and --once: one plain frame.
once="$(gasctl watch "$POOL" --once)"
piped="$(gasctl watch "$POOL" | cat)"
for out in "$once" "$piped"; do
  grep -qF "gasctl watch ${POOL}" <<<"$out" || fail "watch frame lacks its title:"$'\n'"$out"
  grep -qF "2 in the pool, 2 active" <<<"$out" || fail "watch frame lacks the workers line:"$'\n'"$out"
  grep -qE "complete 50( |$)" <<<"$out" || fail "watch frame lacks the counts:"$'\n'"$out"
  if grep -q $'\x1b' <<<"$out"; then fail "plain-text frame has terminal control codes"; fi
done
info "ok: watch --once and watch into a pipe print one plain frame"

# The live view in a real terminal.
TMUX_SOCKET="gasoline-observe-$$"
kill_tmux() { tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true; }
CLEANUP_HOOKS+=(kill_tmux)
tmux -L "$TMUX_SOCKET" -f /dev/null new-session -d -s watch -x 150 -y 40 \
  "'${BIN}/gasctl' --kv '${KV_ADDRESSES}' --token-file '${WORK}/token' --timeout-ms 1500 watch ${POOL}; sleep 60"
screen() { tmux -L "$TMUX_SOCKET" capture-pane -p -t watch; }
screen_has() { screen | grep -qE -- "$1"; }
wait_until "watch shows a rate (the second frame)" 30 screen_has 'throughput [0-9]+\.[0-9]/s leased'
wait_until "watch lists both workers" 10 bash -c "tmux -L '${TMUX_SOCKET}' capture-pane -p -t watch | grep -q worker-1 &&
  tmux -L '${TMUX_SOCKET}' capture-pane -p -t watch | grep -q worker-2"
frame="$(screen)"
[ "$(grep -c "gasctl watch ${POOL}" <<<"$frame")" -eq 1 ] || fail "the screen shows more than one frame:"$'\n'"$frame"
grep -qE "^0 +worker-|^1 +worker-" <<<"$frame" || fail "no ranked worker rows:"$'\n'"$frame"
info "ok: the live view, one frame on screen:"$'\n'"$frame"

# New work shows up on the screen by itself.
gasctl dispatch --pool "$POOL" --name noop --count 30 >/dev/null
wait_until "watch counts the 30 new workflows (complete 80)" 30 screen_has 'complete 80( |$)'

# The kv goes away and comes back: the view says so and carries on.
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
wait_until "watch says the kv is unreachable" 30 screen_has 'kv unreachable'
start kv-0-again "${BIN}/gasoline-kv" --data-dir "${WORK}/kv-0" --token-file "${WORK}/token" \
  --listen "127.0.0.1:${KV_PORTS[0]}" --metrics-listen "127.0.0.1:${KV_METRICS_PORTS[0]}" --no-fsync
wait_until "watch shows the pool again after the kv restarted" 60 screen_has 'complete 80( |$)'
info "PASS observe.gasctl_watch"
