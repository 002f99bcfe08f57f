// Process-level tests of gasoline-kv: real kv processes (KvProcess, fsync on) on loopback, real rpc::Client
// connections, raw sockets for malformed input, gasctl as a process. Synchronisation is by conditions with
// deadlines (testing::wait_until, bump notifications); the only timing assertions are "happened before a
// deadline that proves no lost_after wait" and "never before the requested wake time".
#include "common/clock.h"
#include "kv/rpc/client.h"
#include "kv/rpc/frame.h"
#include "kv/rpc/protocol.h"
#include "tests/support/kv_process.h"
#include "tests/support/process.h"
#include "tests/support/raw_conn.h"
#include "tests/support/sim_worker.h"

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace gasoline {
namespace {

using namespace std::chrono_literals;
using rpc::Json;
using rpc::KvError;
using testing::KvOptions;
using testing::KvProcess;
using testing::TempDir;
using testing::wait_until;
using Clock = std::chrono::steady_clock;

// --- helpers -----------------------------------------------------------------------------------------------

// The error code a call fails with, or "ok".
std::string code_of(rpc::Client& c, const std::string& op, const Json& args) {
  try {
    c.call(op, args);
    return "ok";
  } catch (const KvError& e) {
    return e.code();
  }
}

// Issues every call at once (pipelined on one connection) and waits for all replies. Each result is the reply
// or the KvError's code under "error".
std::vector<Json> call_many(rpc::Client& c, const std::vector<std::pair<std::string, Json>>& calls,
                            std::chrono::milliseconds timeout = 20s) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    std::vector<Json> results;
  };
  auto st = std::make_shared<State>();
  st->left = calls.size();
  st->results.resize(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    c.call_async(calls[i].first, calls[i].second, [st, i](std::exception_ptr e, Json r) {
      Json out = std::move(r);
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const KvError& err) {
          out = Json{{"error", err.code()}, {"message", err.what()}};
        } catch (const std::exception& err) {
          out = Json{{"error", "exception"}, {"message", err.what()}};
        }
      }
      std::lock_guard lock(st->mu);
      st->results[i] = std::move(out);
      if (--st->left == 0) st->cv.notify_all();
    });
  }
  std::unique_lock lock(st->mu);
  if (!st->cv.wait_for(lock, timeout, [&] { return st->left == 0; }))
    throw std::runtime_error("call_many: replies missing after the timeout");
  return st->results;
}

Json dispatch_args(const std::string& pool, const std::string& id, const std::string& name = "job") {
  return Json{{"pool", pool}, {"id", id}, {"name", name}, {"input", Json{{"id", id}}}};
}

// Dispatches ids pipelined; fails the test if any is not acknowledged.
void dispatch_all(rpc::Client& c, const std::string& pool, const std::vector<std::string>& ids) {
  std::vector<std::pair<std::string, Json>> calls;
  for (const auto& id : ids) calls.emplace_back("dispatch", dispatch_args(pool, id));
  auto results = call_many(c, calls);
  for (size_t i = 0; i < results.size(); ++i)
    ASSERT_FALSE(results[i].contains("error")) << ids[i] << ": " << results[i].dump();
}

std::vector<std::string> make_ids(const std::string& prefix, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(prefix + std::to_string(i));
  return ids;
}

size_t count_status(rpc::Client& c, const std::string& pool, const std::string& status) {
  Json args{{"pool", pool}, {"limit", 10000}};
  if (!status.empty()) args["status"] = status;
  return c.call("list", args, rpc::CallOptions{10s, true})["workflows"].size();
}

Json pull(rpc::Client& c, const std::string& pool, const std::string& worker, size_t max = 64) {
  return c.call("pull", Json{{"pool", pool}, {"worker", worker}, {"max", max}})["tasks"];
}

Json commit(rpc::Client& c, const std::string& worker, const Json& task, const Json& step,
            uint64_t consumed_signal_seq = 0) {
  return c.call("commit", Json{{"workflow_id", task["workflow_id"]},
                               {"worker", worker},
                               {"token", task["token"]},
                               {"step", step},
                               {"consumed_signal_seq", consumed_signal_seq}});
}

const Json kComplete = Json{{"kind", "complete"}, {"output", "done"}};

// Ids (and pools) of the members `workers` reports.
std::set<std::string> worker_ids(rpc::Client& c, const std::string& pool) {
  std::set<std::string> out;
  auto r = c.call("workers", Json{{"pool", pool}});
  for (const auto& p : r["pools"])
    for (const auto& w : p["workers"]) out.insert(w["id"].get<std::string>());
  return out;
}

Json worker_entry(rpc::Client& c, const std::string& pool, const std::string& id) {
  auto r = c.call("workers", Json{{"pool", pool}});
  for (const auto& p : r["pools"])
    for (const auto& w : p["workers"])
      if (w["id"] == id) return w;
  return Json();
}

// Keeps a set of workers alive: one ping per worker every interval, pipelined on its own connection. remove()
// returns only once no ping for that worker can still be sent.
class Pinger {
 public:
  Pinger(const KvProcess& kv, std::string pool, std::vector<std::string> ids, std::chrono::milliseconds interval)
      : client_(kv.client("pinger")), pool_(std::move(pool)), interval_(interval), ids_(ids.begin(), ids.end()) {
    round(true);
    thread_ = std::thread([this] { loop(); });
  }
  ~Pinger() { stop(); }

  void add(const std::string& id) {
    {
      std::lock_guard lock(round_mu_);
      ids_.insert(id);
    }
    round(true);
  }
  void remove(const std::string& id) {
    std::lock_guard lock(round_mu_);
    ids_.erase(id);
  }
  // From now on the pings of `id` say it holds exactly these lease tokens (as gasoline-worker's do).
  void report_held(const std::string& id, std::vector<uint64_t> tokens) {
    std::lock_guard lock(round_mu_);
    held_[id] = std::move(tokens);
  }
  uint64_t rounds() const { return rounds_; }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void round(bool must_succeed) {
    std::lock_guard lock(round_mu_);
    std::vector<std::pair<std::string, Json>> calls;
    for (const auto& id : ids_) {
      Json args{{"pool", pool_}, {"worker", id}, {"pod", id}};
      if (auto it = held_.find(id); it != held_.end()) args["held"] = it->second;
      calls.emplace_back("ping", std::move(args));
    }
    if (calls.empty()) return;
    auto results = call_many(*client_, calls);
    for (const auto& r : results)
      if (must_succeed && r.contains("error")) throw std::runtime_error("ping failed: " + r.dump());
    ++rounds_;
  }
  void loop() {
    while (true) {
      {
        std::unique_lock lock(mu_);
        // The ping cadence of a live worker, not test synchronisation.
        if (cv_.wait_for(lock, interval_, [&] { return stop_; })) return;
      }
      try {
        round(false);
      } catch (const std::exception&) {
        // A kv restart is survivable; the next round retries.
      }
    }
  }

