// `gasoline-bench fleet`: K real gasoline-worker sidecars, each with a gasoline-example-app, against one
// gasoline-kv with its default timings (ping 500 ms, lost after 2 s, backup grace 1 s). Every step goes through
// the HTTP app API. One JSON line per scenario, then a summary line:
//   throughput  M noop workflows due at once: steps_per_s, queueing lag
//   wake_lag    noop workflows dispatched at a steady rate: dispatch → the app running the step
//   timers      sleep workflows: the timer's due time → the app running the next step
//   takeover    kill -9 of a sidecar holding tasks: until every workflow it held has progressed again
//   takeover_backlog  the same with a backlog due before the reclaim: the held work must not wait behind it
//   scale       sleep loops; one sidecar joins, then one leaves: the share of workflows whose worker changed
//               (per strategy, side by side; `idle` is the churn without any membership change)
// Duplicates: every workflow's committed steps are compared with the steps it ran (its own count).
#include "tests/bench/fleet_bench.h"

#include "common/clock.h"
#include "kv/rpc/client.h"
#include "tests/support/kv_process.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "worker/sdk/client.h"

#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace gasoline::bench {
namespace {

using namespace std::chrono_literals;
using rpc::Json;
namespace fs = std::filesystem;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

Json num_or_null(double v) { return v < 0 ? Json() : Json(std::round(v * 1000) / 1000); }

double metric(const std::string& text, const std::string& series) { return gasoline::testing::metric(text, series, 0); }

void emit(Json line) { std::cout << line.dump() << std::endl; }

void progress(const std::string& text) { std::cerr << "fleet: " << text << std::endl; }

// A kv and its sidecars with their apps, in one temp dir; everything is killed by pid when it goes away.
class Fleet {
 public:
  struct Member {
    std::string name;
    std::string id;
    int port = 0;
    std::unique_ptr<testing::Process> sidecar;
    std::unique_ptr<testing::Process> app;
    std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  };

  // A kv of its own, in a temp dir.
  Fleet(const FleetOptions& o, const std::string& strategy) : o_(o) {
    temp_ = std::make_unique<testing::TempDir>("gasoline-fleet-bench");
    dir_ = temp_->path();
    testing::KvOptions k;
    k.strategy = strategy;
    k.ping_interval_ms = o.ping_interval_ms;
    k.lost_after_ms = o.lost_after_ms;
    k.backup_grace_ms = o.backup_grace_ms;
    k.fsync = o.fsync;
    kv_ = std::make_unique<testing::KvProcess>(dir_ + "/kv", k);
    kv_addresses_ = kv_->address();
    token_file_ = dir_ + "/kv/token";
    client_ = kv_->client("fleet-bench");
  }

  // A kv that is already running (the demo): sidecars log into `run_dir`, and every pid goes to run_dir/pids.
  Fleet(const FleetOptions& o, const std::string& kv_addresses, const std::string& token_file,
        const std::string& run_dir)
      : o_(o), dir_(run_dir), kv_addresses_(kv_addresses), token_file_(token_file), pool_(o.pool) {
    fs::create_directories(dir_);
    rpc::ClientOptions c;
    std::stringstream list(kv_addresses);
    std::string ep;
    while (std::getline(list, ep, ',')) c.endpoints.push_back(ep);
    std::ifstream in(token_file);
    std::getline(in, c.token);
    c.name = "fleet-demo";
    client_ = std::make_unique<rpc::Client>(c);
    pids_file_ = dir_ + "/pids";
  }

  ~Fleet() {
    for (auto& m : members_) {
      if (m->app) m->app->kill9();
      if (m->sidecar) m->sidecar->kill9();
    }
  }

  rpc::Client& kv() { return *client_; }
  const std::string& pool() const { return pool_; }
  std::vector<std::unique_ptr<Member>>& members() { return members_; }

  Member& add(bool with_app) {
    auto m = std::make_unique<Member>();
    m->name = "w" + std::to_string(next_++);
    std::string port_file = dir_ + "/" + m->name + ".port";
    fs::remove(port_file);
    std::vector<std::string> argv{testing::binary_path("gasoline-worker"),
                                  "--kv", kv_addresses_,
                                  "--token-file", token_file_,
                                  "--pool", pool_,
                                  "--api-port", "0",
                                  "--port-file", port_file,
                                  "--ping-interval", std::to_string(o_.ping_interval_ms) + "ms",
                                  "--concurrency", std::to_string(o_.concurrency),
                                  "--log-level", "warn"};
    if (!o_.real_cgroup) {
      argv.push_back("--cgroup-root");
      argv.push_back(dir_ + "/no-cgroup");
    }
    m->sidecar = std::make_unique<testing::Process>(argv, dir_ + "/" + m->name + ".log");
    record_pid(m->sidecar->pid());
    if (!testing::wait_until([&] { return fs::exists(port_file) || !m->sidecar->running(); }, 30s) ||
        !fs::exists(port_file))
      throw std::runtime_error("sidecar " + m->name + " did not start; see " + dir_ + "/" + m->name + ".log");
    std::ifstream(port_file) >> m->port;
    sdk::Client c(m->address());
    if (!testing::wait_until([&] { return c.ready(); }, 30s))
      throw std::runtime_error("sidecar " + m->name + " did not become ready");
    m->id = c.request("GET", "/healthz").body.value("worker", "");
    if (with_app) start_app(*m);
    members_.push_back(std::move(m));
    return *members_.back();
  }

