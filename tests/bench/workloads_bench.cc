// `gasoline-bench workloads`: Gasoline's side of the peers comparison (hack/bench.sh peers, docs/benchmarks-peers.md).
// One kv (1 replica, RocksDB fsync) or three (libraft, fsync), two gasoline-worker sidecars each with a
// gasoline-example-app; one JSON line per case, with the same fields as hack/bench/peers/*.mjs print:
//   A  N noop workflows dispatched with one run_at (all due at one instant): jobs/s
//   B  N `sleep` workflows (step, durable 1 s sleep, step) with one run_at: wf/s and lateness
//      (start of step 2 − (end of step 1 + 1 s), from the times the app recorded in the state)
//   C  light load: `sleep` hops at 20/s, then noop at 50/s (pickup = step start − submit time)
//   D  takeover: noop jobs of 2 s (input work_ms), 10 at a time per sidecar; kill -9 of one sidecar and its app:
//      until every workflow it held has completed elsewhere (cap 60 s)
// CPU seconds per process group (store: the kv replicas, workers: the sidecars, apps: the example apps, loadgen:
// this process) over each case, and per committed step. Duplicates: steps committed beyond the workflow's count.
#include "tests/bench/workloads_bench.h"

#include "common/clock.h"
#include "kv/rpc/client.h"
#include "tests/bench/measure.h"
#include "tests/bench/pipelined_dispatch.h"
#include "tests/support/kv_cluster.h"
#include "tests/support/kv_process.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "worker/sdk/client.h"

