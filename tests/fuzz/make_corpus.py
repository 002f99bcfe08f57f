#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_frame and fuzz_record (tests/fuzz/corpus/). Run it again after a protocol change.

Each seed is a 4-byte fuzz header (cap selector, chunking seed; see frame_fuzz.cc) followed by a byte stream of
frames: u32 length, u8 type, u64 request id, MessagePack body (docs/protocol.md, "Framing").
Files named regression_* are inputs the fuzzer once failed on, kept verbatim; this script leaves them alone.
"""
import os
import struct


def mp(v):
    """A small MessagePack encoder: None, bool, int, float, str, bytes, list, dict."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        if 0 <= v < 2**64:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v if len(v) < 256 else b"\xc5" + struct.pack(">H", len(v)) + v
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return head + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(type(v))


HELLO, WELCOME, REQUEST, RESPONSE, BUMP, ERROR = range(1, 7)


def frame(ftype, rid, body):
    raw = body if isinstance(body, bytes) else mp(body)
    return struct.pack(">IBQ", 9 + len(raw), ftype, rid) + raw


def req(rid, op, args):
    return frame(REQUEST, rid, {"op": op, "args": args})


DEFAULT_CAP = b"\x00\x12\x34\x57"  # 16 MiB cap
SMALL_CAP = b"\x90\x02\x46\x8b"    # cap = 9 + 16*8 bytes

hello = frame(HELLO, 0, {"version": 1, "token": "fuzz-token", "client": "fuzz"})
dispatch = {"pool": "p", "name": "job", "id": "wf-1", "input": {"a": [1, 2.5, None, True]},
            "tags": {"team": "x"}, "idempotency_key": "k1", "max_attempts": 3, "run_at": 1700000000000}
step_sleep = {"kind": "sleep", "until": 1700000000500, "state": {"i": 1}}
commit = {"workflow_id": "wf-1", "worker": "w1", "token": 4096, "consumed_signal_seq": 2,
          "step": step_sleep, "children": [{"pool": "p", "name": "child", "id": "c-1"}],
          "signals": [{"workflow_id": "wf-2", "name": "go", "body": {"x": 1}, "signal_id": "s1"}]}
entry = {"ts": 1700000000000, "cmds": [
    {"t": "ping", "pings": [{"pool": "p", "worker": "w1", "pod": "pod-1", "version": "1", "workflows": ["job"],
                             "cpu": 0.25, "free_slots": 4}]},
    {"t": "dispatch", "spec": dispatch},
    {"t": "lease", "pool": "p", "worker": "w1", "items": [["wf-1", 1700000000000]]},
    {"t": "commit", "id": "wf-1", "worker": "w1", "token": 4096, "step": step_sleep, "consumed": 0,
     "children": [], "signals": []},
    {"t": "signal", "spec": {"workflow_id": "wf-1", "name": "go", "body": None, "signal_id": ""}},
    {"t": "cancel", "id": "wf-1", "reason": "test"},
    {"t": "drain", "pool": "p", "worker": "w1"},
    {"t": "undrain", "pool": "p", "worker": "w1"},
    {"t": "leave", "pool": "p", "worker": "w1"},
    {"t": "reclaim", "pool": "p", "worker": "w1", "lost_after": 2000}]}

seeds = {
    "hello_status": DEFAULT_CAP + hello + req(1, "status", {}),
    "dispatch": DEFAULT_CAP + hello + req(2, "dispatch", dispatch),
    "commit": DEFAULT_CAP + hello + req(3, "commit", commit),
    "pull_ping": DEFAULT_CAP + hello + req(4, "ping", {"pool": "p", "worker": "w1", "workflows": ["job"], "cpu": 0.5})
                 + req(5, "pull", {"pool": "p", "worker": "w1", "max": 8, "cpu": 0.9,
                                   "shed": {"start": 0.5, "end": 0.8, "min_ratio": 100}}),
    "log_entry": DEFAULT_CAP + frame(RESPONSE, 6, entry),
    "server_frames": DEFAULT_CAP + frame(WELCOME, 0, {"version": 1, "server": "gasoline-kv"})
                     + frame(RESPONSE, 7, {"ok": False, "error": {"code": "not_leader", "message": "m",
                                                                  "leader": "kv-1:7400"}})
                     + frame(BUMP, 0, {"pool": "p", "due": 3}) + frame(ERROR, 0, {"code": "protocol", "message": "x"}),
    "small_cap_oversize": SMALL_CAP + hello + req(8, "dispatch", dispatch),
    "bad_type": DEFAULT_CAP + struct.pack(">IBQ", 9, 9, 1),
    "short_length": DEFAULT_CAP + struct.pack(">I", 3) + b"abc",
    "not_msgpack": DEFAULT_CAP + hello + frame(REQUEST, 9, b"\xc1\x82\xa2op"),
    "nested": DEFAULT_CAP + hello + frame(REQUEST, 10, b"\x91" * 300 + b"\xc0"),
}



def write_seeds(corpus, seeds):
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", corpus)
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {out}")


write_seeds("frame", seeds)

# fuzz_record (record_fuzz.cc): byte 0 picks the record kind (0 workflow, 1 worker, 2 signal, 3 Raft effects
# entry), the rest is a DB record as kv/store writes it (a map with sorted keys) or an effects payload.
def record(fields):
    return mp(dict(sorted(fields.items())))


workflow = {"id": "wf-1", "pool": "p", "name": "job", "tags": {"team": "x"}, "input": {"a": [1, 2.5, None]},
            "state": None, "output": None, "error": "", "status": 1, "attempt": 0, "max_attempts": 3,
            "created_ts": 1700000000000, "updated_ts": 1700000000001, "parent_id": "", "notify_parent": False,
            "wake_ts": -1, "wake_reason": "dispatch", "wait_signals": ["go"], "lease_worker": "w1",
            "lease_token": 4096, "last_commit_worker": "", "last_commit_token": 0, "next_signal_seq": 1,
            "consumed_signal_seq": 0, "steps": 2}
worker = {"pool": "p", "id": "w1", "pod": "pod-1", "version": "1", "state": 0, "last_ping_ts": 1700000000000,
          "cpu": 0.25, "free_slots": 4, "workflows": ["job"]}
signal = {"workflow_id": "wf-1", "seq": 1, "name": "go", "body": {"x": 1}, "ts": 1700000000000}
record_seeds = {
    "workflow": b"\x00" + record(workflow),
    "worker": b"\x01" + record(worker),
    "signal": b"\x02" + record(signal),
    "workflow_unsorted_extra": b"\x00" + mp({"zz": {"new": [1]}, **workflow}),
    "workflow_partial_nil": b"\x00" + record({"id": "wf-2", "tags": None, "status": 4, "input": None}),
    # ["fx", index, ts, commands, [key, value-or-nil, ...]] with binary keys and values (kv/store/effects.h).
    "effects": b"\x03" + mp(["fx", 7, 1700000000000, 2,
                             [b"f" + b"wf-1", record(workflow), b"p" + b"p\x00\x02wf-1", b"", b"x" + b"p\x00" + bytes(8) + b"wf-1", None]]),
    "effects_empty": b"\x03" + mp(["fx", 1, 0, 0, []]),
    # A compressed payload: ["fz", raw size, lz4 block]; this block holds 6 literal bytes "abcdef" (not valid effects
    # once expanded, so the fuzzer starts from both sides of the check).
    "effects_compressed": b"\x03" + mp(["fz", 6, b"\x60abcdef"]),
}
write_seeds("record", record_seeds)