  void start_app(Member& m) {
    std::vector<std::string> argv{testing::binary_path("gasoline-example-app"), "--api", m.address(), "--threads",
                                  std::to_string(o_.app_threads), "--batch", std::to_string(o_.batch), "--wait-ms",
                                  "5000"};
    if (o_.demo) {
      argv.push_back("--step-delay-ms");
      argv.push_back(std::to_string(o_.step_delay_ms));
    }
    m.app = std::make_unique<testing::Process>(argv, dir_ + "/" + m.name + "-app.log");
    record_pid(m.app->pid());
  }

  void record_pid(pid_t pid) {
    if (pids_file_.empty()) return;
    std::ofstream(pids_file_, std::ios::app) << pid << "\n";
  }

  // Committed steps reported by the live sidecars.
  double committed() {
    double sum = 0;
    for (auto& m : members_) {
      if (!m->sidecar->running()) continue;
      try {
        sdk::Client c(m->address(), 5s);
        sum += metric(c.request("GET", "/metrics").raw, "gasoline_worker_results_total{outcome=\"ok\"}");
      } catch (const sdk::TransportError& e) {
        progress("metrics of " + m->name + " unavailable: " + e.what());
      }
    }
    return sum;
  }

  // Dispatches pipelined, a window at a time; returns the ids in order. Ids are chosen here, so resending after
  // "not leader" or a lost connection is idempotent.
  std::vector<std::string> dispatch_many(std::vector<Json> args) {
    std::vector<std::string> ids(args.size());
    for (auto& a : args) {
      if (!a.contains("id")) a["id"] = run_id_ + "-" + std::to_string(next_workflow_++);
    }
    const size_t window = 256;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    for (size_t start = 0; start < args.size(); start += window) {
      std::vector<size_t> todo;
      for (size_t i = start; i < std::min(args.size(), start + window); ++i) todo.push_back(i);
      while (!todo.empty()) {
        std::mutex mu;
        std::condition_variable cv;
        size_t left = todo.size();
        std::vector<size_t> again;
        std::string error;
        for (size_t i : todo) {
          client_->call_async("dispatch", args[i], [&, i](std::exception_ptr e, Json r) {
            std::lock_guard lock(mu);
            if (e) {
              try {
                std::rethrow_exception(e);
              } catch (const rpc::KvError& ex) {
                if (ex.code() == rpc::code::kNotLeader || ex.code() == rpc::code::kUnavailable) {
                  again.push_back(i);
                } else {
                  error = ex.what();
                }
              } catch (const std::exception& ex) {
                error = ex.what();
              }
            } else {
              ids[i] = r.value("id", "");
            }
            if (--left == 0) cv.notify_one();
          });
        }
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return left == 0; });
        if (!error.empty()) throw std::runtime_error("dispatch failed: " + error);
        if (!again.empty() && std::chrono::steady_clock::now() > deadline)
          throw std::runtime_error("dispatch failed: the kv stayed unavailable or leaderless for 30 s");
        if (!again.empty()) std::this_thread::sleep_for(100ms);  // backoff before resending to the new leader
        todo = std::move(again);
      }
    }
    return ids;
  }

  Json dispatch_args(const std::string& name, Json input) const {
    return Json{{"pool", pool_}, {"name", name}, {"input", std::move(input)}};
  }

  // Every workflow record of the pool with this status (paged).
  std::vector<Json> list(const std::string& status) {
    std::vector<Json> out;
    std::string after;
    while (true) {
      Json args{{"pool", pool_}, {"status", status}, {"limit", 5000}};
      if (!after.empty()) args["after"] = after;
      auto page = client_->call("list", args, rpc::CallOptions{30s, true})["workflows"];
      for (auto& w : page) out.push_back(std::move(w));
      if (page.size() < 5000) break;
      after = out.back().value("id", "");
    }
    return out;
  }

  Json get(const std::string& id) {
    return client_->call("get", Json{{"workflow_id", id}}, rpc::CallOptions{10s, true});
  }

  std::set<std::string> active_members() {
    std::set<std::string> ids;
    auto r = client_->call("workers", Json{{"pool", pool_}}, rpc::CallOptions{10s, true});
    for (const auto& p : r["pools"])
      for (const auto& w : p["workers"])
        if (w.value("active", false)) ids.insert(w.value("id", ""));
    return ids;
  }

 private:
  FleetOptions o_;
  std::unique_ptr<testing::TempDir> temp_;
  std::string dir_;
  std::unique_ptr<testing::KvProcess> kv_;
  std::string kv_addresses_;
  std::string token_file_;
  std::string pids_file_;
  std::unique_ptr<rpc::Client> client_;
  std::vector<std::unique_ptr<Member>> members_;
  std::string pool_ = "bench";
  int next_ = 0;
  std::string run_id_ = "b" + std::to_string(wall_ms() % 100000000) + std::to_string(::getpid());
  uint64_t next_workflow_ = 0;
};

