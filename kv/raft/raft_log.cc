#include "kv/raft/raft_log.h"

#include "common/clock.h"
#include "common/little_endian.h"
#include "common/log.h"
#include "kv/raft/snapshot.h"
#include "kv/raft/handshake.h"
#include "kv/raft/transport.h"

#include <cstring>
#include <filesystem>
#include <future>
#include <stdexcept>

namespace gasoline::raft {
namespace {

struct ApplyReq {
  struct raft_apply req {};
  RaftLog* log = nullptr;
  std::vector<kv::Done> dones;
  size_t commands = 0;
  std::chrono::steady_clock::time_point proposed;
};

struct BarrierReq {
  struct raft_barrier req {};
  kv::Done done;
  const char* what = "";
};

struct ChangeReq {
  struct raft_change req {};
  RaftLog* log = nullptr;
  Peer peer;
  kv::Done done;
};

struct TransferReq {
  struct raft_transfer req {};
  kv::Done done;
};

// Debian's libraft 0.15 ships a version-1 uv io without async_work, which fsm v3 (async snapshots) needs. The
// interface is public, so we provide it: run the work on libuv's thread pool and report back on the loop.
struct AsyncWork {
  uv_work_t work{};
  raft_io_async_work* req = nullptr;
  int status = 0;
};

// The loop of the RaftLog whose thread this is (each replica has its own loop thread; async_work runs on it).
thread_local uv_loop_t* t_loop = nullptr;

int uv_async_work(raft_io*, raft_io_async_work* req, raft_io_async_work_cb cb) {
  req->cb = cb;
  auto* w = new AsyncWork;
  w->req = req;
  w->work.data = w;
  int rv = uv_queue_work(
      t_loop, &w->work, [](uv_work_t* work) {
        auto* w = static_cast<AsyncWork*>(work->data);
        w->status = w->req->work(w->req);
      },
      [](uv_work_t* work, int status) {
        auto* w = static_cast<AsyncWork*>(work->data);
        auto* req = w->req;
        int st = status != 0 ? RAFT_CANCELED : w->status;
        delete w;
        req->cb(req, st);
      });
  if (rv != 0) {
    delete w;
    return RAFT_IOERR;
  }
  return 0;
}

// The state can no longer follow the log; stop rather than diverge. The log is intact, so a restart replays from
// the applied index.
[[noreturn]] void exit_on_storage_failure(raft_index index, const std::exception& e) {
  log::error("storage failed while applying; exiting", {{"index", index}, {"error", e.what()}});
  std::_Exit(70);
}

// A committed entry this replica cannot apply: skipping it would let this replica's state silently diverge from the
// others', and returning an error from apply makes libraft retry it forever. Stop instead, touching nothing: the
// Raft log and the state are as they were, so a restart with a binary that reads the entry (an upgrade, when a newer
// version wrote it) continues from here.
[[noreturn]] void stop_on_unreadable_entry(raft_index index, const std::string& reason) {
  log::error("committed raft entry cannot be applied; stopping this replica instead of diverging",
             {{"index", index},
              {"reason", reason},
              {"action",
               "if another replica runs a newer gasoline-kv, upgrade this one; otherwise the entry is corrupt: "
               "remove this replica's data and let it catch up from the others"}});
  std::_Exit(kExitUnreadableEntry);
}

store::Result failure(store::Code code, std::string message) { return store::Result{code, std::move(message), {}}; }

store::Result from_raft_status(int status, const char* what) {
  if (status == 0) return store::Result{};
  if (status == RAFT_NOTLEADER) return failure(store::Code::kNotLeader, std::string(what) + ": not the leader");
  if (status == RAFT_LEADERSHIPLOST)
    return failure(store::Code::kUnavailable,
                   std::string(what) + ": leadership lost before the commit was confirmed; retry idempotently");
  return failure(store::Code::kUnavailable, std::string(what) + ": " + raft_strerror(status));
}

}  // namespace

Peer parse_peer(const std::string& spec) {
  auto eq = spec.find('=');
  auto comma = spec.find(',', eq == std::string::npos ? 0 : eq);
  if (eq == std::string::npos || comma == std::string::npos)
    throw std::invalid_argument("peer '" + spec + "' must be ID=RAFT_HOST:PORT,CLIENT_HOST:PORT");
  Peer p;
  try {
    p.id = std::stoull(spec.substr(0, eq));
  } catch (const std::exception&) {
    throw std::invalid_argument("peer '" + spec + "' has a non-numeric id");
  }
  if (p.id == 0) throw std::invalid_argument("peer ids start at 1 (libraft reserves 0)");
  p.raft_address = spec.substr(eq + 1, comma - eq - 1);
  p.client_address = spec.substr(comma + 1);
  if (p.raft_address.find(':') == std::string::npos || p.client_address.find(':') == std::string::npos)
    throw std::invalid_argument("peer '" + spec + "': both addresses must be host:port");
  return p;
}

raft_id raft_id_from_pod_name(const std::string& pod_name) {
  auto dash = pod_name.rfind('-');
  std::string ordinal = dash == std::string::npos ? "" : pod_name.substr(dash + 1);
  if (ordinal.empty() || ordinal.size() > 9 || ordinal.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("pod name '" + pod_name + "' does not end in -<ordinal> (a StatefulSet pod's name)");
  return std::stoull(ordinal) + 1;
}

std::string config_address(const Peer& p) { return p.raft_address + "/" + p.client_address; }

std::string frame_entry(const std::string& payload) {
  std::string out;
  put_le32(out, static_cast<uint32_t>(payload.size()));
  out += payload;
  out.append((8 - out.size() % 8) % 8, '\0');
  return out;
}

bool unframe_entry(const void* data, size_t len, std::string_view& payload) {
  if (len < 4 || len % 8 != 0) return false;
  const char* p = static_cast<const char*>(data);
  uint32_t n = get_le32(p);
  if (static_cast<size_t>(n) + 4 > len) return false;
  payload = std::string_view(p + 4, n);
  return true;
}

RaftLog::RaftLog(store::StateMachine& sm, RaftOptions options, kv::AppliedFn on_applied, LeaderChange on_leader_change,
                 Committed on_committed)
    : sm_(sm),
      options_(std::move(options)),
      on_applied_(std::move(on_applied)),
      on_leader_change_(std::move(on_leader_change)),
      on_committed_(std::move(on_committed)),
      speculation_(sm.committed()) {}

RaftLog::~RaftLog() { stop(); }

void RaftLog::start() {
  const Peer* self = nullptr;
  for (const auto& p : options_.peers)
    if (p.id == options_.id) self = &p;
  if (!self) throw std::invalid_argument("--raft-id " + std::to_string(options_.id) + " is not among the peers");
  self_address_ = config_address(*self);
  if (options_.secret.size() < handshake::kMinSecretSize)
    throw std::invalid_argument("the raft secret must be at least " + std::to_string(handshake::kMinSecretSize) +
                                " bytes (--raft-secret-file)");
  std::filesystem::create_directories(options_.dir);

  std::promise<std::string> started;
  auto result = started.get_future();
  thread_ = std::thread([this, &started] {
    std::string error;
    int rv = uv_loop_init(&loop_);
    t_loop = &loop_;
    TransportOptions transport;
    transport.bind_address = options_.bind_address;
    if (transport.bind_address.empty())
      for (const auto& p : options_.peers)
        if (p.id == options_.id) transport.bind_address = p.raft_address;
    transport.secret = options_.secret;
    transport.handshake_timeout = options_.handshake_timeout;
    transport.on_refused = options_.on_handshake_refused;
    transport.tls = options_.tls;
    transport.on_tls_failed = options_.on_tls_failed;
    if (rv == 0) rv = transport_init(&transport_, &loop_, std::move(transport));
    if (rv == 0) rv = raft_uv_init(&io_, &loop_, options_.dir.c_str(), &transport_);
    if (rv != 0) {
      started.set_value(std::string("raft io init: ") + io_.errmsg);
      return;
    }
    if (io_.version < 2 || io_.async_work == nullptr) {
      io_.version = 2;
      io_.async_work = uv_async_work;
    }
    fsm_.version = 3;
    fsm_.data = this;
    fsm_.apply = fsm_apply;
    fsm_.snapshot = fsm_snapshot;
    fsm_.restore = fsm_restore;
    fsm_.snapshot_finalize = fsm_snapshot_finalize;
    fsm_.snapshot_async = fsm_snapshot_async;
    rv = raft_init(&raft_, &io_, &fsm_, options_.id, self_address_.c_str());
    if (rv != 0) {
      started.set_value(std::string("raft init: ") + raft_errmsg(&raft_));
      return;
    }
    raft_.data = this;
    raft_set_election_timeout(&raft_, options_.election_timeout_ms);
    raft_set_heartbeat_timeout(&raft_, options_.heartbeat_timeout_ms);
    raft_set_snapshot_threshold(&raft_, options_.snapshot_threshold);
    raft_set_snapshot_trailing(&raft_, options_.snapshot_trailing);
    raft_set_pre_vote(&raft_, options_.pre_vote);
    // libraft's default of 30 s keeps a leader waiting that long when a wiped follower's acknowledgement of an
    // installed snapshot doesn't end the snapshot state; a few election timeouts is plenty on loopback or a LAN.
    raft_set_install_snapshot_timeout(&raft_, std::max(3000u, 3 * options_.election_timeout_ms));
    raft_uv_set_connect_retry_delay(&io_, 200);

    // First start: write the static configuration. Later starts (and wiped replicas rejoining with the same
    // configuration at index 1) get RAFT_CANTBOOTSTRAP from a non-empty log, which is fine.
    raft_configuration conf;
    raft_configuration_init(&conf);
    std::vector<std::string> addrs;
    for (const auto& p : options_.peers) addrs.push_back(config_address(p));
    for (size_t i = 0; i < options_.peers.size(); ++i)
      raft_configuration_add(&conf, options_.peers[i].id, addrs[i].c_str(), RAFT_VOTER);
    rv = options_.join ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&raft_, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
      started.set_value(std::string("raft bootstrap: ") + raft_errmsg(&raft_));
      return;
    }
    uv_async_init(&loop_, &async_, [](uv_async_t* a) { static_cast<RaftLog*>(a->data)->on_async(); });
    async_.data = this;
    uv_timer_init(&loop_, &tick_);
    tick_.data = this;
    rv = raft_start(&raft_);
    if (rv != 0) {
      started.set_value(std::string("raft start: ") + raft_errmsg(&raft_));
      return;
    }
    uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<RaftLog*>(t->data)->publish_state(); }, 5, 5);
    started.set_value("");
    run();
  });
  std::string error = result.get();
  if (!error.empty()) {
    if (thread_.joinable()) thread_.join();
    throw std::runtime_error(error);
  }
  started_ = true;
  log::info("raft started", {{"id", options_.id}, {"address", self_address_}, {"dir", options_.dir},
                             {"peers", options_.peers.size()}, {"applied_index", sm_.applied_index()}});
}