  std::unique_ptr<rpc::Client> client_;
  std::string pool_;
  std::chrono::milliseconds interval_;
  std::mutex round_mu_;
  std::map<std::string, std::vector<uint64_t>> held_;  // guarded by round_mu_
  std::set<std::string> ids_;
  std::atomic<uint64_t> rounds_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Counts bump frames pushed on a worker's connection (after "subscribe"). The state is shared with the client's
// handler, so it stays valid whichever of the two goes first.
class Bumps {
 public:
  Bumps(rpc::Client& c, const std::string& worker) : st_(std::make_shared<State>()) {
    c.set_bump_handler([st = st_](const Json&) {
      {
        std::lock_guard lock(st->mu);
        ++st->count;
        st->last_ms = wall_ms();
      }
      st->cv.notify_all();
    });
    c.call("subscribe", Json{{"worker", worker}});
  }
  uint64_t count() const {
    std::lock_guard lock(st_->mu);
    return st_->count;
  }
  int64_t last_ms() const {
    std::lock_guard lock(st_->mu);
    return st_->last_ms;
  }
  // Waits until more than `seen` bumps arrived. Returns the new count, or `seen` on timeout.
  uint64_t wait_beyond(uint64_t seen, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(st_->mu);
    st_->cv.wait_for(lock, timeout, [&] { return st_->count > seen; });
    return st_->count;
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t count = 0;
    int64_t last_ms = 0;
  };
  std::shared_ptr<State> st_;
};

// Pulls as `worker` until `want` returns true for the accumulated tasks, or the deadline passes.
Json pull_until(rpc::Client& c, const std::string& pool, const std::string& worker,
                const std::function<bool(const Json& all)>& want, std::chrono::milliseconds timeout) {
  Json all = Json::array();
  wait_until(
      [&] {
        for (auto& t : pull(c, pool, worker)) all.push_back(t);
        return want(all);
      },
      timeout);
  return all;
}

std::set<std::string> ids_of(const Json& tasks) {
  std::set<std::string> out;
  for (const auto& t : tasks) out.insert(t["workflow_id"].get<std::string>());
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string percentiles(std::vector<int64_t> v) {
  if (v.empty()) return "n/a";
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
  std::ostringstream s;
  s << "n=" << v.size() << " min=" << v.front() << "ms p50=" << at(0.5) << "ms max=" << v.back() << "ms";
  return s.str();
}

// --- lease mutual exclusion under concurrent pulls -----------------------------------------------------------

struct GrantRec {
  std::string wf;
  uint64_t token = 0;
  std::string worker;
  uint64_t step = 0;  // committed steps when granted: (wf, step) names the step this lease runs
  std::string reason;
  Clock::time_point received;
};
struct CommitRec {
  std::string wf;
  uint64_t token = 0;
  std::string worker;
  uint64_t step = 0;
  bool ok = false;
  bool duplicate = false;
  std::string code;
  Clock::time_point sent;
};

class KvServerLease : public ::testing::TestWithParam<std::string> {};

// 16 workers, each with its own connection, pull and commit concurrently. One of them (w0) stalls like a hung
// process as soon as it holds leases: no pings, no commits, until the kv declares it lost; then it commits late.
TEST_P(KvServerLease, ConcurrentPullsNeverShareALeaseAndCommitEachStepOnce) {
  constexpr int kWorkers = 16;
  constexpr int kWorkflows = 200;
  constexpr uint64_t kSteps = 3;
  const std::string pool = "lease";
  TempDir dir("kv-lease");
  KvOptions o;
  o.strategy = GetParam();
  o.ping_interval_ms = 150;
  o.lost_after_ms = 600;
  o.backup_grace_ms = 100;
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");

  std::vector<std::string> workers;
  for (int i = 0; i < kWorkers; ++i) workers.push_back("w" + std::to_string(i));
  Pinger pinger(kv, pool, workers, std::chrono::milliseconds(o.ping_interval_ms));

  std::atomic<bool> done{false};
  std::atomic<int> ready{0};
  std::atomic<uint64_t> lease_cas_conflicts{0};
  std::atomic<size_t> zombie_held{0};
  std::atomic<int> rejoins{0};
  std::mutex mu;
  std::vector<GrantRec> grants;
  std::vector<CommitRec> commits;
  std::vector<std::string> errors;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (const auto& id : workers) {
    const bool zombie = id == workers.front();
    threads.emplace_back([&, id, zombie] {
      std::vector<GrantRec> my_grants;
      std::vector<CommitRec> my_commits;
      auto keep = [&] {
        std::lock_guard lock(mu);
        grants.insert(grants.end(), my_grants.begin(), my_grants.end());
        commits.insert(commits.end(), my_commits.begin(), my_commits.end());
      };
      try {
        auto c = kv.client(id);
        Bumps bumps(*c, id);
        c->call("ping", Json{{"pool", pool}, {"worker", id}});
        ++ready;
        auto commit_all = [&](const Json& tasks) {
          for (const auto& t : tasks) {
            auto step = t["steps"].get<uint64_t>();
            Json s = step + 1 < kSteps ? Json{{"kind", "continue"}, {"state", Json{{"next", step + 1}}}}
                                       : Json{{"kind", "complete"}, {"output", id}};
            CommitRec rec{t["workflow_id"].get<std::string>(), t["token"].get<uint64_t>(), id, step, false, false, "",
                          Clock::now()};
            try {
              auto r = commit(*c, id, t, s);
              rec.ok = true;
              rec.duplicate = r.value("duplicate", false);
            } catch (const KvError& e) {
              rec.code = e.code();
            }
            my_commits.push_back(std::move(rec));
          }
        };
        while (!done) {
          uint64_t seen = bumps.count();
          Json reply;
          try {
            reply = c->call("pull", Json{{"pool", pool}, {"worker", id}, {"max", 4}});
          } catch (const KvError& e) {
            if (e.code() != rpc::code::kFailedPrecondition) throw;
            // Declared lost after a stall of this (busy) machine: rejoin, as a real worker does.
            ++rejoins;
            c->call("ping", Json{{"pool", pool}, {"worker", id}});
            continue;
          }
          auto received = Clock::now();
          lease_cas_conflicts += reply.value("conflicts", uint64_t{0});
          const auto& tasks = reply["tasks"];
          for (const auto& t : tasks)
            my_grants.push_back(GrantRec{t["workflow_id"].get<std::string>(), t["token"].get<uint64_t>(), id,
                                         t["steps"].get<uint64_t>(), t["wake_reason"].get<std::string>(), received});
          if (zombie && !tasks.empty()) {
            pinger.remove(id);
            zombie_held = tasks.size();
            if (!wait_until([&] { return worker_ids(*c, pool).count(id) == 0; }, 20s))
              throw std::runtime_error("the stalled worker was never declared lost");
            commit_all(tasks);  // too late: every one of these must be fenced
            break;
          }
          commit_all(tasks);
          // Idle: the worker's fallback tick, cut short by a bump.
          if (tasks.empty()) bumps.wait_beyond(seen, 50ms);
        }
        keep();
      } catch (const std::exception& e) {
        keep();
        std::lock_guard lock(mu);
        errors.push_back(id + ": " + e.what());
        ++failed;
      }
    });
  }
  auto join_all = [&] {
    done = true;
    for (auto& t : threads) t.join();
  };
  if (!wait_until([&] { return ready == kWorkers || failed > 0; }, 20s) || failed > 0) {
    join_all();
    FAIL() << "workers did not start: " << (errors.empty() ? "timeout" : errors.front());
  }

  auto ids = make_ids("wf-", kWorkflows);
  dispatch_all(*admin, pool, ids);
  bool all_complete = wait_until([&] { return count_status(*admin, pool, "complete") == kWorkflows; }, 40s);
  join_all();
  pinger.stop();
  ASSERT_TRUE(errors.empty()) << errors.front();
  ASSERT_TRUE(all_complete) << count_status(*admin, pool, "complete") << " of " << kWorkflows << " complete";

  // Every workflow ran every step and nothing else.
  // Named: a range-for over call(...)["workflows"] would walk a member of a temporary destroyed before the loop.
  const Json listed = admin->call("list", Json{{"pool", pool}, {"limit", 10000}});
  for (const auto& w : listed["workflows"]) {
    EXPECT_EQ(w["status"], "complete") << w.dump();
    EXPECT_EQ(w["steps"], kSteps) << w.dump();
  }

  std::map<std::pair<std::string, uint64_t>, const CommitRec*> commit_of;  // (wf, token) → its one commit
  std::map<std::pair<std::string, uint64_t>, int> acked_per_step;
  size_t commit_conflicts = 0;
  for (const auto& c : commits) {
    EXPECT_TRUE(commit_of.emplace(std::make_pair(c.wf, c.token), &c).second) << "two commits of one lease " << c.wf;
    if (c.ok && !c.duplicate) ++acked_per_step[{c.wf, c.step}];
    if (!c.ok) {
      ++commit_conflicts;
      EXPECT_EQ(c.code, rpc::code::kConflict) << c.wf << " step " << c.step << " by " << c.worker;
    }
    EXPECT_FALSE(c.duplicate) << "a first commit was reported as a duplicate: " << c.wf;
  }
  for (const auto& id : ids)
    for (uint64_t s = 0; s < kSteps; ++s)
      EXPECT_EQ((acked_per_step[{id, s}]), 1) << "acknowledged commits of " << id << " step " << s;

  std::map<std::string, std::vector<const GrantRec*>> by_wf;
  std::set<std::string> granted_workers;
  for (const auto& g : grants) {
    by_wf[g.wf].push_back(&g);
    granted_workers.insert(g.worker);
  }
  ASSERT_EQ(by_wf.size(), static_cast<size_t>(kWorkflows));
  size_t handovers_by_reclaim = 0;
  for (auto& [wf, gs] : by_wf) {
    std::sort(gs.begin(), gs.end(), [](auto* a, auto* b) { return a->token < b->token; });
    EXPECT_EQ(gs.front()->step, 0u) << wf;
    for (size_t i = 0; i < gs.size(); ++i) {
      const auto* g = gs[i];
      auto it = commit_of.find({wf, g->token});
      ASSERT_NE(it, commit_of.end()) << "grant without a commit attempt: " << wf;
      const auto* c = it->second;
      if (i + 1 == gs.size()) {
        EXPECT_TRUE(c->ok) << "last lease of " << wf << " did not commit";
        EXPECT_EQ(g->step, kSteps - 1) << wf;
        continue;
      }
      const auto* h = gs[i + 1];
      EXPECT_NE(g->token, h->token) << wf << " granted twice with one token";
      if (c->ok) {
        // The lease ended with its commit: the next grant must come after it, on the next step.
        EXPECT_EQ(h->step, g->step + 1) << wf << ": lease " << h->token << " by " << h->worker
                                         << " overlaps lease " << g->token << " by " << g->worker;
        EXPECT_GT(h->received, c->sent) << wf << ": lease " << h->token << " by " << h->worker
                                        << " was granted before lease " << g->token << " by " << g->worker
                                        << " committed";
      } else {
        // The lease ended by a reclaim: the step was not done, and the commit was fenced.
        ++handovers_by_reclaim;
        EXPECT_EQ(h->step, g->step) << wf;
        EXPECT_EQ(h->reason, "reclaim") << wf;
      }
    }
  }
  EXPECT_GE(granted_workers.size(), 2u) << "no concurrency: one worker got everything";
  EXPECT_GT(zombie_held.load(), 0u) << "the stalling worker never got a lease";
  EXPECT_GE(handovers_by_reclaim, zombie_held.load()) << "the stalled worker's leases were not all reclaimed";
  size_t zombie_fenced = 0;
  for (const auto& c : commits) zombie_fenced += c.worker == workers.front() && !c.ok;
  EXPECT_EQ(zombie_fenced, zombie_held.load()) << "a late commit of the lost worker was accepted";
  std::printf("[ lease/%s ] %zu grants, %zu commits, %zu fenced commits, %zu reclaim handovers, "
              "%llu lease CAS conflicts, %zu workers got work, %d rejoins\n",
              GetParam().c_str(), grants.size(), commits.size(), commit_conflicts, handovers_by_reclaim,
              static_cast<unsigned long long>(lease_cas_conflicts.load()), granted_workers.size(), rejoins.load());
  if (GetParam() == "all") {
    // Everyone pulls everything, so the lease CAS must have turned contenders away.
    EXPECT_GT(lease_cas_conflicts.load(), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, KvServerLease, ::testing::Values("all", "rendezvous"),
                         [](const auto& info) { return info.param; });

// --- fencing over RPC ----------------------------------------------------------------------------------------

// Entries of a /proc/self directory: threads (task) or open file descriptors (fd).
size_t proc_self_entries(const char* dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(std::string("/proc/self/") + dir)) ++n;
  return n;
}

// A closed client frees its I/O thread, its sockets and its resolver: the gateway closes one for every credential
// it evicts, so a leak per close would end in EMFILE. Found by review: io.stop() left cancelled completions queued,
// each holding the Impl that owned the queue.
TEST(KvServer, ClosedClientsFreeTheirThreadsAndSockets) {
  testing::TempDir dir("gasoline-kv-client-close");
  testing::KvProcess kv(dir.path() + "/kv");
  auto warm = kv.client("warm-up");  // the first client creates what every client shares (OpenSSL, the logger)
  warm->call("status");
  warm->close();
  const size_t threads = proc_self_entries("task"), fds = proc_self_entries("fd");
  for (int i = 0; i < 40; ++i) {
    auto c = kv.client("closed-" + std::to_string(i));
    c->call("status");
    c->close();
  }
  EXPECT_LE(proc_self_entries("task"), threads + 2) << "threads leaked by closed clients";
  EXPECT_LE(proc_self_entries("fd"), fds + 4) << "file descriptors leaked by closed clients";
}

TEST(KvServer, FencingRejectsStaleTokensAndTheLateCommitOfALostWorker) {
  const std::string pool = "fence";
  TempDir dir("kv-fence");
  KvOptions o;  // ping 100 ms, lost_after 400 ms
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto a = kv.client("A");
  auto b = kv.client("B");
  Pinger pinger(kv, pool, {"A"}, std::chrono::milliseconds(o.ping_interval_ms));

  ASSERT_EQ(admin->call("dispatch", dispatch_args(pool, "f1"))["id"], "f1");
  auto tasks = pull_until(*a, pool, "A", [](const Json& all) { return !all.empty(); }, 5s);
  ASSERT_EQ(tasks.size(), 1u);
  Json task = tasks[0];
  uint64_t token = task["token"];
  ASSERT_GT(token, 0u);

  auto commit_with = [&](rpc::Client& c, const std::string& worker, uint64_t tok) {
    return code_of(c, "commit",
                   Json{{"workflow_id", "f1"}, {"worker", worker}, {"token", tok}, {"step", kComplete}});
  };
  EXPECT_EQ(commit_with(*a, "A", token + 1), rpc::code::kConflict);
  EXPECT_EQ(commit_with(*a, "A", token - 1), rpc::code::kConflict);
  EXPECT_EQ(commit_with(*a, "A", 0), rpc::code::kConflict);
  EXPECT_EQ(commit_with(*b, "B", token), rpc::code::kConflict);  // right token, wrong holder
  EXPECT_EQ(code_of(*a, "commit", Json{{"workflow_id", "nope"}, {"worker", "A"}, {"token", token}, {"step", kComplete}}),
            rpc::code::kNotFound);
  auto w = admin->call("get", Json{{"workflow_id", "f1"}});
  EXPECT_EQ(w["status"], "running");
  EXPECT_EQ(w["lease_worker"], "A");
  EXPECT_EQ(w["steps"], 0) << "a fenced commit changed the workflow";
  ASSERT_EQ(worker_ids(*admin, pool).count("A"), 1u);

  // A goes silent while holding the lease; B keeps pinging and pulling.
  pinger.add("B");
  pinger.remove("A");
  auto b_tasks = pull_until(*b, pool, "B", [](const Json& all) { return !all.empty(); }, 10s);
  ASSERT_EQ(b_tasks.size(), 1u) << "the lost worker's lease was never reclaimed";
  EXPECT_EQ(b_tasks[0]["workflow_id"], "f1");
  EXPECT_EQ(b_tasks[0]["wake_reason"], "reclaim");
  uint64_t token_b = b_tasks[0]["token"];
  EXPECT_GT(token_b, token);
  EXPECT_EQ(worker_ids(*admin, pool).count("A"), 0u) << "a lost worker stays listed in `workers`";

  // A comes back late: its commit is fenced, and it is no longer a member.
  EXPECT_EQ(commit_with(*a, "A", token), rpc::code::kConflict);
  EXPECT_EQ(code_of(*a, "pull", Json{{"pool", pool}, {"worker", "A"}}), rpc::code::kFailedPrecondition);
  auto r = commit(*b, "B", b_tasks[0], kComplete);
  EXPECT_EQ(r["duplicate"], false);
  EXPECT_EQ(r["status"], "complete");
  // A retried commit of the same lease is acknowledged once more as a duplicate, and changes nothing.
  EXPECT_EQ(commit(*b, "B", b_tasks[0], kComplete)["duplicate"], true);
  EXPECT_EQ(commit_with(*a, "A", token), rpc::code::kConflict);
  w = admin->call("get", Json{{"workflow_id", "f1"}});
  EXPECT_EQ(w["status"], "complete");
  EXPECT_EQ(w["steps"], 1);
  EXPECT_EQ(w["lease_worker"], "");
}

// --- membership ----------------------------------------------------------------------------------------------

TEST(KvServer, DrainedWorkerGetsNoNewTasksButKeepsItsLeases) {
  const std::string pool = "drain";
  TempDir dir("kv-drain");
  KvOptions o;
  o.strategy = "all";  // everyone would take everything: only the drain keeps A out
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto a = kv.client("A");
  auto b = kv.client("B");
  Pinger pinger(kv, pool, {"A", "B"}, std::chrono::milliseconds(o.ping_interval_ms));

  ASSERT_EQ(admin->call("dispatch", dispatch_args(pool, "d0"))["id"], "d0");
  auto held = pull_until(*a, pool, "A", [](const Json& all) { return !all.empty(); }, 5s);
  ASSERT_EQ(held.size(), 1u);

  a->call("drain", Json{{"pool", pool}, {"worker", "A"}});
  auto entry = worker_entry(*admin, pool, "A");
  EXPECT_EQ(entry["state"], "draining");
  EXPECT_EQ(entry["active"], false);
  EXPECT_EQ(entry["rank"], -1);

  auto ids = make_ids("d", 6);
  ids.erase(ids.begin());  // d1..d5
  dispatch_all(*admin, pool, ids);
  EXPECT_TRUE(pull(*a, pool, "A").empty()) << "a draining worker was given new work";
  auto got = pull_until(*b, pool, "B", [&](const Json& all) { return all.size() >= ids.size(); }, 5s);
  EXPECT_EQ(ids_of(got), std::set<std::string>(ids.begin(), ids.end()));

  // Several lost_after periods pass while A keeps pinging: its lease is not reclaimed.
  uint64_t r0 = pinger.rounds();
  uint64_t need = static_cast<uint64_t>(3 * o.lost_after_ms / o.ping_interval_ms) + 1;
  ASSERT_TRUE(wait_until([&] { return pinger.rounds() >= r0 + need; }, 10s));
  EXPECT_TRUE(pull(*a, pool, "A").empty());
  EXPECT_TRUE(pull(*b, pool, "B").empty()) << "the drained worker's lease was handed to B";
  auto w = admin->call("get", Json{{"workflow_id", "d0"}});
  EXPECT_EQ(w["status"], "running");
  EXPECT_EQ(w["lease_worker"], "A");
  EXPECT_EQ(worker_entry(*admin, pool, "A")["state"], "draining") << "a ping undid the drain";
  auto r = commit(*a, "A", held[0], kComplete);
  EXPECT_EQ(r["status"], "complete");
  EXPECT_EQ(r["duplicate"], false);
}

TEST(KvServer, LeaveHandsWorkOverWithoutWaitingForLostAfter) {
  const std::string pool = "leave";
  TempDir dir("kv-leave");
  KvOptions o;
  o.lost_after_ms = 8000;  // a reclaim could not explain a handover within the deadline below
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto a = kv.client("A");
  auto b = kv.client("B");
  Bumps b_bumps(*b, "B");
  Pinger pinger(kv, pool, {"A"}, std::chrono::milliseconds(o.ping_interval_ms));

  auto ids = make_ids("l", 20);
  dispatch_all(*admin, pool, ids);
  auto held = pull_until(*a, pool, "A", [&](const Json& all) { return all.size() >= ids.size(); }, 5s);
  ASSERT_EQ(held.size(), ids.size());

  pinger.add("B");
  pinger.remove("A");
  uint64_t bumps_before = b_bumps.count();
  auto t0 = Clock::now();
  auto left = a->call("leave", Json{{"pool", pool}, {"worker", "A"}});
  EXPECT_EQ(left["released"].size(), ids.size());

  const auto deadline = std::chrono::milliseconds(o.lost_after_ms / 2);
  auto got = pull_until(*b, pool, "B", [&](const Json& all) { return all.size() >= ids.size(); }, deadline);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ASSERT_EQ(ids_of(got), std::set<std::string>(ids.begin(), ids.end()))
      << "not handed over within " << deadline.count() << " ms (lost_after " << o.lost_after_ms << " ms)";
  for (const auto& t : got) EXPECT_EQ(t["wake_reason"], "handover") << t["workflow_id"];
  EXPECT_GT(b_bumps.count(), bumps_before) << "the new primary got no bump for the handed-over work";
  EXPECT_EQ(worker_ids(*admin, pool), std::set<std::string>{"B"});
  // The leaver's old leases are fenced.
  EXPECT_EQ(code_of(*a, "commit",
                    Json{{"workflow_id", held[0]["workflow_id"]}, {"worker", "A"}, {"token", held[0]["token"]},
                         {"step", kComplete}}),
            rpc::code::kConflict);
  std::printf("[ leave ] %zu workflows handed over in %lld ms (lost_after %lld ms)\n", got.size(),
              static_cast<long long>(took.count()), static_cast<long long>(o.lost_after_ms));
}

TEST(KvServer, SilentWorkerIsReclaimedAndRemovedFromWorkers) {
  const std::string pool = "silent";
  TempDir dir("kv-silent");
  KvOptions o;
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto s = kv.client("S");
  s->call("ping", Json{{"pool", pool}, {"worker", "S"}});
  ASSERT_EQ(admin->call("dispatch", dispatch_args(pool, "s1"))["id"], "s1");
  auto held = pull(*s, pool, "S");
  ASSERT_EQ(held.size(), 1u);
  ASSERT_EQ(worker_ids(*admin, pool).count("S"), 1u);
  // S never pings again.
  ASSERT_TRUE(wait_until([&] { return worker_ids(*admin, pool).count("S") == 0; }, 10s))
      << "silent worker still listed";
  auto w = admin->call("get", Json{{"workflow_id", "s1"}});
  EXPECT_EQ(w["lease_worker"], "");
  EXPECT_EQ(w["status"], "pending");
  EXPECT_EQ(w["wake_reason"], "reclaim");
  EXPECT_EQ(code_of(*s, "commit",
                    Json{{"workflow_id", "s1"}, {"worker", "S"}, {"token", held[0]["token"]}, {"step", kComplete}}),
            rpc::code::kConflict);
}

// A kv whose silent workers are lost only after 30 s but whose disconnected ones after `grace_ms`, and worker "S"
// holding the lease of workflow `id` on a subscribed connection (as a sidecar's).
struct DisconnectCase {
  DisconnectCase(const std::string& prefix, const std::string& pool, const std::string& id, int64_t grace_ms)
      : dir(prefix), kv(dir.path(), options(grace_ms)), admin(kv.client("admin")), s(kv.client("S")), pool(pool) {
    s->call("ping", Json{{"pool", pool}, {"worker", "S"}});
    s->call("subscribe", Json{{"worker", "S"}});
    if (admin->call("dispatch", dispatch_args(pool, id))["id"] != id) throw std::runtime_error("dispatch failed");
    held = pull(*s, pool, "S");
    if (held.size() != 1) throw std::runtime_error("pull took " + held.dump());
  }
  static KvOptions options(int64_t grace_ms) {
    KvOptions o;
    o.lost_after_ms = 30000;  // no reclaim within these tests can come from silence alone
    o.extra_args = {"--lost-after-disconnect-ms", std::to_string(grace_ms)};
    return o;
  }
  Json commit_args(const std::string& id) const {
    return Json{{"workflow_id", id}, {"worker", "S"}, {"token", held[0]["token"]}, {"step", kComplete}};
  }
  TempDir dir;
  KvProcess kv;
  std::unique_ptr<rpc::Client> admin, s;
  std::string pool;
  Json held;
};

// A worker whose process dies (kill -9, an OOM kill) has its connection closed by the kernel. The kv takes that as
// evidence and reclaims once the worker has also been silent for --lost-after-disconnect-ms, long before
// --lost-after-ms, which has to cover slow pings and a node that vanishes without closing anything.
TEST(KvServer, WorkerWhoseConnectionClosedIsReclaimedBeforeLostAfter) {
  DisconnectCase x("kv-closed", "closed", "c1", 500);
  x.s->call("ping", Json{{"pool", x.pool}, {"worker", "S"}});  // it was pinging normally when it died
  auto closed_at = mono_ms();
  x.s.reset();  // the process is gone: its socket closes

  ASSERT_TRUE(wait_until([&] { return worker_ids(*x.admin, x.pool).count("S") == 0; }, 15s))
      << "the worker whose connection closed is still listed";
  EXPECT_GE(mono_ms() - closed_at, 500) << "reclaimed before the grace";
  auto w = x.admin->call("get", Json{{"workflow_id", "c1"}});
  EXPECT_EQ(w["lease_worker"], "");
  EXPECT_EQ(w["wake_reason"], "reclaim");
  auto log = read_file(x.kv.log_path());
  EXPECT_NE(log.find("\"why\":\"disconnected\""), std::string::npos) << log;
  // A late commit of the old lease (the worker was alive after all, say) is fenced.
  auto late = x.kv.client("S-late");
  late->call("ping", Json{{"pool", x.pool}, {"worker", "S"}});
  EXPECT_EQ(code_of(*late, "commit", x.commit_args("c1")), rpc::code::kConflict);
}

// A closed connection alone is not enough: a worker that reconnects and keeps pinging keeps its leases, even on a
// connection that never subscribes again, and commits them.
TEST(KvServer, WorkerThatReconnectsAndPingsKeepsItsLeases) {
  DisconnectCase x("kv-reconnect", "reconnect", "r1", 300);
  auto again = x.kv.client("S-again");  // connected first, so a slow connect cannot outlast the grace
  again->call("ping", Json{{"pool", x.pool}, {"worker", "S"}});
  x.s.reset();
  // Ping at the worker's pace through five graces: the property is of a stretch of time, so this waits it out.
  auto t0 = mono_ms();
  wait_until(
      [&] {
        again->call("ping", Json{{"pool", x.pool}, {"worker", "S"}});
        return mono_ms() - t0 > 5 * 300;
      },
      10s);
  EXPECT_EQ(worker_ids(*x.admin, x.pool).count("S"), 1u);
  EXPECT_EQ(x.admin->call("get", Json{{"workflow_id", "r1"}})["lease_worker"], "S");
  auto r = again->call("commit", x.commit_args("r1"));
  EXPECT_FALSE(r.value("duplicate", true)) << r.dump();
  EXPECT_EQ(x.admin->call("get", Json{{"workflow_id", "r1"}})["status"], "complete");
}

// A lease whose pull answer never reached its worker (the leader died after the commit, or the client stopped
// waiting) stays with a live, pinging worker: reclaim never frees it and the worker cannot commit or release a token
// it never learned. Pings say which tokens the worker holds; the kv releases what they keep missing after the
// orphan grace, and the workflow keeps its original due time.
TEST(KvServer, LeaseItsLiveWorkerDoesNotReportIsReleasedAfterTheGrace) {
  const std::string pool = "orphan";
  const int64_t grace_ms = 800;
  TempDir dir("kv-orphan");
  KvOptions o;
  o.lost_after_ms = 60000;  // reclaim cannot explain a release within this test
  o.extra_args = {"--orphan-grace-ms", std::to_string(grace_ms)};
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto a = kv.client("A");
  Pinger pinger(kv, pool, {"A"}, std::chrono::milliseconds(o.ping_interval_ms));
  pinger.report_held("A", {});

  ASSERT_EQ(admin->call("dispatch", dispatch_args(pool, "lost"))["id"], "lost");
  int64_t due = admin->call("get", Json{{"workflow_id", "lost"}})["wake_ts"].get<int64_t>();
  auto t0 = Clock::now();  // the lease is granted after this, so no release can come before t0 + grace
  auto lost = pull(*a, pool, "A");  // this answer is "lost": A never reports its token
  ASSERT_EQ(lost.size(), 1u);
  ASSERT_EQ(admin->call("dispatch", dispatch_args(pool, "kept"))["id"], "kept");
  auto kept = pull(*a, pool, "A");
  ASSERT_EQ(kept.size(), 1u);
  pinger.report_held("A", {kept[0]["token"].get<uint64_t>()});

  ASSERT_TRUE(wait_until([&] { return admin->call("get", Json{{"workflow_id", "lost"}})["status"] == "pending"; },
                         std::chrono::milliseconds(grace_ms * 5)))
      << "the orphaned lease was never released";
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_GE(took.count(), grace_ms) << "released before the grace";
  auto w = admin->call("get", Json{{"workflow_id", "lost"}});
  EXPECT_EQ(w["lease_worker"], "");
  EXPECT_EQ(w["wake_reason"], "orphaned");
  EXPECT_EQ(w["wake_ts"].get<int64_t>(), due) << "a released workflow keeps its place in the queue";
  // The lease A reports stays A's, and the orphaned token is fenced.
  auto k = admin->call("get", Json{{"workflow_id", "kept"}});
  EXPECT_EQ(k["status"], "running");
  EXPECT_EQ(k["lease_token"], kept[0]["token"]);
  EXPECT_EQ(code_of(*a, "commit",
                    Json{{"workflow_id", "lost"}, {"worker", "A"}, {"token", lost[0]["token"]}, {"step", kComplete}}),
            rpc::code::kConflict);
  // The work runs again, exactly once.
  auto again = pull(*a, pool, "A");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["workflow_id"], "lost");
  commit(*a, "A", again[0], kComplete);
  commit(*a, "A", kept[0], kComplete);
  EXPECT_EQ(admin->call("get", Json{{"workflow_id", "lost"}})["steps"], 1);
  EXPECT_EQ(admin->call("get", Json{{"workflow_id", "kept"}})["steps"], 1);
  std::printf("[ orphan ] lease released %lld ms after it was granted (grace %lld ms)\n",
              static_cast<long long>(took.count()), static_cast<long long>(grace_ms));
}

// Finished workflows are deleted after their pool's retention, by the leader in small batches through the log;
// live ones never are; a pool can keep them forever; and under a steady load the number of records stops growing.
TEST(KvServer, RetentionDeletesFinishedWorkflowsAndTheStoreStopsGrowing) {
  const std::string pool = "ret", kept_pool = "keep";
  const int64_t retention_ms = 1000;
  TempDir dir("kv-retention");
  KvOptions o;
  o.extra_args = {"--retention-ms", std::to_string(retention_ms), "--retention-sweep-ms", "100"};
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto w = kv.client("W");
  Pinger pinger(kv, pool, {"W"}, std::chrono::milliseconds(o.ping_interval_ms));
  Pinger kept_pinger(kv, kept_pool, {"W"}, std::chrono::milliseconds(o.ping_interval_ms));
  EXPECT_EQ(admin->call("pool.configure", Json{{"pool", kept_pool}, {"retention_ms", 0}})["retention_ms"], 0);

  auto finish_all = [&](const std::string& p) {
    for (const auto& t : pull(*w, p, "W", 256)) commit(*w, "W", t, kComplete);
  };
  // Kept forever: one pool's finished workflows. Never deleted: a running and a pending one.
  dispatch_all(*admin, kept_pool, make_ids("kept-", 5));
  finish_all(kept_pool);
  dispatch_all(*admin, pool, {"running-1"});
  ASSERT_EQ(pull(*w, pool, "W").size(), 1u);  // leased and never committed
  dispatch_all(*admin, pool, make_ids("first-", 20));
  finish_all(pool);

  // A steady load (dispatch, run, complete) for 4 s while the records of the pool are counted.
  std::vector<size_t> counts;
  auto t0 = Clock::now();
  int batch = 0;
  while (Clock::now() - t0 < 4s) {
    dispatch_all(*admin, pool, make_ids("load-" + std::to_string(batch++) + "-", 10));
    finish_all(pool);
    counts.push_back(count_status(*admin, pool, ""));
    std::this_thread::sleep_for(50ms);  // the load's pace (about 150 workflows/s), not synchronisation
  }
  dispatch_all(*admin, pool, {"pending-1"});
  ASSERT_GE(counts.size(), 8u);
  size_t first_half = *std::max_element(counts.begin(), counts.begin() + static_cast<long>(counts.size() / 2));
  size_t second_half = *std::max_element(counts.begin() + static_cast<long>(counts.size() / 2), counts.end());
  size_t dispatched = static_cast<size_t>(batch) * 10 + 21;
  EXPECT_LT(second_half, dispatched / 2) << "records were not deleted under load";
  EXPECT_LE(second_half, first_half + first_half / 2) << "the number of records kept growing";

  // Everything finished before the load is gone; live workflows and the kept pool's remain.
  ASSERT_TRUE(wait_until([&] { return code_of(*admin, "get", Json{{"workflow_id", "first-19"}}) == "not_found"; },
                         10s));
  for (const auto& id : make_ids("first-", 20)) EXPECT_EQ(code_of(*admin, "get", Json{{"workflow_id", id}}), "not_found");
  for (const auto& id : make_ids("kept-", 5)) EXPECT_EQ(admin->call("get", Json{{"workflow_id", id}})["status"], "complete");
  EXPECT_EQ(admin->call("get", Json{{"workflow_id", "running-1"}})["status"], "running");
  EXPECT_EQ(admin->call("get", Json{{"workflow_id", "pending-1"}})["status"], "pending");
  // status shows each pool's retention and where it comes from.
  auto st = admin->call("status");
  std::map<std::string, Json> by_pool;
  for (const auto& p : st["pools"]) by_pool[p.value("pool", "")] = p;
  EXPECT_EQ(by_pool[pool]["retention_ms"], retention_ms);
  EXPECT_EQ(by_pool[pool]["retention_source"], "kv default");
  EXPECT_EQ(by_pool[kept_pool]["retention_ms"], 0);
  EXPECT_EQ(by_pool[kept_pool]["retention_source"], "pool");
  std::printf("[ retention ] %zu dispatched over 4 s with retention %lld ms: records peaked at %zu (first half), "
              "%zu (second half)\n",
              dispatched, static_cast<long long>(retention_ms), first_half, second_half);
}

// --- timers, signals, deadlines ------------------------------------------------------------------------------

TEST(KvServer, TimersSignalsAndDeadlinesWakeWorkflowsThroughBumps) {
  const std::string pool = "timer";
  TempDir dir("kv-timer");
  KvOptions o;
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto w = kv.client("W");
  Bumps bumps(*w, "W");
  Pinger pinger(kv, pool, {"W"}, std::chrono::milliseconds(o.ping_interval_ms));

  // Sleep until T: pulled at/after T, never before, after a bump.
  auto ids = make_ids("t", 6);
  dispatch_all(*admin, pool, ids);
  auto held = pull_until(*w, pool, "W", [&](const Json& all) { return all.size() >= ids.size(); }, 5s);
  ASSERT_EQ(held.size(), ids.size());
  std::map<std::string, int64_t> until;
  int64_t base = wall_ms();
  for (size_t i = 0; i < held.size(); ++i) {
    auto id = held[i]["workflow_id"].get<std::string>();
    until[id] = base + 400 + 120 * static_cast<int64_t>(i);
    EXPECT_EQ(commit(*w, "W", held[i], Json{{"kind", "sleep"}, {"until", until[id]}})["status"], "sleeping");
  }
  EXPECT_TRUE(pull(*w, pool, "W").empty()) << "a sleeping workflow was pulled before its time";
  std::vector<int64_t> bump_lag, pull_lag;
  std::set<std::string> woken;
  uint64_t seen = bumps.count();
  auto deadline = Clock::now() + 10s;
  while (woken.size() < ids.size() && Clock::now() < deadline) {
    uint64_t now_seen = bumps.wait_beyond(seen, 3s);
    if (now_seen == seen) break;  // no bump: the wake-up was lost
    seen = now_seen;
    int64_t bumped_at = bumps.last_ms();
    auto tasks = pull(*w, pool, "W");
    int64_t pulled_at = wall_ms();
    for (const auto& t : tasks) {
      auto id = t["workflow_id"].get<std::string>();
      ASSERT_TRUE(until.count(id)) << id;
      EXPECT_EQ(t["wake_reason"], "timer");
      EXPECT_EQ(t["wake_ts"], until[id]);
      EXPECT_GE(pulled_at, until[id]) << id << " pulled " << until[id] - pulled_at << " ms early";
      EXPECT_GE(bumped_at, until[id] - 5) << "bump before the timer";  // 5 ms: the kv and we read one clock
      bump_lag.push_back(bumped_at - until[id]);
      pull_lag.push_back(pulled_at - until[id]);
      EXPECT_TRUE(woken.insert(id).second) << id << " woke twice";
      commit(*w, "W", t, kComplete);
    }
  }
  EXPECT_EQ(woken.size(), ids.size()) << "timer wake-ups lost (no bump within 3 s)";
  std::printf("[ timer lag ] bump after T: %s; pulled after T: %s\n", percentiles(bump_lag).c_str(),
              percentiles(pull_lag).c_str());

  // A waiting workflow: another signal name doesn't wake it, the awaited one does (with a bump).
  ASSERT_EQ(admin->call("dispatch", dispatch_args(pool, "sig1"))["id"], "sig1");
  auto sig_task = pull_until(*w, pool, "W", [](const Json& all) { return !all.empty(); }, 5s);
  ASSERT_EQ(sig_task.size(), 1u);
  EXPECT_EQ(commit(*w, "W", sig_task[0], Json{{"kind", "wait"}, {"signals", {"go"}}})["status"], "waiting");
  EXPECT_TRUE(pull(*w, pool, "W").empty());
  EXPECT_EQ(admin->call("signal", Json{{"workflow_id", "sig1"}, {"name", "other"}})["seq"], 1);
  EXPECT_TRUE(pull(*w, pool, "W").empty()) << "a signal it does not wait for woke it";
  seen = bumps.count();
  int64_t sent_at = wall_ms();
  EXPECT_EQ(admin->call("signal", Json{{"workflow_id", "sig1"}, {"name", "go"}, {"body", {{"x", 1}}}})["seq"], 2);
  ASSERT_GT(bumps.wait_beyond(seen, 3s), seen) << "no bump after the signal";
  auto woke = pull(*w, pool, "W");
  int64_t signal_lag = wall_ms() - sent_at;
  ASSERT_EQ(woke.size(), 1u);
  EXPECT_EQ(woke[0]["wake_reason"], "signal");
  bool saw_go = false;
  uint64_t max_seq = 0;
  for (const auto& s : woke[0]["signals"]) {
    max_seq = std::max<uint64_t>(max_seq, s["seq"]);
    if (s["name"] == "go") saw_go = s["body"] == Json{{"x", 1}};
  }
  EXPECT_TRUE(saw_go) << woke[0]["signals"].dump();
  commit(*w, "W", woke[0], kComplete, max_seq);
  auto g = admin->call("get", Json{{"workflow_id", "sig1"}});
  EXPECT_EQ(g["status"], "complete");
  EXPECT_TRUE(g["pending_signals"].empty()) << g["pending_signals"].dump();

  // Wait with a deadline and no signal: woken at the deadline.
  ASSERT_EQ(admin->call("dispatch", dispatch_args(pool, "dl1"))["id"], "dl1");
  auto dl_task = pull_until(*w, pool, "W", [](const Json& all) { return !all.empty(); }, 5s);
  ASSERT_EQ(dl_task.size(), 1u);
  int64_t dl = wall_ms() + 500;
  EXPECT_EQ(commit(*w, "W", dl_task[0], Json{{"kind", "wait"}, {"signals", {"never"}}, {"until", dl}})["status"],
            "waiting");
  EXPECT_TRUE(pull(*w, pool, "W").empty());
  seen = bumps.count();
  ASSERT_GT(bumps.wait_beyond(seen, 3s), seen) << "no bump at the deadline";
  auto dl_woke = pull(*w, pool, "W");
  int64_t dl_pulled = wall_ms();
  ASSERT_EQ(dl_woke.size(), 1u);
  EXPECT_EQ(dl_woke[0]["wake_reason"], "deadline");
  EXPECT_GE(dl_pulled, dl);
  commit(*w, "W", dl_woke[0], kComplete);
  std::printf("[ signal lag ] signal sent → pulled: %lld ms; [ deadline lag ] pulled after deadline: %lld ms\n",
              static_cast<long long>(signal_lag), static_cast<long long>(dl_pulled - dl));
}

// --- no wake-up lost -----------------------------------------------------------------------------------------

TEST(KvServer, NoWakeUpLostWithSimulatedWorkers) {
  const std::string pool = "sim";
  constexpr int kWorkflows = 240;
  TempDir dir("kv-sim");
  KvOptions o;
  o.lost_after_ms = 1500;
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");

  std::vector<std::unique_ptr<testing::SimWorker>> sims;
  for (int i = 0; i < 4; ++i) {
    testing::SimWorkerOptions so;
    so.address = kv.address();
    so.token = kv.token();
    so.pool = pool;
    so.id = "sim" + std::to_string(i);
    so.fallback_tick_ms = 2000;  // bumps, not the fallback tick, should carry the work
    // Three steps: sleep 30 ms, continue, complete.
    so.run = [](const Json& task) {
      uint64_t steps = task.value("steps", uint64_t{0});
      if (steps == 0) return Json{{"kind", "sleep"}, {"until", wall_ms() + 30}};
      if (steps == 1) return Json{{"kind", "continue"}};
      return Json{{"kind", "complete"}, {"output", task["workflow_id"]}};
    };
    sims.push_back(std::make_unique<testing::SimWorker>(so));
    sims.back()->start();
  }
  // Dispatch in bursts while the workers run, some due now and some a little later.
  std::mt19937 rng(42);
  for (int burst = 0; burst < 4; ++burst) {
    std::vector<std::pair<std::string, Json>> calls;
    for (int i = 0; i < kWorkflows / 4; ++i) {
      auto args = dispatch_args(pool, "s" + std::to_string(burst) + "-" + std::to_string(i));
      if (i % 3 == 0) args["run_at"] = wall_ms() + static_cast<int64_t>(rng() % 300);
      calls.emplace_back("dispatch", args);
    }
    for (const auto& r : call_many(*admin, calls)) ASSERT_FALSE(r.contains("error")) << r.dump();
  }
  bool complete = wait_until([&] { return count_status(*admin, pool, "complete") == kWorkflows; }, 30s);
  for (auto& s : sims) s->stop();
  ASSERT_TRUE(complete) << count_status(*admin, pool, "complete") << " of " << kWorkflows << " complete";

  std::map<std::pair<std::string, uint64_t>, int> acked;
  uint64_t conflicts = 0;
  for (auto& s : sims) {
    conflicts += s->conflicts();
    for (const auto& rec : s->history()) {
      if (rec.ok) {
        ++acked[{rec.workflow_id, rec.steps_before}];
      } else {
        EXPECT_EQ(rec.error_code, rpc::code::kConflict) << rec.workflow_id;
      }
    }
  }
  EXPECT_EQ(acked.size(), static_cast<size_t>(kWorkflows) * 3);
  for (const auto& [key, n] : acked) EXPECT_EQ(n, 1) << key.first << " step " << key.second;
  std::printf("[ sim ] %d workflows x 3 steps complete; fenced commits: %llu\n", kWorkflows,
              static_cast<unsigned long long>(conflicts));
}

// --- N = 0 ---------------------------------------------------------------------------------------------------

TEST(KvServer, WithoutWorkersDispatchedWorkWaitsForTheFirstToJoin) {
  const std::string pool = "empty";
  TempDir dir("kv-empty");
  KvOptions o;
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto ids = make_ids("e", 5);
  dispatch_all(*admin, pool, ids);
  EXPECT_EQ(count_status(*admin, pool, "pending"), ids.size());
  auto w0 = admin->call("get", Json{{"workflow_id", "e0"}});
  EXPECT_EQ(w0["lease_worker"], "");
  auto status = admin->call("status");
  bool found = false;
  for (const auto& p : status["pools"]) {
    if (p["pool"] != pool) continue;
    found = true;
    EXPECT_EQ(p["active_workers"], 0);
    EXPECT_EQ(p["due"], ids.size());
  }
  EXPECT_TRUE(found) << status.dump();

  // A caller that never pinged is not a member.
  auto z = kv.client("Z");
  EXPECT_EQ(code_of(*z, "pull", Json{{"pool", pool}, {"worker", "Z"}, {"max", 10}}), rpc::code::kFailedPrecondition);
  EXPECT_EQ(count_status(*admin, pool, "pending"), ids.size());

  auto w = kv.client("W");
  Pinger pinger(kv, pool, {"W"}, std::chrono::milliseconds(o.ping_interval_ms));
  auto got = pull_until(*w, pool, "W", [&](const Json& all) { return all.size() >= ids.size(); }, 5s);
  EXPECT_EQ(ids_of(got), std::set<std::string>(ids.begin(), ids.end()));
  for (const auto& t : got) EXPECT_EQ(t["wake_reason"], "dispatch");
}

// --- bad input on raw sockets --------------------------------------------------------------------------------

using testing::RawConn;

std::string be32(uint32_t v) {
  std::string s;
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

class KvServerBadInput : public ::testing::Test {
 protected:
  static constexpr size_t kMaxFrame = 1048576;
  void SetUp() override {
    KvOptions o;
    o.extra_args = {"--max-frame", std::to_string(kMaxFrame)};
    kv_ = std::make_unique<KvProcess>(dir_.path(), o);
    bystander_ = kv_->client("bystander");
    bystander_->call("status");
  }
  // The kv still runs, a connection opened before the bad input still works, and so does a new one.
  void TearDown() override {
    EXPECT_TRUE(kv_->process().running()) << "the kv died; log:\n" << read_file(kv_->log_path());
    if (!kv_->process().running()) return;
    EXPECT_NO_THROW(bystander_->call("status")) << "an existing connection stopped working";
    auto fresh = kv_->client("fresh");
    EXPECT_NO_THROW(fresh->call("ping", Json{{"pool", "bad"}, {"worker", "ok"}}));
    EXPECT_NO_THROW(fresh->call("dispatch", dispatch_args("bad", "still-serving")));
  }
  void expect_error(RawConn& c, const std::string& code, const std::string& message_part) {
    Json body;
    try {
      body = c.expect_error_then_close();
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
      return;
    }
    EXPECT_EQ(body.value("code", ""), code) << body.dump();
    EXPECT_NE(body.value("message", "").find(message_part), std::string::npos) << body.dump();
  }

  TempDir dir_{"kv-bad"};
  std::unique_ptr<KvProcess> kv_;
  std::unique_ptr<rpc::Client> bystander_;
};

TEST_F(KvServerBadInput, GarbageBytesGetAnErrorFrameAndAClose) {
  {
    RawConn c(kv_->address());
    c.send(be32(2) + "hi");  // a length shorter than the header
    expect_error(c, rpc::code::kProtocol, "shorter than the 9-byte header");
  }
  {
    RawConn c(kv_->address());
    c.send("GET / HTTP/1.1\r\nHost: kv\r\n\r\n");  // "GET " read as a length: 1.2 GB
    expect_error(c, rpc::code::kTooLarge, "exceeds the limit");
  }
  {
    std::mt19937 rng(7);
    std::string junk(4096, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    RawConn c(kv_->address());
    c.send(junk);
    auto r = c.next();
    while (r.frame && r.frame->type != rpc::FrameType::kError) r = c.next();
    EXPECT_TRUE(r.frame || r.closed) << "no answer to garbage";
    if (r.frame) {
      EXPECT_TRUE(c.next().closed);
    }
  }
}

// Resident memory of a process in bytes (VmRSS).
size_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  throw std::runtime_error("no VmRSS for pid " + std::to_string(pid));
}

// Before its hello a connection may send small frames only: 50 connections that each start a frame of the full
// cap and send its body are refused at the header, and the kv buffers none of it.
TEST_F(KvServerBadInput, ConnectionsWithoutAHelloCannotMakeTheKvBufferFullFrames) {
  size_t before = rss_bytes(kv_->process().pid());
  std::vector<std::unique_ptr<RawConn>> conns;
  const std::string body(kMaxFrame - 64, 'x');
  for (int i = 0; i < 50; ++i) {
    conns.push_back(std::make_unique<RawConn>(kv_->address()));
    conns.back()->send(rpc::encode_frame(rpc::FrameType::kHello, 1, body));
  }
  size_t refused = 0;
  for (auto& c : conns) {
    auto r = c->next();
    if (r.frame && r.frame->type == rpc::FrameType::kError) {
      auto error = Json::from_msgpack(r.frame->body);
      EXPECT_EQ(error["code"], rpc::code::kTooLarge) << error.dump();
      EXPECT_NE(error.value("message", "").find("65536"), std::string::npos) << error.dump();
      ++refused;
    } else {
      EXPECT_TRUE(r.closed) << "a connection without a hello sending a big frame was kept";
      ++refused;  // closed with unread bytes: the error frame may be lost in the reset
    }
  }
  EXPECT_EQ(refused, conns.size());
  size_t after = rss_bytes(kv_->process().pid());
  EXPECT_LT(after, before + 32 * 1024 * 1024) << "RSS grew from " << before << " to " << after << " bytes";
  std::printf("[ pre-auth ] 50 unauthenticated 1 MiB frames: RSS %zu -> %zu KiB\n", before / 1024, after / 1024);
}

TEST(KvServer, ConnectionsWaitingForTheirHelloAreBoundedAndTimedOut) {
  TempDir dir("kv-hello-bound");
  KvOptions o;
  o.extra_args = {"--max-unauthenticated", "8", "--hello-timeout-ms", "1000"};
  KvProcess kv(dir.path(), o);
  auto bystander = kv.client("bystander");
  bystander->call("status");
  std::vector<std::unique_ptr<RawConn>> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(std::make_unique<RawConn>(kv.address()));
  // One more than the bound is refused at once, with a reason.
  {
    RawConn extra(kv.address());
    auto r = extra.next(3s);
    ASSERT_TRUE(r.frame) << "the connection over the bound got no error frame";
    auto error = Json::from_msgpack(r.frame->body);
    EXPECT_EQ(error["code"], rpc::code::kUnavailable) << error.dump();
    EXPECT_NE(error.value("message", "").find("waiting for their hello"), std::string::npos) << error.dump();
  }
  // The idle ones are closed at the hello deadline, which frees the places for clients that authenticate.
  for (auto& c : idle) {
    auto r = c->next(5s);
    ASSERT_TRUE(r.frame) << "an idle connection was not closed at the hello deadline";
    EXPECT_EQ(Json::from_msgpack(r.frame->body)["code"], rpc::code::kUnauthenticated);
  }
  auto fresh = kv.client("fresh");
  EXPECT_NO_THROW(fresh->call("status"));
  EXPECT_NO_THROW(bystander->call("status")) << "an authenticated connection was affected";
}

TEST(KvServer, TakenMetricsPortNamesTheFlagAndTheAddress) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor taken(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::string address = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  TempDir dir("kv-metrics-taken");
  std::string token_file = dir.path() + "/token";
  std::ofstream(token_file) << "secret\n";
  testing::Process kv({testing::binary_path("gasoline-kv"), "--data-dir", dir.path() + "/data", "--token-file",
                       token_file, "--listen", "127.0.0.1:0", "--metrics-listen", address},
                      dir.path() + "/kv.log");
  int code = kv.wait(std::chrono::seconds(20));
  EXPECT_EQ(code, 1) << read_file(dir.path() + "/kv.log");
  auto log = read_file(dir.path() + "/kv.log");
  EXPECT_NE(log.find("--metrics-listen " + address), std::string::npos) << log;
}

TEST_F(KvServerBadInput, UnknownFrameTypeIsAProtocolError) {
  {
    RawConn c(kv_->address());
    c.hello(kv_->token());
    c.send(rpc::encode_frame(static_cast<rpc::FrameType>(9), 7, RawConn::pack(Json::object())));
    expect_error(c, rpc::code::kProtocol, "unknown frame type 9");
  }
  {
    RawConn c(kv_->address());
    c.send(rpc::encode_frame(static_cast<rpc::FrameType>(0), 1, ""));
    expect_error(c, rpc::code::kProtocol, "unknown frame type 0");
  }
  {
    RawConn c(kv_->address());
    c.hello(kv_->token());
    c.send(rpc::encode_frame(rpc::FrameType::kWelcome, 3, RawConn::pack(Json::object())));  // server-only type
    expect_error(c, rpc::code::kProtocol, "unexpected frame type 2");
  }
}

TEST_F(KvServerBadInput, FrameOverTheCapIsRefusedAndOneAtTheCapIsServed) {
  {
    RawConn c(kv_->address());
    c.hello(kv_->token());
    // Only the header: the length alone must be refused, without waiting for (or buffering) the body.
    c.send(be32(static_cast<uint32_t>(kMaxFrame + 1)) + std::string(1, '\x03') + std::string(8, '\0'));
    expect_error(c, rpc::code::kTooLarge, "exceeds the limit of 1048576");
  }
  {
    RawConn c(kv_->address());
    c.send(be32(0xffffffffu) + std::string(1, '\x01'));  // before the hello, the biggest length there is
    expect_error(c, rpc::code::kTooLarge, "exceeds the limit");
  }
  {
    // The whole oversized frame sent at once: the server closes (its unread bytes may turn the close into a
    // reset, so the error frame is not guaranteed to arrive) and keeps serving everyone else.
    RawConn c(kv_->address());
    c.hello(kv_->token());
    std::string body(kMaxFrame + 4096, 'x');
    c.send(rpc::encode_frame(rpc::FrameType::kRequest, 12, body));
    auto r = c.next();
    if (r.frame) {
      EXPECT_EQ(r.frame->type, rpc::FrameType::kError);
      EXPECT_EQ(Json::from_msgpack(r.frame->body)["code"], rpc::code::kTooLarge);
      r = c.next();
    }
    EXPECT_TRUE(r.closed) << "an oversized frame did not close the connection";
  }
  {
    // Exactly at the cap: accepted and answered.
    RawConn c(kv_->address());
    c.hello(kv_->token());
    size_t pad = kMaxFrame - rpc::kHeaderSize - 64;
    std::string body;
    for (int i = 0; i < 3; ++i) {
      body = RawConn::pack(Json{{"op", "status"}, {"args", {{"pad", std::string(pad, 'x')}}}});
      pad += kMaxFrame - rpc::kHeaderSize - body.size();
    }
    ASSERT_EQ(body.size() + rpc::kHeaderSize, kMaxFrame);
    c.send(rpc::encode_frame(rpc::FrameType::kRequest, 11, body));
    auto r = c.response(11);
    EXPECT_EQ(r["ok"], true) << r.dump();
  }
}

TEST_F(KvServerBadInput, WrongTokenIsUnauthenticatedAndClosed) {
  {
    RawConn c(kv_->address());
    c.send(rpc::encode_frame(rpc::FrameType::kHello, 0,
                             RawConn::pack(Json{{"version", rpc::kProtocolVersion}, {"token", "not-the-token"}})));
    expect_error(c, rpc::code::kUnauthenticated, "invalid bearer token");
  }
  {
    RawConn c(kv_->address());
    c.send(rpc::encode_frame(rpc::FrameType::kHello, 0, RawConn::pack(Json{{"version", rpc::kProtocolVersion}})));
    expect_error(c, rpc::code::kUnauthenticated, "invalid bearer token");
  }
  {
    rpc::ClientOptions co;
    co.endpoints = {kv_->address()};
    co.token = kv_->token() + "x";
    rpc::Client client(co);
    EXPECT_EQ(code_of(client, "status", Json::object()), rpc::code::kUnauthenticated);
  }
}

TEST_F(KvServerBadInput, RequestBeforeHelloIsClosed) {
  RawConn c(kv_->address());
  c.send(RawConn::request(1, "status"));
  expect_error(c, rpc::code::kUnauthenticated, "first frame must be a hello");
}

TEST_F(KvServerBadInput, BadHelloBodiesAreProtocolErrors) {
  {
    RawConn c(kv_->address());
    c.send(rpc::encode_frame(rpc::FrameType::kHello, 0, "\xc1\xc1"));
    expect_error(c, rpc::code::kProtocol, "not MessagePack");
  }
  {
    RawConn c(kv_->address());
    c.send(rpc::encode_frame(rpc::FrameType::kHello, 0, RawConn::pack(Json{{"version", 99}, {"token", kv_->token()}})));
    expect_error(c, rpc::code::kProtocol, "protocol version 99 is not supported");
  }
}

TEST_F(KvServerBadInput, BodyThatIsNotMessagePackFailsOnlyThatRequest) {
  RawConn c(kv_->address());
  c.hello(kv_->token());
  c.send(rpc::encode_frame(rpc::FrameType::kRequest, 5, "\xc1 not msgpack"));
  auto r = c.response(5);
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"]["code"], rpc::code::kProtocol) << r.dump();
  // Truncated MessagePack (a map announcing entries that never come).
  c.send(rpc::encode_frame(rpc::FrameType::kRequest, 6, "\x82\xa2op"));
  r = c.response(6);
  EXPECT_EQ(r["error"]["code"], rpc::code::kProtocol) << r.dump();
  // Valid MessagePack that is not a request map.
  c.send(rpc::encode_frame(rpc::FrameType::kRequest, 7, RawConn::pack(Json(5))));
  r = c.response(7);
  EXPECT_EQ(r["error"]["code"], rpc::code::kBadRequest) << r.dump();
  c.send(rpc::encode_frame(rpc::FrameType::kRequest, 8, RawConn::pack(Json{{"op", "status"}, {"args", 3}})));
  r = c.response(8);
  EXPECT_EQ(r["error"]["code"], rpc::code::kBadRequest) << r.dump();
  // The connection is still usable.
  c.send(RawConn::request(9, "status"));
  r = c.response(9);
  EXPECT_EQ(r["ok"], true) << r.dump();
}

TEST_F(KvServerBadInput, DeeplyNestedBodyIsRefusedWithoutHarm) {
  RawConn c(kv_->address());
  c.hello(kv_->token());
  // 200k nested one-element arrays: 200 KB, far under the frame cap.
  c.send(rpc::encode_frame(rpc::FrameType::kRequest, 21, std::string(200000, '\x91')));
  auto r = c.response(21);
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"]["code"], rpc::code::kProtocol) << r.dump();
  // Deep nesting inside valid arguments is refused too, so it can never reach the store.
  std::string deep = RawConn::pack(
      Json{{"op", "dispatch"}, {"args", {{"pool", "bad"}, {"name", "n"}, {"id", "d1"}, {"input", nullptr}}}});
  auto at = deep.find("\xa5input\xc0");
  ASSERT_NE(at, std::string::npos);
  deep.insert(at + 6, std::string(100000, '\x91'));  // input = [[[[...null...]]]]
  c.send(rpc::encode_frame(rpc::FrameType::kRequest, 22, deep));
  r = c.response(22);
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"]["code"], rpc::code::kProtocol) << r.dump();
  c.send(RawConn::request(23, "status"));
  EXPECT_EQ(c.response(23)["ok"], true);
}

TEST_F(KvServerBadInput, UnknownOpAndBadArgumentsAreBadRequests) {
  RawConn c(kv_->address());
  c.hello(kv_->token());
  c.send(RawConn::request(1, "frobnicate"));
  auto r = c.response(1);
  EXPECT_EQ(r["error"]["code"], rpc::code::kBadRequest);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("unknown op 'frobnicate'"), std::string::npos) << r.dump();
  c.send(RawConn::request(2, "dispatch", Json{{"pool", 5}, {"name", "x"}}));
  EXPECT_EQ(c.response(2)["error"]["code"], rpc::code::kBadRequest);
  c.send(RawConn::request(3, "ping", Json{{"pool", "bad"}, {"worker", "w"}, {"workflows", "not-a-list"}}));
  EXPECT_EQ(c.response(3)["error"]["code"], rpc::code::kBadRequest);
  c.send(RawConn::request(4, "commit", Json{{"workflow_id", "x"}, {"worker", "w"}, {"token", 1}, {"step", {{"kind", "explode"}}}}));
  EXPECT_EQ(c.response(4)["error"]["code"], rpc::code::kBadRequest);
  c.send(RawConn::request(5, "dispatch", Json{{"pool", "bad pool!"}, {"name", "x"}}));
  EXPECT_EQ(c.response(5)["error"]["code"], rpc::code::kBadRequest);
  c.send(RawConn::request(6, "get", Json{{"workflow_id", "missing"}}));
  EXPECT_EQ(c.response(6)["error"]["code"], rpc::code::kNotFound);
  c.send(RawConn::request(7, "status"));
  EXPECT_EQ(c.response(7)["ok"], true);
}

TEST_F(KvServerBadInput, PipelinedRequestsSplitIntoSingleBytesAreAllAnswered) {
  RawConn c(kv_->address());
  std::string stream = rpc::encode_frame(rpc::FrameType::kHello, 0,
                                         RawConn::pack(Json{{"version", rpc::kProtocolVersion}, {"token", kv_->token()}}));
  for (uint64_t id = 100; id < 105; ++id) stream += RawConn::request(id, "get", Json{{"workflow_id", "missing"}});
  for (char ch : stream) c.send(std::string_view(&ch, 1));
  auto w = c.next();
  ASSERT_TRUE(w.frame);
  ASSERT_EQ(w.frame->type, rpc::FrameType::kWelcome) << Json::from_msgpack(w.frame->body).dump();
  std::set<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = c.next();
    ASSERT_TRUE(r.frame);
    ASSERT_EQ(r.frame->type, rpc::FrameType::kResponse) << Json::from_msgpack(r.frame->body).dump();
    EXPECT_EQ(Json::from_msgpack(r.frame->body)["error"]["code"], rpc::code::kNotFound);
    ids.insert(r.frame->id);
  }
  EXPECT_EQ(ids, (std::set<uint64_t>{100, 101, 102, 103, 104}));
}

// --- gasctl --------------------------------------------------------------------------------------------------

struct CliResult {
  int code;
  std::string output;
};

CliResult gasctl(const std::string& dir, const std::vector<std::string>& args) {
  static int n = 0;
  std::string log = dir + "/gasctl-" + std::to_string(++n) + ".out";
  std::vector<std::string> argv{testing::binary_path("gasctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::Process p(argv, log);
  int code = p.wait(20s);
  return CliResult{code, read_file(log)};
}

TEST(KvServer, GasctlSmoke) {
  const std::string pool = "ctl";
  TempDir dir("kv-ctl");
  TempDir out("kv-ctl-out");
  KvOptions o;
  KvProcess kv(dir.path(), o);
  const std::string token_file = dir.path() + "/token";
  std::vector<std::string> common{"--kv", kv.address(), "--token-file", token_file};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> all = common;
    all.insert(all.end(), args.begin(), args.end());
    return gasctl(out.path(), all);
  };

  auto r = run({"dispatch", "--pool", pool, "--name", "job", "--id", "ctl-1", "--input", R"({"n":1})", "--tag", "team=a"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "ctl-1\n");
  r = run({"dispatch", "--pool", pool, "--name", "job", "--id", "ctl-1"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "ctl-1 (existing)\n");

  r = run({"get", "ctl-1"});
  ASSERT_EQ(r.code, 0) << r.output;
  Json got = Json::parse(r.output);
  EXPECT_EQ(got["id"], "ctl-1");
  EXPECT_EQ(got["status"], "pending");
  EXPECT_EQ(got["input"], (Json{{"n", 1}}));
  EXPECT_EQ(got["tags"], (Json{{"team", "a"}}));

  r = run({"list", "--pool", pool});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("ctl-1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pending"), std::string::npos) << r.output;
  r = run({"-o", "json", "list", "--pool", pool});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Json::parse(r.output)["workflows"].size(), 1u);
  r = run({"list", "--pool", pool, "-o", "json"});  // global options after the subcommand too
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Json::parse(r.output)["workflows"].size(), 1u);
  r = run({"workers", "--pool", pool});  // nobody pinged yet: says so
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("pool ctl: 0 active"), std::string::npos) << r.output;