struct Totals {
  double steps_per_s = -1;
  double wake_lag_p99_ms = -1;
  double timer_lag_p99_ms = -1;
  double takeover_s = -1;
  double takeover_backlog_s = -1;
  double moved_share_on_scale = -1;
  uint64_t duplicates = 0;
};

// Completed noop records by id (for lags and the step count).
std::map<std::string, Json> completed_by_id(Fleet& f, const std::set<std::string>& ids) {
  std::map<std::string, Json> out;
  for (auto& w : f.list("complete"))
    if (ids.count(w.value("id", ""))) out.emplace(w.value("id", ""), std::move(w));
  return out;
}

bool wait_committed(Fleet& f, double target, const FleetOptions& o) {
  return testing::wait_until([&] { return f.committed() >= target; }, std::chrono::seconds(o.phase_timeout_s));
}

void throughput(Fleet& f, const FleetOptions& o, Totals& t) {
  std::vector<Json> args;
  for (size_t i = 0; i < o.workflows; ++i) args.push_back(f.dispatch_args("noop", {{"i", i}}));
  double base = f.committed();
  int64_t t0 = mono_ms();
  auto ids = f.dispatch_many(args);
  int64_t dispatched = mono_ms();
  bool done = wait_committed(f, base + static_cast<double>(o.workflows), o);
  int64_t t1 = mono_ms();
  std::set<std::string> set(ids.begin(), ids.end());
  auto records = completed_by_id(f, set);
  std::vector<double> lags;
  uint64_t dup = 0;
  for (const auto& [id, w] : records) {
    lags.push_back(w["output"].value("lag_ms", 0.0));
    dup += w.value("steps", 1) > 1 ? w.value("steps", 1) - 1 : 0;
  }
  t.steps_per_s = static_cast<double>(records.size()) / (static_cast<double>(t1 - t0) / 1000.0);
  t.duplicates += dup;
  emit(Json{{"scenario", "throughput"},
            {"workers", o.workers},
            {"workflows", o.workflows},
            {"completed", records.size()},
            {"finished", done},
            {"dispatch_s", (dispatched - t0) / 1000.0},
            {"elapsed_s", (t1 - t0) / 1000.0},
            {"steps_per_s", num_or_null(t.steps_per_s)},
            {"queue_lag_p50_ms", num_or_null(percentile(lags, 0.5))},
            {"wake_lag_p99_ms", num_or_null(percentile(lags, 0.99))},
            {"takeover_s", nullptr},
            {"moved_share_on_scale", nullptr},
            {"duplicates", dup}});
}

void wake_lag(Fleet& f, const FleetOptions& o, Totals& t) {
  double base = f.committed();
  std::vector<std::string> ids;
  int64_t start = mono_ms();
  for (size_t i = 0; i < o.paced; ++i) {
    int64_t due = start + static_cast<int64_t>(static_cast<double>(i) * 1000.0 / o.paced_rate);
    while (mono_ms() < due) std::this_thread::sleep_for(1ms);  // pacing of the load generator
    ids.push_back(f.dispatch_many({f.dispatch_args("noop", {{"paced", i}})}).front());
  }
  bool done = wait_committed(f, base + static_cast<double>(o.paced), o);
  auto records = completed_by_id(f, std::set<std::string>(ids.begin(), ids.end()));
  std::vector<double> lags;
  uint64_t dup = 0;
  for (const auto& [id, w] : records) {
    lags.push_back(w["output"].value("lag_ms", 0.0));
    dup += w.value("steps", 1) > 1 ? w.value("steps", 1) - 1 : 0;
  }
  t.wake_lag_p99_ms = percentile(lags, 0.99);
  t.duplicates += dup;
  emit(Json{{"scenario", "wake_lag"},
            {"workers", o.workers},
            {"workflows", o.paced},
            {"rate_per_s", o.paced_rate},
            {"completed", records.size()},
            {"finished", done},
            {"steps_per_s", nullptr},
            {"wake_lag_p50_ms", num_or_null(percentile(lags, 0.5))},
            {"wake_lag_p99_ms", num_or_null(t.wake_lag_p99_ms)},
            {"wake_lag_max_ms", num_or_null(percentile(lags, 1.0))},
            {"takeover_s", nullptr},
            {"moved_share_on_scale", nullptr},
            {"duplicates", dup}});
}