void RaftLog::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void RaftLog::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || !started_) {
      stopping_ = true;
      return;
    }
    stopping_ = true;
  }
  uv_async_send(&async_);
  if (thread_.joinable()) thread_.join();
  transport_close(&transport_);
  leader_ = false;
}

void RaftLog::post(kv::Done done, std::function<void(kv::Done)> fn) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      tasks_.push_back([fn = std::move(fn), done = std::move(done)]() mutable { fn(std::move(done)); });
      uv_async_send(&async_);
      return;
    }
  }
  done(failure(store::Code::kUnavailable, "the kv is shutting down"));
}

void RaftLog::propose(store::Command command, kv::Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && started_) {
      queue_.push_back(Pending{std::move(command), std::move(done)});
      uv_async_send(&async_);
      return;
    }
  }
  done(failure(store::Code::kUnavailable, "the kv is shutting down"));
}

void RaftLog::on_async() {
  std::deque<Pending> batch;
  std::deque<std::function<void()>> tasks;
  bool stopping;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
    tasks.swap(tasks_);
    stopping = stopping_;
  }
  for (auto& t : tasks) t();
  if (stopping) {
    for (auto& p : batch) p.done(failure(store::Code::kUnavailable, "the kv is shutting down"));
    for (auto& p : waiting_) p.done(failure(store::Code::kUnavailable, "the kv is shutting down"));
    waiting_.clear();
    uv_timer_stop(&tick_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    raft_close(&raft_, [](struct raft* r) {
      auto* self = static_cast<RaftLog*>(r->data);
      raft_uv_close(&self->io_);
      // The loop ends once the io and transport handles are closed.
      self->proposals_.clear();
    });
    return;
  }
  if (!batch.empty()) submit(batch);
}

