#include "kv/raft/raft_core.h"

#include "common/log.h"
#include "kv/raft/entry_framing.h"
#include "kv/raft/raft_result.h"
#include "kv/raft/snapshot.h"
#include "kv/store/effects.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace gasoline::raft {
namespace {

struct ApplyReq {
  struct raft_apply req {};
  RaftCore* core = nullptr;
  std::vector<kv::Done> dones;
  size_t commands = 0;
  std::chrono::steady_clock::time_point proposed;
};

struct BarrierReq {
  struct raft_barrier req {};
  kv::Done done;
  const char* what = "";
};

RaftCore* core_of(raft_fsm* fsm) { return static_cast<RaftCore*>(fsm->data); }

}  // namespace

RaftCore::RaftCore(struct raft& raft, store::StateMachine& sm, CoreOptions options)
    : raft_(raft), sm_(sm), options_(std::move(options)), speculation_(sm.committed()) {}

void RaftCore::bind(raft_fsm& fsm) {
  fsm.version = 3;
  fsm.data = this;
  fsm.apply = [](raft_fsm* f, const raft_buffer* buf, void** result) {
    *result = nullptr;
    return core_of(f)->apply(buf);
  };
  fsm.snapshot = [](raft_fsm* f, raft_buffer* bufs[], unsigned* n) { return core_of(f)->snapshot(bufs, n); };
  fsm.snapshot_async = [](raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
    return core_of(f)->snapshot_async(bufs, n);
  };
  fsm.snapshot_finalize = [](raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
    return core_of(f)->snapshot_finalize(bufs, n);
  };
  fsm.restore = [](raft_fsm* f, raft_buffer* buf) { return core_of(f)->restore(buf); };
}

// --- proposals -------------------------------------------------------------------------------------------------

void RaftCore::submit(std::deque<Pending>& batch) {
  if (raft_state(&raft_) != RAFT_LEADER) {
    speculation_.clear();
    for (auto& p : batch) p.done(failure(store::Code::kNotLeader, "this replica is not the leader"));
    batch.clear();
    return;
  }
  if (!speculation_.ready(raft_.current_term, raft_last_applied(&raft_), raft_last_index(&raft_))) {
    for (auto& p : batch) waiting_.push_back(std::move(p));
    batch.clear();
    catch_up();
    return;
  }
  while (!batch.empty()) propose_entry(batch);
}

// One entry of the batch's first commands.
void RaftCore::propose_entry(std::deque<Pending>& batch) {
  auto* req = new ApplyReq;
  req->core = this;
  store::Entry entry;
  // A new leader never goes back in time: at least the last applied and the last proposed timestamps.
  entry.ts = std::max({options_.wall_ms(), sm_.last_ts(), last_proposed_ts_});
  last_proposed_ts_ = entry.ts;
  while (!batch.empty() && entry.commands.size() < store::kMaxCommandsPerEntry) {
    entry.commands.push_back(std::move(batch.front().command));
    req->dones.push_back(std::move(batch.front().done));
    batch.pop_front();
  }
  req->commands = entry.commands.size();
  req->proposed = options_.steady_now();
  // raft_apply appends at the next index, on this thread, so the index the effects are computed for is known.
  const raft_index index = raft_last_index(&raft_) + 1;
  store::Applied applied;
  try {
    applied = speculation_.compute(entry, index, sm_.config());
  } catch (const std::exception& e) {
    auto res = failure(store::Code::kUnavailable, std::string("reading the state to propose failed: ") + e.what());
    for (auto& d : req->dones) d(res);
    delete req;
    return;
  }
  std::string payload = store::encode_effects(index, entry.ts, entry.commands.size(), applied.mutations);
  std::string framed = frame_entry(payload);
  raft_buffer buf;
  buf.len = framed.size();
  buf.base = raft_malloc(buf.len);
  std::memcpy(buf.base, framed.data(), buf.len);
  req->req.data = req;
  int rv = raft_apply(&raft_, &req->req, &buf, 1, [](struct raft_apply* r, int status, void*) {
    auto* req = static_cast<ApplyReq*>(r->data);
    RaftCore* self = req->core;
    auto it = self->proposals_.find(r->index);
    if (status == 0 && it != self->proposals_.end() && it->second.results.size() == req->dones.size()) {
      if (self->options_.on_proposal_done)
        self->options_.on_proposal_done(
            r->index, 0, req->commands,
            std::chrono::duration<double>(self->options_.steady_now() - req->proposed).count());
      auto answer = [dones = std::move(req->dones), results = std::move(it->second.results)] {
        for (size_t i = 0; i < dones.size(); ++i) dones[i](results[i]);
      };
      if (self->completions_) {
        self->completions_(std::move(answer));
      } else {
        answer();
      }
    } else {
      // Not cleared here: within a term the leader's entries stay in its log even when the callback reports a
      // failure (an I/O error, say), and may still commit; only a new term (Speculation::ready) or losing the
      // leadership (submit) invalidates the layers.
      if (status != 0 && self->options_.on_proposal_done)
        self->options_.on_proposal_done(r->index, status, req->commands, 0);
      auto res = status == 0 ? failure(store::Code::kUnavailable, "entry committed without its results")
                             : from_raft_status(status, "commit");
      for (auto& d : req->dones) d(res);
    }
    if (it != self->proposals_.end()) self->proposals_.erase(it);
    delete req;
  });
  if (rv != 0) {
    raft_free(buf.base);
    auto res = from_raft_status(rv, "propose");
    for (auto& d : req->dones) d(res);
    delete req;
    return;
  }
  if (req->req.index != index) {
    // Cannot happen with libraft 0.15 (it appends at last index + 1); if it did, the effects would be computed
    // for another place in the log than the one they land in.
    log::error("raft appended an entry at an unexpected index; exiting",
               {{"expected", index}, {"actual", req->req.index}});
    fatal(kExitStorageFailure, req->req.index,
          "entry computed for index " + std::to_string(index) + " appended elsewhere");
    return;
  }
  if (options_.on_proposed) options_.on_proposed(Proposed{index, entry, payload, applied.results});
  speculation_.push(index, std::move(applied.mutations));
  proposals_[index] = Proposal{std::move(applied.results), std::move(applied.wakes)};
}