void timers(Fleet& f, const FleetOptions& o, Totals& t) {
  std::vector<Json> args;
  for (size_t i = 0; i < o.timers; ++i)
    args.push_back(
        f.dispatch_args("sleep", {{"ms", 200 + static_cast<int64_t>(i * 2000 / std::max<size_t>(o.timers, 1))}}));
  double base = f.committed();
  auto ids = f.dispatch_many(args);
  bool done = wait_committed(f, base + 2.0 * static_cast<double>(o.timers), o);
  auto records = completed_by_id(f, std::set<std::string>(ids.begin(), ids.end()));
  std::vector<double> lags;
  uint64_t early = 0, dup = 0;
  for (const auto& [id, w] : records) {
    double lag = w["output"].value("lag_ms", 0.0);
    if (lag < 0) ++early;
    lags.push_back(lag);
    dup += w.value("steps", 2) > 2 ? w.value("steps", 2) - 2 : 0;
  }
  t.timer_lag_p99_ms = percentile(lags, 0.99);
  t.duplicates += dup;
  emit(Json{{"scenario", "timers"},
            {"workers", o.workers},
            {"workflows", o.timers},
            {"completed", records.size()},
            {"finished", done},
            {"fired_early", early},
            {"steps_per_s", nullptr},
            {"wake_lag_p50_ms", num_or_null(percentile(lags, 0.5))},
            {"wake_lag_p99_ms", num_or_null(t.timer_lag_p99_ms)},
            {"takeover_s", nullptr},
            {"moved_share_on_scale", nullptr},
            {"duplicates", dup}});
}

// With `backlog` > 0, that many noop workflows become due after the held tasks but before the reclaim (lost_after
// after the kill): the held work must not wait behind them (released work keeps its original due time), so
// takeover_s stays near lost_after while the backlog takes longer to drain.
void takeover(Fleet& f, const FleetOptions& o, Totals& t, size_t backlog = 0) {
  // The victim's app is this benchmark: it holds the tasks it polls, as an app in the middle of a step would.
  auto& victim = f.add(false);
  testing::wait_until([&] { return f.active_members().count(victim.id) > 0; }, 30s);
  sdk::Client api(victim.address());
  std::vector<Json> held;
  std::atomic<bool> feeding{true};
  std::thread feeder([&] {
    size_t n = 0;
    while (feeding) {
      f.dispatch_many({f.dispatch_args("noop", {{"feed", n++}})});
      std::this_thread::sleep_for(5ms);  // a steady trickle, so the victim is primary for some of it
    }
  });
  testing::wait_until(
      [&] {
        for (auto& task : api.poll(o.hold - held.size(), 200ms)) held.push_back(std::move(task));
        return held.size() >= o.hold;
      },
      60s);
  feeding = false;
  feeder.join();
  std::map<std::string, uint64_t> steps_at_kill;
  for (const auto& task : held) steps_at_kill[task.value("workflow_id", "")] = task.value("steps", uint64_t{0});
  double survivors_before = 0;
  if (backlog > 0) {
    // What the others had committed, so the backlog's end is counted on them alone (the victim runs nothing more).
    survivors_before = f.committed() - metric(api.request("GET", "/metrics").raw,
                                              "gasoline_worker_results_total{outcome=\"ok\"}");
    int64_t due = wall_ms() + o.lost_after_ms / 2;
    std::vector<Json> args;
    for (size_t i = 0; i < backlog; ++i) {
      auto a = f.dispatch_args("noop", {{"backlog", i}});
      a["run_at"] = due;
      args.push_back(std::move(a));
    }
    f.dispatch_many(args);
  }
  int64_t killed = mono_ms();
  victim.sidecar->kill9();
  std::map<std::string, double> progressed;
  testing::wait_until(
      [&] {
        for (const auto& [id, steps] : steps_at_kill) {
          if (progressed.count(id)) continue;
          if (f.get(id).value("steps", uint64_t{0}) > steps)
            progressed[id] = static_cast<double>(mono_ms() - killed) / 1000.0;
        }
        return progressed.size() == steps_at_kill.size();
      },
      std::chrono::seconds(o.phase_timeout_s));
  double worst = -1;
  std::vector<double> times;
  for (const auto& [id, s] : progressed) {
    worst = std::max(worst, s);
    times.push_back(s);
  }
  double backlog_done_s = -1;
  if (backlog > 0 &&
      wait_committed(f, survivors_before + static_cast<double>(backlog + steps_at_kill.size()), o))
    backlog_done_s = static_cast<double>(mono_ms() - killed) / 1000.0;
  // The victim's late results are refused by the fence (409), whichever sidecar they reach.
  sdk::Client other(f.members().front()->address());
  size_t refused = 0;
  for (const auto& task : held)
    refused += other.post_result(task, sdk::step::complete({{"late", true}})) == sdk::Posted::kLeaseLost;
  uint64_t dup = 0;
  for (const auto& [id, s] : steps_at_kill) {
    auto w = f.get(id);
    if (w.value("status", "") == "complete" && w.value("steps", 1) > 1) dup += w.value("steps", 1) - 1;
  }
  double takeover_s = progressed.size() == steps_at_kill.size() ? worst : -1;
  t.duplicates += dup;
  if (backlog > 0) {
    t.takeover_backlog_s = takeover_s;
    emit(Json{{"scenario", "takeover_backlog"},
              {"workers", o.workers},
              {"held", held.size()},
              {"progressed", progressed.size()},
              {"backlog", backlog},
              {"lost_after_ms", o.lost_after_ms},
              {"takeover_first_s", num_or_null(percentile(times, 0.0))},
              {"takeover_s", num_or_null(takeover_s)},
              {"backlog_done_s", num_or_null(backlog_done_s)},
              {"late_results_refused", refused},
              {"duplicates", dup}});
    return;
  }
  t.takeover_s = takeover_s;
  emit(Json{{"scenario", "takeover"},
            {"workers", o.workers},
            {"held", held.size()},
            {"progressed", progressed.size()},
            {"lost_after_ms", o.lost_after_ms},
            {"steps_per_s", nullptr},
            {"wake_lag_p99_ms", nullptr},
            {"takeover_first_s", num_or_null(percentile(times, 0.0))},
            {"takeover_s", num_or_null(t.takeover_s)},
            {"late_results_refused", refused},
            {"moved_share_on_scale", nullptr},
            {"duplicates", dup}});
}