void RaftLog::submit(std::deque<Pending>& batch) {
  if (raft_state(&raft_) != RAFT_LEADER) {
    speculation_.clear();
    for (auto& p : batch) p.done(failure(store::Code::kNotLeader, "this replica is not the leader"));
    return;
  }
  if (!speculation_.ready(raft_.current_term, raft_last_applied(&raft_), raft_last_index(&raft_))) {
    for (auto& p : batch) waiting_.push_back(std::move(p));
    batch.clear();
    catch_up();
    return;
  }
  while (!batch.empty()) {
    auto* req = new ApplyReq;
    req->log = this;
    store::Entry entry;
    // A new leader never goes back in time: at least the last applied and the last proposed timestamps.
    entry.ts = std::max({wall_ms(), sm_.last_ts(), last_proposed_ts_});
    last_proposed_ts_ = entry.ts;
    while (!batch.empty() && entry.commands.size() < store::kMaxCommandsPerEntry) {
      entry.commands.push_back(std::move(batch.front().command));
      req->dones.push_back(std::move(batch.front().done));
      batch.pop_front();
    }
    req->commands = entry.commands.size();
    req->proposed = std::chrono::steady_clock::now();
    // raft_apply appends at the next index, on this thread, so the index the effects are computed for is known.
    const raft_index index = raft_last_index(&raft_) + 1;
    store::Applied applied;
    try {
      applied = speculation_.compute(entry, index, sm_.config());
    } catch (const std::exception& e) {
      auto res = failure(store::Code::kUnavailable, std::string("reading the state to propose failed: ") + e.what());
      for (auto& d : req->dones) d(res);
      delete req;
      continue;
    }
    std::string framed = frame_entry(store::encode_effects(index, entry.ts, entry.commands.size(), applied.mutations));
    raft_buffer buf;
    buf.len = framed.size();
    buf.base = raft_malloc(buf.len);
    std::memcpy(buf.base, framed.data(), buf.len);
    req->req.data = req;
    int rv = raft_apply(&raft_, &req->req, &buf, 1, [](struct raft_apply* r, int status, void*) {
      auto* req = static_cast<ApplyReq*>(r->data);
      RaftLog* self = req->log;
      auto it = self->proposals_.find(r->index);
      if (status == 0 && it != self->proposals_.end() && it->second.results.size() == req->dones.size()) {
        if (self->on_committed_) self->on_committed_(req->commands);
        if (self->options_.on_commit_latency)
          self->options_.on_commit_latency(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - req->proposed).count());
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
      continue;
    }
    if (req->req.index != index) {
      // Cannot happen with libraft 0.15 (it appends at last index + 1); if it did, the effects would be computed
      // for another place in the log than the one they land in.
      log::error("raft appended an entry at an unexpected index; exiting",
                 {{"expected", index}, {"actual", req->req.index}});
      std::_Exit(70);
    }
    speculation_.push(index, std::move(applied.mutations));
    proposals_[index] = Proposal{std::move(applied.results), std::move(applied.wakes)};
  }
}

void RaftLog::catch_up() {
  if (catching_up_) return;
  catching_up_ = true;
  start_barrier("catch up", [this](const store::Result& res) {
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

void RaftLog::barrier(kv::Done done) {
  post(std::move(done), [this](kv::Done done) { start_barrier("read barrier", std::move(done)); });
}

void RaftLog::start_barrier(const char* what, kv::Done done) {
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

void RaftLog::add_member(uint64_t id, const std::string& raft_address, const std::string& client_address,
                         kv::Done done) {
  Peer peer{id, raft_address, client_address};
  post(std::move(done), [this, peer](kv::Done done) {
    auto* req = new ChangeReq;
    req->log = this;
    req->peer = peer;
    req->done = std::move(done);
    req->req.data = req;
    std::string address = config_address(peer);
    int rv = raft_add(&raft_, &req->req, peer.id, address.c_str(), [](struct raft_change* r, int status) {
      auto* req = static_cast<ChangeReq*>(r->data);
      if (status != 0) {
        req->done(from_raft_status(status, "add member"));
        delete req;
        return;
      }
      // Joined as a spare; now promote it. libraft catches it up before the promotion commits.
      int rv = raft_assign(&req->log->raft_, &req->req, req->peer.id, RAFT_VOTER, [](struct raft_change* r, int st) {
        auto* req = static_cast<ChangeReq*>(r->data);
        req->log->publish_state();  // answer with the new configuration, not the one of the last tick
        req->done(from_raft_status(st, "promote member"));
        delete req;
      });
      if (rv != 0) {
        req->done(failure(store::Code::kFailedPrecondition,
                          std::string("promote member: ") + raft_errmsg(&req->log->raft_)));
        delete req;
      }
    });
    if (rv != 0) {
      req->done(rv == RAFT_NOTLEADER ? from_raft_status(rv, "add member")
                                     : failure(store::Code::kFailedPrecondition,
                                               std::string("add member: ") + raft_errmsg(&raft_)));
      delete req;
    }
  });
}

void RaftLog::remove_member(uint64_t id, kv::Done done) {
  post(std::move(done), [this, id](kv::Done done) {
    auto* req = new ChangeReq;
    req->log = this;
    req->done = std::move(done);
    req->req.data = req;
    int rv = raft_remove(&raft_, &req->req, id, [](struct raft_change* r, int status) {
      auto* req = static_cast<ChangeReq*>(r->data);
      req->log->publish_state();
      req->done(from_raft_status(status, "remove member"));
      delete req;
    });
    if (rv != 0) {
      req->done(rv == RAFT_NOTLEADER ? from_raft_status(rv, "remove member")
                                     : failure(store::Code::kFailedPrecondition,
                                               std::string("remove member: ") + raft_errmsg(&raft_)));
      delete req;
    }
  });
}

void RaftLog::transfer_leadership(uint64_t to, kv::Done done) {
  post(std::move(done), [this, to](kv::Done done) {
    auto* req = new TransferReq;
    req->done = std::move(done);
    req->req.data = req;
    int rv = raft_transfer(&raft_, &req->req, to, [](struct raft_transfer* r) {
      auto* req = static_cast<TransferReq*>(r->data);
      req->done(store::Result{});
      delete req;
    });
    if (rv != 0) {
      req->done(from_raft_status(rv, "transfer leadership"));
      delete req;
    }
  });
}

void RaftLog::publish_state() {
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&raft_, &id, &address);
  bool leader = raft_state(&raft_) == RAFT_LEADER;
  std::string client;
  if (address) {
    std::string a(address);
    auto slash = a.find('/');
    client = slash == std::string::npos ? "" : a.substr(slash + 1);
  }
  static constexpr const char* kStates[] = {"unavailable", "follower", "candidate", "leader"};
  nlohmann::json members = nlohmann::json::array();
  for (unsigned i = 0; i < raft_.configuration.n; ++i) {
    const auto& s = raft_.configuration.servers[i];
    members.push_back({{"id", s.id}, {"address", s.address}, {"role", s.role == RAFT_VOTER ? "voter" : s.role == RAFT_STANDBY ? "standby" : "spare"}});
  }
  bool leader_changed = false;
  {
    std::lock_guard lock(state_mu_);
    leader_changed = id != 0 && id != leader_id_;
    leader_id_ = id;
    leader_client_address_ = client;
    state_ = {{"id", options_.id},
              {"state", kStates[std::min(3, raft_state(&raft_))]},
              {"term", raft_.current_term},
              {"leader_id", id},
              {"leader", client},
              {"last_index", raft_last_index(&raft_)},
              {"commit_index", raft_.commit_index},
              {"raft_applied_index", raft_last_applied(&raft_)},
              {"members", members}};
  }
  if (leader != leader_.exchange(leader)) {
    log::info(leader ? "became the raft leader" : "no longer the raft leader",
              {{"id", options_.id}, {"term", raft_.current_term}});
    if (on_leader_change_) on_leader_change_(leader);
  }
  if (options_.on_raft_state) options_.on_raft_state(raft_.current_term, id != 0, leader, leader_changed);
}

std::string RaftLog::leader_address() const {
  std::lock_guard lock(state_mu_);
  return leader_client_address_;
}

nlohmann::json RaftLog::cluster_status() const {
  std::lock_guard lock(state_mu_);
  return state_;
}

// --- FSM ---------------------------------------------------------------------------------------------------

int RaftLog::fsm_apply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
  auto* self = static_cast<RaftLog*>(fsm->data);
  *result = nullptr;
  // libraft passes no index; it bumps last_applied only after apply returns.
  raft_index index = raft_last_applied(&self->raft_) + 1;
  std::string_view payload;
  if (!unframe_entry(buf->base, buf->len, payload)) stop_on_unreadable_entry(index, "bad framing");
  auto format = store::entry_format(payload);
  switch (format.format) {
    case store::EntryFormat::kEffects: return self->apply_effects(payload, index);
    case store::EntryFormat::kCommands: return self->apply_commands(payload, index);
    case store::EntryFormat::kUnknown: break;
  }
  stop_on_unreadable_entry(index, format.tag.empty()
                                      ? "not an entry of any format this version knows"
                                      : "entry format '" + format.tag + "' was written by a newer gasoline-kv");
}

// The effects a leader computed: every replica, the leader included, only writes them.
int RaftLog::apply_effects(std::string_view payload, raft_index index) {
  store::EffectsView effects;
  try {
    effects = store::decode_effects(payload, effects_scratch_);
  } catch (const std::exception& e) {
    stop_on_unreadable_entry(index, e.what());
  }
  bool applied = false;
  try {
    applied = sm_.apply_effects(effects, index);
  } catch (const std::exception& e) {
    exit_on_storage_failure(index, e);
  }
  speculation_.applied(index);
  if (!applied) return 0;  // replay of an entry already in RocksDB
  static const std::vector<store::Wake> kNone;
  auto it = proposals_.find(index);
  if (on_applied_) on_applied_(effects.ts, effects.commands, it != proposals_.end() ? it->second.wakes : kNone);
  return 0;
}

// A command entry, as versions before effects replication wrote them (still in older logs): computed here.
int RaftLog::apply_commands(std::string_view payload, raft_index index) {
  store::Entry entry;
  try {
    entry = store::decode_entry(payload);
  } catch (const std::exception& e) {
    stop_on_unreadable_entry(index, e.what());
  }
  std::optional<store::Applied> applied;
  try {
    applied = sm_.apply(entry, index);
  } catch (const std::exception& e) {
    exit_on_storage_failure(index, e);
  }
  if (!applied) return 0;
  if (on_applied_) on_applied_(entry.ts, entry.commands.size(), applied->wakes);
  return 0;
}

int RaftLog::fsm_snapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n) {
  auto* self = static_cast<RaftLog*>(fsm->data);
  // Runs on the loop thread, between applies: the RocksDB snapshot is exactly the state at last_applied.
  self->pinned_ = self->sm_.pin();
  *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  (*bufs)[0].base = raft_malloc(8);
  (*bufs)[0].len = 8;
  std::memset((*bufs)[0].base, 0, 8);
  *n = 1;
  return 0;
}

int RaftLog::fsm_snapshot_async(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n) {
  auto* self = static_cast<RaftLog*>(fsm->data);
  uint64_t keys = 0;
  std::string error;
  const store::PinnedState* pinned = self->pinned_.get();
  auto out = encode_snapshot([pinned](const auto& visit) { return pinned->scan(visit); },
                             self->options_.snapshot_cap_bytes, keys, error);
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

int RaftLog::fsm_snapshot_finalize(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n) {
  auto* self = static_cast<RaftLog*>(fsm->data);
  if (*bufs) {
    for (unsigned i = 0; i < *n; ++i) raft_free((*bufs)[i].base);
    raft_free(*bufs);
  }
  *bufs = nullptr;
  *n = 0;
  self->pinned_.reset();
  return 0;
}

int RaftLog::fsm_restore(raft_fsm* fsm, raft_buffer* buf) {
  auto* self = static_cast<RaftLog*>(fsm->data);
  if (auto version = snapshot_version(static_cast<const char*>(buf->base), buf->len);
      version && *version > kSnapshotVersion) {
    log::error("raft snapshot was written by a newer gasoline-kv; stopping this replica: upgrade it",
               {{"snapshot_format", *version}, {"supported", kSnapshotVersion}});
    std::_Exit(kExitUnreadableEntry);
  }
  auto snap = decode_snapshot(static_cast<const char*>(buf->base), buf->len);
  if (!snap) {
    log::error("raft snapshot is malformed or has an unknown format");
    return RAFT_MALFORMED;
  }
  // Restart: RocksDB already holds this snapshot's state or newer (the applied index is in every WriteBatch), so
  // keep it and let replay skip what it has. A wiped or lagging replica installs the snapshot.
  if (self->sm_.applied_index() < snap->applied_index) {
    try {
      self->sm_.replace_all(snap->pairs);
    } catch (const std::exception& e) {
      log::error("installing a raft snapshot failed", {{"error", e.what()}});
      return RAFT_IOERR;
    }
    log::info("raft snapshot installed", {{"keys", snap->pairs.size()}, {"applied_index", snap->applied_index}});
  }
  raft_free(buf->base);
  return 0;
}

}  // namespace gasoline::raft