void RaftCore::catch_up() {
  if (catching_up_) return;
  catching_up_ = true;
  barrier("catch up", [this](const store::Result& res) {
    catching_up_ = false;
    std::deque<Pending> held;
    held.swap(waiting_);
    if (!res.ok()) {
      for (auto& p : held) p.done(res);
      return;
    }
    // Ready now, or not the leader any more (they fail with kNotLeader), or behind again (another barrier).
    if (!held.empty()) submit(held);
  });
}

void RaftCore::barrier(const char* what, kv::Done done) {
  auto* req = new BarrierReq;
  req->done = std::move(done);
  req->what = what;
  req->req.data = req;
  int rv = raft_barrier(&raft_, &req->req, [](struct raft_barrier* r, int status) {
    auto* req = static_cast<BarrierReq*>(r->data);
    req->done(from_raft_status(status, req->what));
    delete req;
  });
  if (rv != 0) {
    req->done(from_raft_status(rv, what));
    delete req;
  }
}

void RaftCore::fail_held(const store::Result& result) {
  for (auto& p : waiting_) p.done(result);
  waiting_.clear();
}

// --- FSM ---------------------------------------------------------------------------------------------------

int RaftCore::apply(const raft_buffer* buf) {
  // libraft passes no index; it bumps last_applied only after apply returns.
  raft_index index = raft_last_applied(&raft_) + 1;
  std::string_view payload;
  if (!unframe_entry(buf->base, buf->len, payload)) {
    stop_on_unreadable_entry(index, "bad framing");
    return 0;
  }
  auto format = store::entry_format(payload);
  switch (format.format) {
    case store::EntryFormat::kEffects: return apply_effects(payload, index);
    case store::EntryFormat::kCommands: return apply_commands(payload, index);
    case store::EntryFormat::kUnknown: break;
  }
  stop_on_unreadable_entry(index, format.tag.empty()
                                      ? "not an entry of any format this version knows"
                                      : "entry format '" + format.tag + "' was written by a newer gasoline-kv");
  return 0;
}

// The effects a leader computed: every replica, the leader included, only writes them.
int RaftCore::apply_effects(std::string_view payload, raft_index index) {
  store::EffectsView effects;
  try {
    effects = store::decode_effects(payload, effects_scratch_);
  } catch (const std::exception& e) {
    stop_on_unreadable_entry(index, e.what());
    return 0;
  }
  bool applied = false;
  try {
    applied = sm_.apply_effects(effects, index);
  } catch (const std::exception& e) {
    exit_on_storage_failure(index, e);
    return 0;
  }
  speculation_.applied(index);
  if (!applied) return 0;  // replay of an entry already in RocksDB
  static const std::vector<store::Wake> kNone;
  auto it = proposals_.find(index);
  if (options_.on_applied)
    options_.on_applied(effects.ts, effects.commands, it != proposals_.end() ? it->second.wakes : kNone);
  return 0;
}

// A command entry, as versions before effects replication wrote them (still in older logs): computed here.
int RaftCore::apply_commands(std::string_view payload, raft_index index) {
  store::Entry entry;
  try {
    entry = store::decode_entry(payload);
  } catch (const std::exception& e) {
    stop_on_unreadable_entry(index, e.what());
    return 0;
  }
  std::optional<store::Applied> applied;
  try {
    applied = sm_.apply(entry, index);
  } catch (const std::exception& e) {
    exit_on_storage_failure(index, e);
    return 0;
  }
  if (!applied) return 0;
  if (options_.on_applied) options_.on_applied(entry.ts, entry.commands.size(), applied->wakes);
  return 0;
}