// The worker that ran each loop's latest step at or after `since` (wall ms), by workflow id.
std::map<std::string, std::string> latest_worker(Fleet& f, const std::vector<std::string>& ids, int64_t since,
                                                 size_t& missing) {
  std::map<std::string, std::string> out;
  missing = 0;
  for (const auto& id : ids) {
    auto w = f.get(id);
    const auto& by = w["state"].is_object() ? w["state"]["by"] : Json();
    if (!by.is_array() || by.empty() || by.back()[1].get<int64_t>() < since) {
      ++missing;
      continue;
    }
    out[id] = by.back()[0].get<std::string>();
  }
  return out;
}

// Waits until every loop ran a step after `since`, then returns who ran the latest one.
std::map<std::string, std::string> snapshot(Fleet& f, const std::vector<std::string>& ids, int64_t since,
                                            const FleetOptions& o) {
  std::map<std::string, std::string> snap;
  size_t missing = 0;
  testing::wait_until(
      [&] {
        snap = latest_worker(f, ids, since, missing);
        return missing == 0;
      },
      std::chrono::seconds(o.phase_timeout_s));
  return snap;
}

double moved(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  size_t both = 0, changed = 0;
  for (const auto& [id, w] : a) {
    auto it = b.find(id);
    if (it == b.end()) continue;
    ++both;
    changed += it->second != w;
  }
  return both ? static_cast<double>(changed) / static_cast<double>(both) : -1;
}

double scale(const FleetOptions& o, const std::string& strategy, Totals& t) {
  progress("scale (" + strategy + "): starting " + std::to_string(o.workers) + " sidecars");
  Fleet f(o, strategy);
  for (int i = 0; i < o.workers; ++i) f.add(true);
  std::vector<Json> args;
  for (size_t i = 0; i < o.loops; ++i) args.push_back(f.dispatch_args("sleep", {{"ms", 300}, {"times", 1000000}}));
  auto ids = f.dispatch_many(args);
  // Settle, then two snapshots without any membership change: the churn of the strategy itself.
  auto a = snapshot(f, ids, wall_ms() + 1000, o);
  auto b = snapshot(f, ids, wall_ms() + 500, o);
  double idle = moved(a, b);
  auto& joined = f.add(true);
  testing::wait_until([&] { return f.active_members().count(joined.id) > 0; }, 30s);
  // After the grace, so a step the old primary was already late for does not count as moved.
  auto c = snapshot(f, ids, wall_ms() + o.backup_grace_ms + 500, o);
  double on_join = moved(b, c);
  auto& leaving = *f.members().front();
  leaving.sidecar->signal(SIGTERM);
  leaving.sidecar->wait(60s);
  auto d = snapshot(f, ids, wall_ms() + o.backup_grace_ms + 500, o);
  double on_leave = moved(c, d);
  size_t to_new = 0;
  for (const auto& [id, w] : c) to_new += w == joined.id;
  emit(Json{{"scenario", "scale"},
            {"strategy", strategy},
            {"workers", o.workers},
            {"loops", o.loops},
            {"steps_per_s", nullptr},
            {"wake_lag_p99_ms", nullptr},
            {"takeover_s", nullptr},
            {"moved_share_idle", num_or_null(idle)},
            {"moved_share_on_scale", num_or_null(on_join)},
            {"moved_share_on_scale_in", num_or_null(on_leave)},
            {"share_of_new_worker",
             num_or_null(static_cast<double>(to_new) / static_cast<double>(std::max<size_t>(c.size(), 1)))},
            {"ideal_on_scale", 1.0 / (o.workers + 1)},
            {"duplicates", 0}});
  if (strategy == "rendezvous" || t.moved_share_on_scale < 0) t.moved_share_on_scale = on_join;
  return on_join;
}


// --- the live demo (hack/run.sh) ----------------------------------------------------------------------------

std::atomic<bool> g_interrupted{false};

struct DemoState {
  std::map<std::string, std::string> kind;  // id → noop / sleep / order
  std::set<std::string> unpaid;
  std::set<std::string> terminal;
  std::map<std::string, double> steps_by_worker;  // last known committed steps per sidecar (kept after a kill)
  std::map<std::string, double> shed_by_worker;
  std::vector<double> lags;
};