  // Retention: a pool's own setting, shown by status.
  r = run({"retention", pool, "forever"});
  ASSERT_EQ(r.code, 0) << r.output;
  r = run({"-o", "json", "status"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"retention_source\": \"pool\""), std::string::npos) << r.output;
  r = run({"retention", pool, "soon"});
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("not a positive number of milliseconds"), std::string::npos) << r.output;

  Pinger pinger(kv, pool, {"ctl-worker"}, std::chrono::milliseconds(o.ping_interval_ms));
  r = run({"workers", "--pool", pool});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("strategy: rendezvous"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pool ctl: 1 active"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ctl-worker"), std::string::npos) << r.output;

  r = run({"get", "no-such-workflow"});
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("not_found"), std::string::npos) << r.output;

  r = run({"dispatch", "--pool", pool, "--name", "job", "--input", "{not json"});
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;

  const std::string wrong = out.path() + "/wrong-token";
  std::ofstream(wrong) << "definitely-not-the-token\n";
  for (auto args : std::vector<std::vector<std::string>>{{"get", "ctl-1"}, {"list", "--pool", pool}}) {
    std::vector<std::string> all{"--kv", kv.address(), "--token-file", wrong};
    all.insert(all.end(), args.begin(), args.end());
    r = gasctl(out.path(), all);
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("unauthenticated"), std::string::npos) << r.output;
  }
  EXPECT_EQ(count_status(*kv.client(), pool, ""), 1u);

  // Paging: --all follows the pages (one status at a time, the cursor being an id); one page says how to go on.
  auto admin = kv.client();
  for (int i = 0; i < 7; ++i) admin->call("dispatch", dispatch_args("ctl-pages", "p-" + std::to_string(i)));
  for (auto id : {"p-1", "p-4"}) admin->call("cancel", Json{{"workflow_id", id}});
  r = run({"list", "--pool", "ctl-pages", "--limit", "2", "--all", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.output;
  std::set<std::string> listed;
  auto pages = Json::parse(r.output);
  for (const auto& w : pages["workflows"]) listed.insert(w.value("id", ""));
  EXPECT_EQ(listed.size(), 7u) << r.output;
  r = run({"list", "--pool", "ctl-pages", "--limit", "2", "--status", "pending"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("more may follow: --after p-2"), std::string::npos) << r.output;
  r = run({"-o", "json", "list", "--pool", "ctl-pages", "--status", "pending", "--after", "p-2"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Json::parse(r.output)["workflows"].size(), 3u) << r.output;  // p-3, p-5, p-6

  // Bulk dispatch: pipelined, ids chosen by gasctl (so a second run finds them all), a rate, a file of JSON lines.
  r = run({"dispatch", "--pool", "ctl-bulk", "--name", "noop", "--count", "500", "--id", "bulk", "--rate", "2000",
           "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.output;
  auto bulk = Json::parse(r.output);
  EXPECT_EQ(bulk["created"], 500) << r.output;
  EXPECT_GE(bulk["seconds"].get<double>(), 0.2) << "--rate 2000 for 500 takes a quarter second";
  r = run({"-o", "json", "dispatch", "--pool", "ctl-bulk", "--name", "noop", "--count", "500", "--id", "bulk"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Json::parse(r.output)["existing"], 500) << r.output;
  EXPECT_EQ(count_status(*admin, "ctl-bulk", ""), 500u);
  const std::string lines = out.path() + "/bulk.jsonl";
  std::ofstream(lines) << R"({"name": "a", "id": "line-1"})" << "\n\n" << R"({"id": "line-2", "input": {"x": 1}})" << "\n";
  r = run({"dispatch", "--pool", "ctl-bulk", "--name", "fallback", "--from-file", lines});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(admin->call("get", Json{{"workflow_id", "line-2"}})["name"], "fallback");
  std::ofstream(lines, std::ios::app) << "not json\n";
  r = run({"dispatch", "--pool", "ctl-bulk", "--from-file", lines});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("line 4: not a JSON object"), std::string::npos) << r.output;
}

// --- kill -9 and restart -------------------------------------------------------------------------------------

TEST(KvServer, KillNineKeepsAcknowledgedDispatchesAndFencedLeases) {
  const std::string pool = "crash";
  TempDir dir("kv-crash");
  KvOptions o;
  o.lost_after_ms = 2000;  // the lease holder re-pings well within this after the restart
  KvProcess kv(dir.path(), o);
  auto admin = kv.client("admin");
  auto a = kv.client("A");
  Pinger pinger(kv, pool, {"A"}, std::chrono::milliseconds(o.ping_interval_ms));

  auto ids = make_ids("c", 30);
  dispatch_all(*admin, pool, ids);
  auto held = a->call("pull", Json{{"pool", pool}, {"worker", "A"}, {"max", 6}})["tasks"];
  ASSERT_EQ(held.size(), 6u);
  // One is committed before the crash; five stay leased across it.
  auto done_id = held[0]["workflow_id"].get<std::string>();
  ASSERT_EQ(commit(*a, "A", held[0], kComplete)["status"], "complete");

  // A second writer keeps dispatching through the crash; whatever it saw acknowledged must survive.
  std::atomic<bool> stop{false};
  std::mutex acked_mu;
  std::vector<std::string> acked;
  std::thread writer([&] {
    auto c = kv.client("writer");
    for (int i = 0; !stop; ++i) {
      auto id = "live" + std::to_string(i);
      try {
        // The id makes the retry idempotent; the client backs off between attempts while the kv is down.
        c->call("dispatch", dispatch_args(pool, id), rpc::CallOptions{5s, true});
        std::lock_guard lock(acked_mu);
        acked.push_back(id);
      } catch (const KvError&) {
      }
    }
  });
  auto acked_count = [&] {
    std::lock_guard lock(acked_mu);
    return acked.size();
  };
  ASSERT_TRUE(wait_until([&] { return acked_count() >= 20; }, 10s));
  kv.restart(true);
  size_t at_restart = acked_count();
  bool resumed = wait_until([&] { return acked_count() >= at_restart + 10; }, 10s);
  stop = true;
  writer.join();
  ASSERT_TRUE(resumed) << "dispatches did not resume after the restart";

  rpc::CallOptions retry{10s, true};
  for (const auto& id : ids) EXPECT_NO_THROW(admin->call("get", Json{{"workflow_id", id}}, retry)) << id;
  {
    std::lock_guard lock(acked_mu);
    for (const auto& id : acked) EXPECT_NO_THROW(admin->call("get", Json{{"workflow_id", id}}, retry)) << id;
  }
  EXPECT_EQ(admin->call("get", Json{{"workflow_id", done_id}}, retry)["status"], "complete");

  // The five leases survived the crash and are still fenced.
  for (size_t i = 1; i < held.size(); ++i) {
    auto id = held[i]["workflow_id"].get<std::string>();
    uint64_t token = held[i]["token"];
    auto w = admin->call("get", Json{{"workflow_id", id}}, retry);
    EXPECT_EQ(w["status"], "running") << id;
    EXPECT_EQ(w["lease_worker"], "A") << id;
    EXPECT_EQ(w["lease_token"], token) << id;
    Json bad{{"workflow_id", id}, {"worker", "A"}, {"token", token + 1}, {"step", kComplete}};
    EXPECT_EQ(code_of(*admin, "commit", bad), rpc::code::kConflict) << id;
    bad["worker"] = "B";
    bad["token"] = token;
    EXPECT_EQ(code_of(*admin, "commit", bad), rpc::code::kConflict) << id;
  }
  // Another worker pulls everything due and never gets a leased workflow.
  auto b = kv.client("B");
  pinger.add("B");
  std::set<std::string> leased;
  for (size_t i = 1; i < held.size(); ++i) leased.insert(held[i]["workflow_id"].get<std::string>());
  auto got = pull_until(*b, pool, "B", [&](const Json&) { return count_status(*admin, pool, "pending") == 0; }, 10s);
  EXPECT_EQ(count_status(*admin, pool, "pending"), 0u) << "pending work was not pulled after the restart";
  for (const auto& t : got) EXPECT_EQ(leased.count(t["workflow_id"].get<std::string>()), 0u) << t.dump();
  // The holder commits with its pre-crash tokens, exactly once each.
  for (size_t i = 1; i < held.size(); ++i) {
    auto r = a->call("commit",
                     Json{{"workflow_id", held[i]["workflow_id"]}, {"worker", "A"}, {"token", held[i]["token"]},
                          {"step", kComplete}},
                     retry);
    EXPECT_EQ(r["duplicate"], false);
    EXPECT_EQ(r["status"], "complete");
  }
}

// A kv that accepts connections but never answers (SIGSTOP, a hung process, a partition that keeps the TCP
// connection): an async call must still complete, with "unavailable" at its deadline, and the client must leave
// the silent connection so it works again once the kv is back.
TEST(KvServer, AsyncCallsToAFrozenKvFailAtTheirDeadlineAndTheClientRecovers) {
  TempDir dir("kv-frozen");
  KvProcess kv(dir.path());
  rpc::ClientOptions co;
  co.endpoints = {kv.address()};
  co.token = kv.token();
  co.call_timeout = 600ms;
  rpc::Client client(co);
  ASSERT_TRUE(client.call("status").is_object());

  kv.process().freeze();
  std::mutex mu;
  std::vector<std::string> codes;
  auto sent = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    client.call_async("status", Json::object(), [&](std::exception_ptr e, Json) {
      std::string code = "ok";
      try {
        if (e) std::rethrow_exception(e);
      } catch (const rpc::KvError& err) {
        code = err.code();
      }
      std::lock_guard lock(mu);
      codes.push_back(code);
    });
  }
  bool done = testing::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return codes.size() == 3;
      },
      10s);
  auto waited = std::chrono::steady_clock::now() - sent;
  kv.process().signal(SIGCONT);
  ASSERT_TRUE(done) << "async calls to a frozen kv never completed";
  EXPECT_EQ(codes, std::vector<std::string>(3, rpc::code::kUnavailable));
  EXPECT_GE(waited, 600ms) << "failed before the deadline";

  // Back: the next call reaches the kv over a fresh connection.
  EXPECT_TRUE(client.call("status", Json::object(), rpc::CallOptions{5s, true}).is_object());
}

}  // namespace
}  // namespace gasoline