#include <CLI/CLI.hpp>

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace gasoline::bench {
namespace {

using namespace std::chrono_literals;
using rpc::Json;
namespace fs = std::filesystem;

constexpr int64_t kTakeoverCapS = 60;

void progress(const std::string& text) { std::cerr << "workloads: " << text << std::endl; }

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

Json num(double v, int digits = 3) { return std::isfinite(v) ? Json(round_to(v, digits)) : Json(); }
Json pct(const std::vector<double>& v, double p) { return v.empty() ? Json() : Json(percentile(v, p)); }

// The kv's own defaults (ping 500 ms, lost after 2 s, or 1 s after a closed connection, backup grace 1 s) with
// fsync, for either kind of store.
template <typename Options>
Options kv_defaults(Options k, int64_t lost_after_disconnect_ms) {
  k.ping_interval_ms = 500;
  k.lost_after_ms = 2000;
  k.backup_grace_ms = 1000;
  k.fsync = true;
  if (lost_after_disconnect_ms >= 0)
    k.extra_args = {"--lost-after-disconnect-ms", std::to_string(lost_after_disconnect_ms)};
  return k;
}

// The kv: one replica (KvProcess) or a replicated cluster (KvCluster), with the kv's default timings.
class Store {
 public:
  Store(int replicas, const std::string& dir, int64_t lost_after_disconnect_ms) : dir_(dir) {
    if (replicas == 1) {
      single_ = std::make_unique<testing::KvProcess>(dir + "/kv",
                                                     kv_defaults(testing::KvOptions{}, lost_after_disconnect_ms));
      endpoints_ = single_->address();
      client_ = single_->client("workloads");
    } else {
      auto k = kv_defaults(testing::KvClusterOptions{}, lost_after_disconnect_ms);
      k.replicas = replicas;
      k.log_level = "warn";
      cluster_ = std::make_unique<testing::KvCluster>(dir + "/kv", k);
      int leader = cluster_->leader_index(30s);
      if (leader < 0) throw std::runtime_error("the kv replicas elected no leader in 30 s");
      for (const auto& e : cluster_->endpoints()) endpoints_ += (endpoints_.empty() ? "" : ",") + e;
      // The load generator talks to the leader: pipelined dispatches are not redirected (the sidecars get every
      // replica and follow the leader themselves).
      client_ = cluster_->client_of(static_cast<size_t>(leader), "workloads", 30s);
    }
  }
  const std::string& endpoints() const { return endpoints_; }
  std::string token_file() const { return dir_ + "/kv/token"; }
  rpc::Client& client() { return *client_; }
  std::vector<pid_t> pids() const {
    if (single_) return {single_->process().pid()};
    std::vector<pid_t> out;
    for (size_t i = 0; i < cluster_->size(); ++i) out.push_back(cluster_->pid(i));
    return out;
  }

 private:
  std::string dir_;
  std::unique_ptr<testing::KvProcess> single_;
  std::unique_ptr<testing::KvCluster> cluster_;
  std::string endpoints_;
  std::unique_ptr<rpc::Client> client_;
};

// Two sidecars, each with an example app, for one case; stopped (SIGTERM, then kill -9) when it ends.
class Workers {
 public:
  struct Member {
    std::string name, id, address;
    std::unique_ptr<testing::Process> sidecar, app;
  };

  Workers(Store& store, const std::string& dir, const std::string& pool, int n, int concurrency, int app_threads,
          size_t batch) {
    for (int i = 1; i <= n; ++i) {
      auto m = std::make_unique<Member>();
      m->name = pool + "-w" + std::to_string(i);
      std::string port_file = dir + "/" + m->name + ".port";
      m->sidecar = std::make_unique<testing::Process>(
          std::vector<std::string>{testing::binary_path("gasoline-worker"), "--kv", store.endpoints(), "--token-file",
                                   store.token_file(), "--pool", pool, "--api-port", "0", "--port-file", port_file,
                                   "--concurrency", std::to_string(concurrency), "--log-level", "warn",
                                   "--cgroup-root", dir + "/no-cgroup"},
          dir + "/" + m->name + ".log");
      if (!testing::wait_until([&] { return fs::exists(port_file) || !m->sidecar->running(); }, 30s) ||
          !fs::exists(port_file))
        throw std::runtime_error("sidecar " + m->name + " did not start; see " + dir + "/" + m->name + ".log");
      int port = 0;
      std::ifstream(port_file) >> port;
      m->address = "127.0.0.1:" + std::to_string(port);
      sdk::Client c(m->address);
      if (!testing::wait_until([&] { return c.ready(); }, 30s))
        throw std::runtime_error("sidecar " + m->name + " did not become ready");
      m->id = c.request("GET", "/healthz").body.value("worker", "");
      m->app = std::make_unique<testing::Process>(
          std::vector<std::string>{testing::binary_path("gasoline-example-app"), "--api", m->address, "--threads",
                                   std::to_string(app_threads), "--batch", std::to_string(batch), "--wait-ms", "5000"},
          dir + "/" + m->name + "-app.log");
      members_.push_back(std::move(m));
    }
  }
  ~Workers() {
    for (auto& m : members_)
      for (auto* p : {m->app.get(), m->sidecar.get()})
        if (p->running()) p->signal(SIGTERM);
    for (auto& m : members_)
      for (auto* p : {m->sidecar.get(), m->app.get()})
        if (p->running() && p->wait(10s) < 0) p->kill9();
  }
  std::vector<std::unique_ptr<Member>>& members() { return members_; }

  // Steps the live sidecars committed.
  double committed() {
    double sum = 0;
    const Json by = committed_by_worker();
    for (const auto& n : by) sum += n.get<double>();
    return sum;
  }
  // Steps each sidecar committed (how the work was shared), by name.
  Json committed_by_worker() {
    Json out = Json::object();
    for (auto& m : members_) {
      if (!m->sidecar->running()) continue;
      try {
        sdk::Client c(m->address, 5s);
        out[m->name] =
            testing::metric(c.request("GET", "/metrics").raw, "gasoline_worker_results_total{outcome=\"ok\"}", 0);
      } catch (const sdk::TransportError&) {
        // a sidecar that was just killed
      }
    }
    return out;
  }
  double cpu(bool apps) {
    double s = 0;
    for (auto& m : members_) s += cpu_seconds((apps ? m->app : m->sidecar)->pid());
    return s;
  }

 private:
  std::vector<std::unique_ptr<Member>> members_;
};

// CPU seconds of each group since the case began (killed processes: what they had used when killed).
class CpuMeter {
 public:
  CpuMeter(Store& s, Workers& w) : s_(s), w_(w) { start_ = now(); }
  std::map<std::string, double> now() {
    double store = 0;
    for (pid_t p : s_.pids()) store += cpu_seconds(p);
    return {{"store", store}, {"workers", w_.cpu(false)}, {"apps", w_.cpu(true)}, {"loadgen", cpu_seconds(0)}};
  }
  void add_killed(double workers, double apps) {
    killed_workers_ += workers;
    killed_apps_ += apps;
  }
  Json delta(uint64_t steps) {
    auto end = now();
    end["workers"] += killed_workers_;
    end["apps"] += killed_apps_;
    Json cpu = Json::object(), per = Json::object();
    double total = 0;
    for (const auto& [g, v] : end) {
      double d = v - start_[g];
      total += d;
      cpu[g] = round_to(d, 2);
      per[g] = steps ? Json(std::llround(d * 1e6 / static_cast<double>(steps))) : Json();
    }
    per["total"] = steps ? Json(std::llround(total * 1e6 / static_cast<double>(steps))) : Json();
    return Json{{"cpu_s", cpu}, {"cpu_us_per_step", per}};
  }

 private:
  Store& s_;
  Workers& w_;
  std::map<std::string, double> start_;
  double killed_workers_ = 0, killed_apps_ = 0;
};

// Every workflow record of the pool with this status, by id.
std::map<std::string, Json> records(rpc::Client& kv, const std::string& pool, const std::string& status) {
  std::map<std::string, Json> out;
  std::string after;
  while (true) {
    Json args{{"pool", pool}, {"status", status}, {"limit", 5000}};
    if (!after.empty()) args["after"] = after;
    auto page = kv.call("list", args, rpc::CallOptions{30s, true})["workflows"];
    for (auto& w : page) {
      after = w.value("id", "");
      out.emplace(after, std::move(w));
    }
    if (page.size() < 5000) break;
  }
  return out;
}

// Polls every 100 ms (as the peers' load generators do), so the polling itself costs little CPU.
bool poll_until(const std::function<bool()>& done, int64_t cap_s) {
  return testing::wait_until(
      [&] {
        if (done()) return true;
        std::this_thread::sleep_for(100ms);
        return false;
      },
      std::chrono::seconds(cap_s));
}

bool wait_committed(Workers& w, double target, int64_t cap_s) {
  return poll_until([&] { return w.committed() >= target; }, cap_s);
}

// Times of a `sleep` workflow's two steps, recorded by the example app in the state ("by": [[worker, ms], ...]).
bool hop_times(const Json& w, int64_t& t1, int64_t& t2) {
  const auto& by = w["output"].is_object() ? w["output"]["by"] : Json();
  if (!by.is_array() || by.size() < 2) return false;
  t1 = by[by.size() - 2][1].get<int64_t>();
  t2 = by.back()[1].get<int64_t>();
  return true;
}

uint64_t extra_steps(const std::map<std::string, Json>& recs, const std::set<std::string>& ids, uint64_t expected) {
  uint64_t dup = 0;
  for (const auto& id : ids) {
    auto it = recs.find(id);
    if (it == recs.end()) continue;
    auto steps = it->second.value("steps", expected);
    if (steps > expected) dup += steps - expected;
  }
  return dup;
}

struct Context {
  Store& store;
  std::string dir;
  std::string run_id;
  const WorkloadsOptions& o;
  std::string pool(char c) const { return "peers-" + std::string(1, c); }
  std::string id(char c, size_t i) const { return run_id + "-" + std::string(1, c) + "-" + std::to_string(i); }
};

// A and B: all due at once through one run_at, far enough ahead for every dispatch to be in before it.
Json due_at_once(Context& x, char c, size_t n) {
  bool hops = c == 'B';
  const auto pool = x.pool(c);
  Workers w(x.store, x.dir, pool, x.o.workers, 64, 2, 32);
  CpuMeter cpu(x.store, w);
  std::string load_before = loadavg();
  int64_t due = wall_ms() + static_cast<int64_t>(n) + 3000;
  std::vector<Json> args;
  std::set<std::string> ids;
  for (size_t i = 0; i < n; ++i) {
    Json a{{"pool", pool}, {"id", x.id(c, i)}, {"name", hops ? "sleep" : "noop"}, {"run_at", due}};
    a["input"] = hops ? Json{{"ms", 1000}} : Json{{"i", i}};
    ids.insert(a["id"].get<std::string>());
    args.push_back(std::move(a));
  }
  progress(std::string("case ") + c + ": dispatching " + std::to_string(n) + (hops ? " sleep" : " noop") +
           " workflows with run_at in " + std::to_string((due - wall_ms()) / 1000) + " s");
  dispatch_pipelined({&x.store.client()}, args, 256, "workloads");
  int64_t dispatched = wall_ms();
  uint64_t steps = n * (hops ? 2 : 1);
  bool finished = wait_committed(w, static_cast<double>(steps), 300 + (due - wall_ms()) / 1000);
  Json usage = cpu.delta(steps);
  auto recs = records(x.store.client(), pool, "complete");
  double first = INFINITY, last = -INFINITY;
  size_t done = 0;
  std::vector<double> late;
  int64_t last_commit = 0;
  for (const auto& id : ids) {
    auto it = recs.find(id);
    if (it == recs.end()) continue;
    const auto& r = it->second;
    ++done;
    last_commit = std::max(last_commit, r.value("updated_ts", int64_t{0}));
    if (hops) {
      int64_t t1 = 0, t2 = 0;
      if (!hop_times(r, t1, t2)) continue;
      first = std::min(first, static_cast<double>(t1));
      last = std::max(last, static_cast<double>(t2));
      late.push_back(static_cast<double>(t2 - (t1 + 1000)));
    } else {
      // The app ran the step at wake_ts + lag_ms; wake_ts = run_at, or the dispatch's time if that came later.
      int64_t wake = std::max(due, r.value("created_ts", int64_t{0}));
      double t = static_cast<double>(wake + r["output"].value("lag_ms", int64_t{0}));
      first = std::min(first, t);
      last = std::max(last, t);
    }
  }
  double rate = static_cast<double>(done) / ((last - first) / 1000.0);
  Json line{{"case", std::string(1, c)},
            {"n", n},
            {"completed", done},
            {"finished", finished},
            {"elapsed_s", num((last - first) / 1000.0)},
            {"from_due_s", num((last - static_cast<double>(due)) / 1000.0)},
            {"last_commit_from_due_s", num(static_cast<double>(last_commit - due) / 1000.0)},
            {"sends_done_before_due", dispatched <= due},
            {"duplicates", extra_steps(recs, ids, hops ? 2 : 1)},
            {"steps", steps},
            {"due_at_once", "dispatched with one run_at"},
            {"steps_by_worker", w.committed_by_worker()},
            {"concurrency", 64},
            {"app_threads", 2},
            {"batch", 32}};
  line.update(usage);
  if (hops) {
    line["wf_per_s"] = num(rate, 1);
    line["lateness_p50_ms"] = pct(late, 0.5);
    line["lateness_p99_ms"] = pct(late, 0.99);
  } else {
    line["jobs_per_s"] = num(rate, 1);
  }
  line["loadavg_before"] = load_before;
  line["loadavg_after"] = loadavg();
  return line;
}

// One dispatch every 1/rate s (the load generator's pacing), each returning at once.
void paced(rpc::Client& kv, const std::vector<Json>& args, double rate, std::vector<int64_t>* submitted) {
  int64_t start = mono_ms();
  for (size_t i = 0; i < args.size(); ++i) {
    int64_t at = start + static_cast<int64_t>(static_cast<double>(i) * 1000.0 / rate);
    if (int64_t wait = at - mono_ms(); wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    Json a = args[i];
    if (submitted) {
      submitted->push_back(wall_ms());
      a["input"]["submitted"] = submitted->back();
    }
    kv.call("dispatch", a, rpc::CallOptions{30s, true});
  }
}

Json light(Context& x, size_t hops_n, double hop_rate, size_t noop_n, double noop_rate) {
  const auto pool = x.pool('C');
  Workers w(x.store, x.dir, pool, x.o.workers, 64, 2, 32);
  CpuMeter cpu(x.store, w);
  std::string load_before = loadavg();
  progress("case C: " + std::to_string(hops_n) + " hops at " + std::to_string(static_cast<int>(hop_rate)) +
           "/s, then " + std::to_string(noop_n) + " noop at " + std::to_string(static_cast<int>(noop_rate)) + "/s");
  std::vector<Json> hops, noops;
  std::set<std::string> hop_ids, noop_ids;
  for (size_t i = 0; i < hops_n; ++i) {
    hops.push_back(Json{{"pool", pool}, {"id", x.id('h', i)}, {"name", "sleep"}, {"input", {{"ms", 1000}}}});
    hop_ids.insert(x.id('h', i));
  }
  for (size_t i = 0; i < noop_n; ++i) {
    noops.push_back(Json{{"pool", pool}, {"id", x.id('n', i)}, {"name", "noop"}, {"input", Json::object()}});
    noop_ids.insert(x.id('n', i));
  }
  paced(x.store.client(), hops, hop_rate, nullptr);
  bool hops_done = wait_committed(w, 2.0 * static_cast<double>(hops_n), 60);
  std::vector<int64_t> submitted;
  paced(x.store.client(), noops, noop_rate, &submitted);
  bool noop_done = wait_committed(w, 2.0 * static_cast<double>(hops_n) + static_cast<double>(noop_n), 60);
  uint64_t steps = 2 * hops_n + noop_n;
  Json usage = cpu.delta(steps);
  auto recs = records(x.store.client(), pool, "complete");
  std::vector<double> late, pickup;
  for (const auto& id : hop_ids) {
    int64_t t1 = 0, t2 = 0;
    if (recs.count(id) && hop_times(recs[id], t1, t2)) late.push_back(static_cast<double>(t2 - (t1 + 1000)));
  }
  for (const auto& id : noop_ids) {
    if (!recs.count(id)) continue;
    const auto& r = recs[id];
    // Due at dispatch (wake_ts = created_ts); the app ran the step lag_ms later.
    int64_t start = r.value("created_ts", int64_t{0}) + r["output"].value("lag_ms", int64_t{0});
    pickup.push_back(static_cast<double>(start - r["input"].value("submitted", int64_t{0})));
  }
  Json line{{"case", "C"},
            {"hops", hops_n},
            {"hop_rate", hop_rate},
            {"noop", noop_n},
            {"noop_rate", noop_rate},
            {"finished", hops_done && noop_done},
            {"hops_completed", late.size()},
            {"noop_completed", pickup.size()},
            {"lateness_p50_ms", pct(late, 0.5)},
            {"lateness_p99_ms", pct(late, 0.99)},
            {"pickup_p50_ms", pct(pickup, 0.5)},
            {"pickup_p99_ms", pct(pickup, 0.99)},
            {"duplicates", extra_steps(recs, hop_ids, 2) + extra_steps(recs, noop_ids, 1)},
            {"steps_by_worker", w.committed_by_worker()},
            {"concurrency", 64},
            {"app_threads", 2},
            {"batch", 32},
            {"steps", steps}};
  line.update(usage);
  line["loadavg_before"] = load_before;
  line["loadavg_after"] = loadavg();
  return line;
}

Json takeover(Context& x, size_t n) {
  const auto pool = x.pool('D');
  // 10 at a time per sidecar: --concurrency 10, and an app with 10 threads taking one task each.
  Workers w(x.store, x.dir, pool, x.o.workers, 10, 10, 1);
  CpuMeter cpu(x.store, w);
  std::string load_before = loadavg();
  progress("case D: " + std::to_string(n) + " jobs of 2 s, 10 at a time per sidecar; kill -9 of one sidecar and its app");
  std::vector<Json> args;
  std::set<std::string> ids;
  for (size_t i = 0; i < n; ++i) {
    args.push_back(Json{{"pool", pool}, {"id", x.id('D', i)}, {"name", "noop"}, {"input", {{"work_ms", 2000}}}});
    ids.insert(x.id('D', i));
  }
  dispatch_pipelined({&x.store.client()}, args, 256, "workloads");
  auto& victim = *w.members().front();
  auto held_now = [&] {
    std::set<std::string> held;
    for (const auto& [id, r] : records(x.store.client(), pool, "running"))
      if (r.value("lease_worker", "") == victim.id) held.insert(id);
    return held;
  };
  std::set<std::string> held;
  poll_until([&] { return (held = held_now()).size() >= 10; }, 10);
  std::this_thread::sleep_for(500ms);  // in the middle of its jobs
  held = held_now();
  cpu.add_killed(cpu_seconds(victim.sidecar->pid()), cpu_seconds(victim.app->pid()));
  victim.sidecar->kill9();
  victim.app->kill9();
  int64_t killed = mono_ms();
  progress("case D: killed " + victim.name + " holding " + std::to_string(held.size()) + " jobs; waiting up to " +
           std::to_string(kTakeoverCapS) + " s");
  // Released: the kv took the leases from the dead worker; done: the jobs completed elsewhere. Done also waits for a
  // free slot on the survivor, which runs its own jobs in waves of 10 x 2 s.
  std::set<std::string> released, done;
  int64_t released_at = 0;
  poll_until(
      [&] {
        for (const auto& id : held) {
          if (done.count(id)) continue;
          auto r = x.store.client().call("get", Json{{"workflow_id", id}}, rpc::CallOptions{10s, true});
          if (r.value("lease_worker", "") != victim.id) released.insert(id);
          if (r.value("status", "") == "complete") done.insert(id);
        }
        if (!released_at && released.size() == held.size()) released_at = mono_ms();
        return done.size() == held.size();
      },
      kTakeoverCapS);
  double takeover_s = static_cast<double>(mono_ms() - killed) / 1000.0;
  bool all_held = done.size() == held.size();
  // The other jobs, for the duplicate count (within the same cap).
  int64_t left_s = std::max<int64_t>(5, kTakeoverCapS - (mono_ms() - killed) / 1000);
  poll_until([&] { return records(x.store.client(), pool, "complete").size() >= n; }, left_s);
  auto recs = records(x.store.client(), pool, "complete");
  size_t completed = 0;
  for (const auto& id : ids) completed += recs.count(id);
  Json usage = cpu.delta(completed);
  Json line{{"case", "D"},
            {"n", n},
            {"per_worker", 10},
            {"held", held.size()},
            {"held_done_elsewhere", done.size()},
            {"takeover_s", all_held ? num(takeover_s, 2) : Json()},
            {"released_s", released_at ? num(static_cast<double>(released_at - killed) / 1000.0, 2) : Json()},
            {"cap_s", kTakeoverCapS},
            {"completed_within_cap", completed},
            {"lost_after_ms", 2000},
            {"lost_after_disconnect_ms", x.o.lost_after_disconnect_ms < 0 ? 1000 : x.o.lost_after_disconnect_ms},
            {"concurrency", 10},
            {"app_threads", 10},
            {"batch", 1},
            {"duplicates", extra_steps(recs, ids, 1)},
            {"steps", n}};
  if (!all_held) line["note"] = "no automatic takeover within cap";
  line.update(usage);
  line["loadavg_before"] = load_before;
  line["loadavg_after"] = loadavg();
  return line;
}

}  // namespace

CLI::App* add_workloads_command(CLI::App& app, WorkloadsOptions& o) {
  auto* cmd = app.add_subcommand("workloads", "The peers comparison's four workloads on Gasoline (hack/bench.sh peers)");
  cmd->add_option("--replicas", o.replicas, "kv replicas (1 or 3)")->capture_default_str();
  cmd->add_option("--cases", o.cases, "Cases to run (letters of ABCD)")->capture_default_str();
  cmd->add_option("--workers", o.workers, "Sidecars, each with an example app")->capture_default_str();
  cmd->add_flag("--quick", o.quick, "Small sizes (A 2,000, B 500, C 50/100, D 40)");
  cmd->add_option("--lost-after-disconnect-ms", o.lost_after_disconnect_ms,
                  "The kv's flag (0 = off, as before it existed); -1 = the kv's default, 1 s with these timings")
      ->capture_default_str();
  return cmd;
}

int run_workloads(const WorkloadsOptions& o) {
  if (o.replicas != 1 && o.replicas != 3 && o.replicas != 5) throw std::invalid_argument("--replicas is 1, 3 or 5");
  const size_t a = o.quick ? 2000 : 20000, b = o.quick ? 500 : 5000, hops = o.quick ? 50 : 200,
               noop = o.quick ? 100 : 500, d = o.quick ? 40 : 200;
  testing::TempDir temp("gasoline-workloads");
  progress("starting " + std::to_string(o.replicas) + " kv replica(s) (fsync on)");
  Store store(o.replicas, temp.path(), o.lost_after_disconnect_ms);
  Context x{store, temp.path(), "p" + std::to_string(wall_ms() % 100000000), o};
  Json base{{"system", "gasoline"},
            {"replicas", o.replicas},
            {"store", "gasoline-kv"},
            {"versions", "gasoline (this tree)"},
            {"workers", o.workers},
            {"durability", o.replicas == 1 ? "kv fsync on (RocksDB)" : "libraft log fsync on, 3 replicas"}};
  uint64_t duplicates = 0;
  for (char c : o.cases) {
    Json line;
    if (c == 'A') line = due_at_once(x, 'A', a);
    else if (c == 'B') line = due_at_once(x, 'B', b);
    else if (c == 'C') line = light(x, hops, 20, noop, 50);
    else if (c == 'D') line = takeover(x, d);
    else continue;
    Json out = base;
    out.update(line);
    duplicates += out.value("duplicates", uint64_t{0});
    std::cout << out.dump() << std::endl;
  }
  return duplicates == 0 ? 0 : 1;
}

}  // namespace gasoline::bench