std::string fixed(double v, int precision = 1) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << v;
  return out.str();
}

void scrape(Fleet& f, DemoState& st) {
  for (auto& m : f.members()) {
    if (!m->sidecar->running()) continue;
    try {
      sdk::Client c(m->address(), 2s);
      auto text = c.request("GET", "/metrics").raw;
      st.steps_by_worker[m->name + " " + m->id] = metric(text, "gasoline_worker_results_total{outcome=\"ok\"}");
      st.shed_by_worker[m->name] = metric(text, "gasoline_worker_shed_total");
    } catch (const sdk::TransportError& e) {
      // A sidecar killed a moment ago: keep its last numbers.
      progress("metrics of " + m->name + " unavailable: " + e.what());
    }
  }
}

std::string shares(const DemoState& st) {
  double total = 0;
  for (const auto& [w, n] : st.steps_by_worker) total += n;
  std::string out;
  for (const auto& [w, n] : st.steps_by_worker)
    out += " " + w.substr(0, w.find(' ')) + "=" + fixed(total > 0 ? 100.0 * n / total : 0, 0) + "%";
  return out;
}

int run_demo(const FleetOptions& o) {
  std::signal(SIGINT, [](int) { g_interrupted = true; });
  std::signal(SIGTERM, [](int) { g_interrupted = true; });
  Fleet f(o, o.kv, o.token_file, o.run_dir);
  for (int i = 0; i < o.workers; ++i) {
    auto& m = f.add(true);
    std::cout << "started " << m.name << ": sidecar " << m.id << " on " << m.address() << " (pid " << m.sidecar->pid()
              << "), example app pid " << m.app->pid() << std::endl;
  }
  DemoState st;
  const size_t total = o.workflows;
  int64_t start = mono_ms();
  int64_t dispatch_until = start + o.duration_s * 1000 / 2;
  int64_t kill_at = start + o.duration_s * 1000 / 3;
  int64_t next_report = start + 1000;
  size_t sent = 0;
  std::mt19937 rng(42);
  // Kill -9 midway: what the victim held, and when each of those workflows moved on.
  int64_t killed_at = 0;
  std::string victim;
  std::map<std::string, uint64_t> held;
  std::set<std::string> progressed;
  double takeover_s = -1;
  sdk::Client* api = nullptr;
  std::unique_ptr<sdk::Client> api_holder;

  while (!g_interrupted) {
    int64_t now = mono_ms();
    size_t due = now >= dispatch_until
                     ? total
                     : static_cast<size_t>(static_cast<double>(total) * static_cast<double>(now - start) /
                                           static_cast<double>(dispatch_until - start));
    std::vector<Json> batch;
    std::vector<std::string> kinds;
    for (; sent + batch.size() < std::min(due, total);) {
      size_t i = sent + batch.size();
      if (i % 5 < 2) {
        batch.push_back(f.dispatch_args("noop", {{"i", i}}));
        kinds.push_back("noop");
      } else if (i % 5 < 4) {
        batch.push_back(f.dispatch_args("sleep", {{"ms", 200 + static_cast<int>(rng() % 800)}}));
        kinds.push_back("sleep");
      } else {
        batch.push_back(f.dispatch_args("order", {{"sku", i}, {"payment_timeout_ms", 120000}}));
        kinds.push_back("order");
      }
    }
    if (!batch.empty()) {
      auto ids = f.dispatch_many(batch);
      for (size_t k = 0; k < ids.size(); ++k) {
        st.kind[ids[k]] = kinds[k];
        if (kinds[k] == "order") st.unpaid.insert(ids[k]);
      }
      sent += ids.size();
    }

    if (!killed_at && now >= kill_at) {
      auto& m = *f.members().front();
      victim = m.id;
      held.clear();
      for (const auto& w : f.list("running"))
        if (w.value("lease_worker", "") == victim) held[w.value("id", "")] = w.value("steps", uint64_t{0});
      // Kill it while it is in the middle of some steps (trying for a few seconds), so there is work to take over.
      if (!held.empty() || now >= kill_at + 3000) {
        m.app->kill9();
        m.sidecar->kill9();
        killed_at = mono_ms();
        std::cout << ">>> kill -9 " << m.name << " (" << victim << ") while it holds " << held.size()
                  << " running workflow(s); starting a replacement" << std::endl;
        auto& fresh = f.add(true);
        std::cout << ">>> started " << fresh.name << ": sidecar " << fresh.id << " on " << fresh.address() << std::endl;
        if (held.empty()) takeover_s = 0;
      }
    }
    if (killed_at && takeover_s < 0) {
      for (const auto& [id, steps] : held) {
        if (progressed.count(id)) continue;
        if (f.get(id).value("steps", uint64_t{0}) > steps) progressed.insert(id);
      }
      if (progressed.size() == held.size()) {
        takeover_s = static_cast<double>(mono_ms() - killed_at) / 1000.0;
        std::cout << ">>> every workflow " << victim << " held has moved on: takeover " << fixed(takeover_s, 2) << " s"
                  << std::endl;
      }
    }

    if (now >= next_report) {
      next_report += 1000;
      // Pay the orders that wait for it, through a live sidecar's app API.
      for (auto& m : f.members()) {
        if (m->sidecar->running()) {
          api_holder = std::make_unique<sdk::Client>(m->address(), 5s);
          api = api_holder.get();
          break;
        }
      }
      size_t complete = 0, failed = 0;
      for (const auto& w : f.list("waiting")) {
        auto id = w.value("id", "");
        bool awaiting = w["state"].is_object() && w["state"].value("stage", "") == "awaiting_payment";
        if (st.unpaid.count(id) && awaiting && api) {
          try {
            api->signal(id, "payment", {{"amount", 42}}, "pay-" + id);
            st.unpaid.erase(id);
          } catch (const std::exception& e) {
            progress("paying " + id + " failed (next second retries): " + e.what());
          }
        }
      }
      st.lags.clear();
      for (const auto& w : f.list("complete")) {
        if (!st.kind.count(w.value("id", ""))) continue;
        ++complete;
        if (st.kind[w.value("id", "")] == "noop") st.lags.push_back(w["output"].value("lag_ms", 0.0));
      }
      for (const auto& w : f.list("failed")) failed += st.kind.count(w.value("id", ""));
      scrape(f, st);
      double shed = 0;
      for (const auto& [w, n] : st.shed_by_worker) shed += n;
      std::cout << "[" << std::setw(3) << (now - start) / 1000 << "s] completed " << complete << "/" << sent
                << (failed ? " (failed " + std::to_string(failed) + ")" : "") << "  shed " << shed
                << "  wake lag p50/p99 " << fixed(std::max(0.0, percentile(st.lags, 0.5)), 0) << "/"
                << fixed(std::max(0.0, percentile(st.lags, 0.99)), 0) << " ms  shares:" << shares(st) << std::endl;
      if (sent >= total && complete + failed >= total && (!killed_at || takeover_s >= 0)) break;
      if (now - start > o.duration_s * 3000) {
        std::cout << "giving up: the run took three times its duration" << std::endl;
        break;
      }
    }
    std::this_thread::sleep_for(20ms);  // pacing of the dispatch loop
  }
  if (g_interrupted) {
    std::cout << "interrupted: stopping the fleet" << std::endl;
    return 130;
  }

  // Summary: exactly-once per step, from each workflow's committed steps against the steps it ran.
  uint64_t duplicates = 0, completed = 0;
  for (const auto& w : f.list("complete")) {
    auto id = w.value("id", "");
    auto steps = w.value("steps", uint64_t{0});
    uint64_t expected = 0;
    if (st.kind.count(id)) {
      ++completed;
      const auto& k = st.kind[id];
      expected = k == "noop" ? 1 : k == "sleep" ? 2 : w["output"].value("steps", uint64_t{0});
    } else if (w.value("name", "") == "ship") {
      expected = 1;
    } else {
      continue;  // an earlier run's workflow
    }
    if (steps > expected) duplicates += steps - expected;
  }
  std::cout << "\nstopping the fleet (SIGTERM: drain, finish, leave)" << std::endl;
  for (auto& m : f.members())
    if (m->sidecar->running()) m->sidecar->signal(SIGTERM);
  for (auto& m : f.members()) {
    if (m->sidecar->running() && m->sidecar->wait(30s) != 0) std::cout << "  " << m->name << " did not exit cleanly\n";
    if (m->app && m->app->running()) m->app->signal(SIGTERM);
  }
  for (auto& m : f.members())
    if (m->app) m->app->wait(10s);
  double total_steps = 0;
  for (const auto& [w, n] : st.steps_by_worker) total_steps += n;
  std::cout << "\nsummary\n  workflows completed: " << completed << "/" << sent << "\n  duplicate commits:   "
            << duplicates << "\n  takeover time:       "
            << (takeover_s < 0 ? std::string("n/a") : fixed(takeover_s, 2) + " s (kill -9 of " + victim + ", " +
                                                          std::to_string(held.size()) + " held)")
            << "\n  wake lag p50/p99:    " << fixed(std::max(0.0, percentile(st.lags, 0.5)), 0) << "/"
            << fixed(std::max(0.0, percentile(st.lags, 0.99)), 0) << " ms (noop: wake-up to the app running it)"
            << "\n  steps per worker:\n";
  for (const auto& [w, n] : st.steps_by_worker)
    std::cout << "    " << w << "  " << static_cast<uint64_t>(n) << " steps ("
              << fixed(total_steps > 0 ? 100.0 * n / total_steps : 0) << "%)\n";
  std::cout << "  logs: " << o.run_dir << std::endl;
  return duplicates == 0 && completed == sent ? 0 : 1;
}

}  // namespace

