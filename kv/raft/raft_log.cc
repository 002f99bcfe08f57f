#include "kv/raft/raft_log.h"

#include "common/clock.h"
#include "common/log.h"
#include "kv/raft/handshake.h"
#include "kv/raft/raft_result.h"
#include "kv/raft/transport.h"

#include <filesystem>
#include <future>
#include <stdexcept>

namespace gasoline::raft {
namespace {

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

}  // namespace

RaftLog::RaftLog(store::StateMachine& sm, RaftOptions options, kv::AppliedFn on_applied, LeaderChange on_leader_change,
                 Committed on_committed)
    : sm_(sm),
      options_(std::move(options)),
      on_leader_change_(std::move(on_leader_change)),
      on_committed_(std::move(on_committed)),
      core_(raft_, sm, CoreOptions{
                           .snapshot_cap_bytes = options_.snapshot_cap_bytes,
                           .wall_ms = wall_ms,
                           .steady_now = [] { return std::chrono::steady_clock::now(); },
                           .on_applied = std::move(on_applied),
                           .on_proposal_done =
                               [this](raft_index, int status, size_t commands, double seconds) {
                                 if (status != 0) return;
                                 if (on_committed_) on_committed_(commands);
                                 if (options_.on_commit_latency) options_.on_commit_latency(seconds);
                               },
                       }) {}

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
    core_.bind(fsm_);
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
    auto shutting_down = failure(store::Code::kUnavailable, "the kv is shutting down");
    for (auto& p : batch) p.done(shutting_down);
    core_.fail_held(shutting_down);
    uv_timer_stop(&tick_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    raft_close(&raft_, [](struct raft* r) {
      auto* self = static_cast<RaftLog*>(r->data);
      raft_uv_close(&self->io_);
      // The loop ends once the io and transport handles are closed.
      self->core_.closed();
    });
    return;
  }
  if (!batch.empty()) core_.submit(batch);
}

void RaftLog::barrier(kv::Done done) {
  post(std::move(done), [this](kv::Done done) { core_.barrier("read barrier", std::move(done)); });
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

}  // namespace gasoline::raft