int RaftCore::snapshot(raft_buffer* bufs[], unsigned* n) {
  // Runs on the loop thread, between applies: the RocksDB snapshot is exactly the state at last_applied.
  pinned_ = sm_.pin();
  *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  (*bufs)[0].base = raft_malloc(8);
  (*bufs)[0].len = 8;
  std::memset((*bufs)[0].base, 0, 8);
  *n = 1;
  return 0;
}

int RaftCore::snapshot_async(raft_buffer* bufs[], unsigned* n) {
  uint64_t keys = 0;
  std::string error;
  const store::PinnedState* pinned = pinned_.get();
  auto out = encode_snapshot([pinned](const auto& visit) { return pinned->scan(visit); }, options_.snapshot_cap_bytes,
                             keys, error);
  if (!out) {
    log::error("raft snapshot not taken", {{"error", error}});
    return RAFT_TOOBIG;
  }
  raft_free((*bufs)[0].base);
  (*bufs)[0].base = raft_malloc(out->size());
  std::memcpy((*bufs)[0].base, out->data(), out->size());
  (*bufs)[0].len = out->size();
  *n = 1;
  log::info("raft snapshot serialised", {{"keys", keys}, {"bytes", out->size()}});
  return 0;
}

int RaftCore::snapshot_finalize(raft_buffer* bufs[], unsigned* n) {
  if (*bufs) {
    for (unsigned i = 0; i < *n; ++i) raft_free((*bufs)[i].base);
    raft_free(*bufs);
  }
  *bufs = nullptr;
  *n = 0;
  pinned_.reset();
  return 0;
}

int RaftCore::restore(raft_buffer* buf) {
  if (auto version = snapshot_version(static_cast<const char*>(buf->base), buf->len);
      version && *version > kSnapshotVersion) {
    log::error("raft snapshot was written by a newer gasoline-kv; stopping this replica: upgrade it",
               {{"snapshot_format", *version}, {"supported", kSnapshotVersion}});
    fatal(kExitUnreadableEntry, raft_last_applied(&raft_),
          "snapshot format " + std::to_string(*version) + " is newer than " + std::to_string(kSnapshotVersion));
    return RAFT_MALFORMED;
  }
  auto snap = decode_snapshot(static_cast<const char*>(buf->base), buf->len);
  if (!snap) {
    log::error("raft snapshot is malformed or has an unknown format");
    return RAFT_MALFORMED;
  }
  // Restart: RocksDB already holds this snapshot's state or newer (the applied index is in every WriteBatch), so
  // keep it and let replay skip what it has. A wiped or lagging replica installs the snapshot.
  if (sm_.applied_index() < snap->applied_index) {
    try {
      sm_.replace_all(snap->pairs);
    } catch (const std::exception& e) {
      log::error("installing a raft snapshot failed", {{"error", e.what()}});
      return RAFT_IOERR;
    }
    log::info("raft snapshot installed", {{"keys", snap->pairs.size()}, {"applied_index", snap->applied_index}});
  }
  raft_free(buf->base);
  return 0;
}

// --- stopping ------------------------------------------------------------------------------------------------

// A committed entry this replica cannot apply: skipping it would let this replica's state silently diverge from the
// others', and returning an error from apply makes libraft retry it forever. Stop instead, touching nothing: the
// Raft log and the state are as they were, so a restart with a binary that reads the entry (an upgrade, when a newer
// version wrote it) continues from here.
void RaftCore::stop_on_unreadable_entry(raft_index index, const std::string& reason) {
  log::error("committed raft entry cannot be applied; stopping this replica instead of diverging",
             {{"index", index},
              {"reason", reason},
              {"action",
               "if another replica runs a newer gasoline-kv, upgrade this one; otherwise the entry is corrupt: "
               "remove this replica's data and let it catch up from the others"}});
  fatal(kExitUnreadableEntry, index, reason);
}

// The state can no longer follow the log; stop rather than diverge. The log is intact, so a restart replays from
// the applied index.
void RaftCore::exit_on_storage_failure(raft_index index, const std::exception& e) {
  log::error("storage failed while applying; exiting", {{"index", index}, {"error", e.what()}});
  fatal(kExitStorageFailure, index, std::string("storage failed while applying: ") + e.what());
}

void RaftCore::fatal(int exit_code, raft_index index, const std::string& reason) {
  if (!options_.on_fatal) std::_Exit(exit_code);
  options_.on_fatal(exit_code, index, reason);
}

}  // namespace gasoline::raft