CLI::App* add_fleet_command(CLI::App& app, FleetOptions& fleet) {
  auto* cmd = app.add_subcommand("fleet", "K real sidecars, each with the example app, on one kv (HTTP included)");
  cmd->add_option("--workers", fleet.workers, "Sidecars (K)")->capture_default_str();
  cmd->add_option("--workflows", fleet.workflows, "Noop workflows of the throughput phase")->capture_default_str();
  cmd->add_option("--paced", fleet.paced, "Workflows of the wake-lag phase")->capture_default_str();
  cmd->add_option("--paced-rate", fleet.paced_rate, "Dispatches per second in the wake-lag phase")
      ->capture_default_str();
  cmd->add_option("--timers", fleet.timers, "Sleep workflows of the timer phase")->capture_default_str();
  cmd->add_option("--hold", fleet.hold, "Tasks the killed sidecar holds")->capture_default_str();
  cmd->add_option("--backlog", fleet.backlog, "Takeover with a backlog: workflows due between the kill and the reclaim")
      ->capture_default_str();
  cmd->add_option("--loops", fleet.loops, "Sleep loops watched in the scale phase")->capture_default_str();
  cmd->add_option("--strategies", fleet.strategies, "Strategies compared in the scale phase")->capture_default_str();
  cmd->add_option("--app-threads", fleet.app_threads, "Polling threads per example app")->capture_default_str();
  cmd->add_option("--batch", fleet.batch, "Tasks per poll")->capture_default_str();
  cmd->add_option("--concurrency", fleet.concurrency, "Sidecar --concurrency")->capture_default_str();
  cmd->add_flag("--real-cgroup", fleet.real_cgroup, "Report this host's cgroup CPU (shedding may kick in)");
  cmd->add_flag("--no-fsync", [&fleet](int64_t) { fleet.fsync = false; }, "Run the kv without fsync");
  cmd->add_flag("--quick", fleet.quick, "Small sizes: finishes within about a minute");
  cmd->add_flag("--demo", fleet.demo, "Live fleet against a running kv, with progress (hack/run.sh)");
  cmd->add_option("--kv", fleet.kv, "--demo: kv client addresses, comma-separated");
  cmd->add_option("--token-file", fleet.token_file, "--demo: the kv's token file");
  cmd->add_option("--pool", fleet.pool, "--demo: pool")->capture_default_str();
  cmd->add_option("--duration", fleet.duration_s, "--demo: seconds; dispatch runs over the first half")
      ->capture_default_str();
  cmd->add_option("--run-dir", fleet.run_dir, "--demo: logs and the pids file");
  cmd->add_option("--step-delay-ms", fleet.step_delay_ms, "--demo: simulated work per task in the apps")
      ->capture_default_str();
  return cmd;
}

int run_fleet(FleetOptions o) {
  if (o.workers < 1) throw std::invalid_argument("--workers must be at least 1");
  if (o.demo) {
    if (o.kv.empty() || o.run_dir.empty()) throw std::invalid_argument("--demo needs --kv and --run-dir");
    return run_demo(o);
  }
  if (o.quick) {
    if (o.workflows == FleetOptions{}.workflows) o.workflows = 1000;  // an explicit --workflows stays
    o.paced = 300;
    o.timers = 60;
    o.loops = 60;
    if (o.backlog == FleetOptions{}.backlog) o.backlog = 5000;
    o.phase_timeout_s = 60;
  }
  Totals t;
  {
    progress("starting a kv and " + std::to_string(o.workers) + " sidecars with example apps");
    Fleet f(o, o.strategies.empty() ? "rendezvous" : o.strategies.front());
    for (int i = 0; i < o.workers; ++i) f.add(true);
    progress("throughput: " + std::to_string(o.workflows) + " noop workflows");
    throughput(f, o, t);
    progress("wake lag: " + std::to_string(o.paced) + " noop workflows at " + std::to_string(o.paced_rate) + "/s");
    wake_lag(f, o, t);
    progress("timers: " + std::to_string(o.timers) + " sleep workflows");
    timers(f, o, t);
    progress("takeover: kill -9 of a sidecar holding " + std::to_string(o.hold) + " tasks");
    takeover(f, o, t);
    progress("takeover with a backlog: kill -9 of a sidecar holding " + std::to_string(o.hold) + " tasks, " +
             std::to_string(o.backlog) + " workflows due before the reclaim");
    takeover(f, o, t, o.backlog);
  }
  for (const auto& s : o.strategies) scale(o, s, t);
  emit(Json{{"scenario", "fleet"},
            {"workers", o.workers},
            {"steps_per_s", num_or_null(t.steps_per_s)},
            {"wake_lag_p99_ms", num_or_null(t.wake_lag_p99_ms)},
            {"timer_lag_p99_ms", num_or_null(t.timer_lag_p99_ms)},
            {"takeover_s", num_or_null(t.takeover_s)},
            {"takeover_backlog_s", num_or_null(t.takeover_backlog_s)},
            {"moved_share_on_scale", num_or_null(t.moved_share_on_scale)},
            {"duplicates", t.duplicates}});
  return t.duplicates == 0 ? 0 : 1;
}

}  // namespace gasoline::bench
