// Process-level tests of the drain started before SIGTERM (ctest label `worker`): with native sidecars the kubelet
// stops the app container first, so its preStop hook calls GET /drain on the sidecar's admin listener and waits for
// the answer (worker/README.md, "Kubernetes termination"). A real gasoline-kv, real gasoline-worker sidecars, and
// the test itself as the app that holds tasks; the fixture is in fleet.h. Synchronisation is by conditions with
// deadlines; nothing asserts on speed. "Not answered yet" is checked only at points where an answer would be a bug
// whatever the timing (a task is still held and the drain timeout is far away).
#include "tests/worker/fleet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

namespace gasoline {
namespace {

using namespace fleet;

// One drain request on its own connection and thread, as the kubelet's hook sends it.
std::future<sdk::Response> drain_async(const std::string& address, const std::string& method = "GET",
                                       const std::string& target = "/drain") {
  return std::async(std::launch::async, [address, method, target] {
    sdk::Client c(address, 60s);
    return c.request(method, target);
  });
}

bool answered(std::future<sdk::Response>& f) { return f.wait_for(0s) == std::future_status::ready; }

// How many log lines carry exactly this message.
size_t count_logged(const std::string& log, const std::string& msg) {
  std::ifstream in(log);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    auto j = Json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.value("msg", "") == msg) ++n;
  }
  return n;
}

size_t waiting_polls(Node& n) {
  return sdk::Client(n.address(), 5s).request("GET", "/healthz").body.value("waiting_polls", size_t{0});
}

class WorkerDrain : public WorkerFleet {};

TEST_F(WorkerDrain, HookWaitsForTheAppsTasksWhileTheOthersTakeNewWork) {
  start_kv();
  // No app: the test polls this sidecar and holds its tasks, as an app in the middle of its steps would.
  Node& d = start_sidecar("drained", false, {"--admin-listen", "127.0.0.1:0"});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(dispatch("noop", {{"i", i}}));
  auto held = hold(d, ids.size());
  ASSERT_EQ(held.size(), ids.size());
  Node& b = start_sidecar("b", true);

  // A long poll parked before the drain starts: it must not keep the app waiting once the drain began.
  auto parked = std::async(std::launch::async, [&d] {
    return sdk::Client(d.address(), 60s).request("GET", "/v1/tasks?max=1&wait=120s");
  });
  ASSERT_TRUE(wait_until([&] { return waiting_polls(d) == 1; }, 10s));

  // The preStop hook on the admin listener, and the app's own POST /v1/drain, concurrently: one drain.
  auto hook = drain_async(d.admin_address());
  auto own = drain_async(d.address(), "POST", "/v1/drain");
  ASSERT_TRUE(wait_until([&] { return worker_record(d.id).value("state", "") == "draining"; }, 10s))
      << "the kv was not told to drain";

  ASSERT_EQ(parked.wait_for(20s), std::future_status::ready) << "a parked poll was not answered at the drain";
  auto p = parked.get();
  EXPECT_EQ(p.status, 200) << p.raw;
  EXPECT_TRUE(p.body["tasks"].empty()) << p.raw;
  EXPECT_TRUE(p.body.value("draining", false)) << p.raw;
  // A new poll does not wait: its 120 s would outlast the client's 20 s timeout (TransportError).
  auto fresh_poll = sdk::Client(d.address(), 20s).request("GET", "/v1/tasks?max=4&wait=120s");
  EXPECT_EQ(fresh_poll.status, 200) << fresh_poll.raw;
  EXPECT_TRUE(fresh_poll.body["tasks"].empty()) << fresh_poll.raw;
  EXPECT_TRUE(fresh_poll.body.value("draining", false)) << fresh_poll.raw;

  // Unready on both listeners, with the reason.
  for (const auto& address : {d.address(), d.admin_address()}) {
    auto r = sdk::Client(address, 5s).request("GET", "/readyz");
    EXPECT_EQ(r.status, 503) << address << " " << r.raw;
    EXPECT_EQ(r.body.value("reason", ""), "draining") << address << " " << r.raw;
  }

  // The pool's new work goes to the other worker while the drained one still holds its tasks.
  std::vector<std::string> fresh;
  for (int i = 0; i < 6; ++i) fresh.push_back(dispatch("noop", {{"fresh", i}}));
  ASSERT_TRUE(wait_until([&] { return all_terminal(fresh); }, 30s)) << pending(fresh);
  for (const auto& id : fresh) EXPECT_EQ(get(id)["output"].value("worker", ""), b.id) << id;
  for (const auto& id : ids) EXPECT_EQ(get(id)["lease_worker"], d.id) << "still held by the draining worker";

  // Results of held tasks are accepted and committed during the drain; the hook answers only after the last one.
  sdk::Client api(d.address());
  for (size_t i = 0; i + 1 < held.size(); ++i)
    EXPECT_EQ(api.post_result(held[i], sdk::step::complete({{"by", "test"}})), sdk::Posted::kCommitted);
  EXPECT_FALSE(answered(hook)) << "the hook was answered while the app still held a task";
  EXPECT_FALSE(answered(own)) << "POST /v1/drain was answered while the app still held a task";
  EXPECT_EQ(api.post_result(held.back(), sdk::step::complete({{"by", "test"}})), sdk::Posted::kCommitted);

  ASSERT_EQ(hook.wait_for(20s), std::future_status::ready) << "the hook was not answered after the last result";
  ASSERT_EQ(own.wait_for(20s), std::future_status::ready);
  auto h = hook.get();
  EXPECT_EQ(h.status, 200) << h.raw;
  EXPECT_TRUE(h.body.value("drained", false)) << h.raw;
  EXPECT_EQ(h.body.value("running", -1), 0) << h.raw;
  EXPECT_EQ(h.body.value("worker", ""), d.id) << h.raw;
  auto o = own.get();
  EXPECT_EQ(o.status, 200) << o.raw;
  EXPECT_EQ(o.body, h.body) << "both calls joined the same drain";
  // A call after the drain finished is answered at once with the same summary.
  auto again = sdk::Client(d.admin_address(), 5s).request("GET", "/drain");
  EXPECT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(again.body, h.body);

  for (const auto& id : ids) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete") << w.dump();
    EXPECT_EQ(w["steps"], 1) << w.dump();
    EXPECT_EQ(w["output"]["by"], "test") << w.dump();
  }
  // Drained but not gone: pings go on until SIGTERM, so the kv keeps the worker as draining.
  ASSERT_TRUE(d.sidecar->running());
  EXPECT_EQ(worker_record(d.id).value("state", ""), "draining");

  // The kubelet's SIGTERM after the app exited: leave at once, exit 0.
  d.sidecar->signal(SIGTERM);
  EXPECT_EQ(d.sidecar->wait(20s), 0);
  EXPECT_TRUE(worker_record(d.id).is_null()) << "left the pool";
  EXPECT_EQ(count_logged(d.log, "signal received after the drain: leaving"), 1u) << tail(d.log);
  EXPECT_EQ(count_logged(d.log, "draining"), 1u) << "SIGTERM started a second drain:\n" << tail(d.log);
  EXPECT_FALSE(file_contains(kv_->log_path(), "worker lost", d.id)) << "nothing was reclaimed";
}

TEST_F(WorkerDrain, TimeoutAnswersEveryCallerNotDrainedAndSigtermThenLeavesAtOnce) {
  start_kv();
  Node& d = start_sidecar("slow", false, {"--admin-listen", "127.0.0.1:0", "--drain-timeout", "1s"});

  // Wrong methods and unknown paths are refused and start nothing.
  sdk::Client admin(d.admin_address(), 5s);
  auto post = admin.request("POST", "/drain");
  EXPECT_EQ(post.status, 405) << post.raw;
  EXPECT_EQ(post.body["error"]["code"], "method_not_allowed") << post.raw;
  auto unknown = admin.request("GET", "/v1/drain");
  EXPECT_EQ(unknown.status, 404) << "the admin listener serves only GET /drain: " << unknown.raw;
  auto get_api = sdk::Client(d.address(), 5s).request("GET", "/v1/drain");
  EXPECT_EQ(get_api.status, 405) << get_api.raw;
  ASSERT_TRUE(wait_until([&] { return ready(d); }, 10s)) << "a refused request started a drain";
  EXPECT_EQ(count_logged(d.log, "draining"), 0u);

  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) ids.push_back(dispatch("noop", {{"i", i}}));
  auto held = hold(d, ids.size());
  ASSERT_EQ(held.size(), ids.size());

  // Concurrent callers; the app never finishes its tasks in time.
  std::vector<std::future<sdk::Response>> calls;
  for (int i = 0; i < 3; ++i) calls.push_back(drain_async(d.admin_address()));
  calls.push_back(drain_async(d.address(), "POST", "/v1/drain"));
  Json first;
  for (auto& c : calls) {
    ASSERT_EQ(c.wait_for(30s), std::future_status::ready) << "a drain caller was not answered after the timeout";
    auto r = c.get();
    EXPECT_EQ(r.status, 200) << "the hook must not fail the pod's termination: " << r.raw;
    EXPECT_FALSE(r.body.value("drained", true)) << r.raw;
    EXPECT_EQ(r.body.value("running", -1), 2) << r.raw;
    EXPECT_TRUE(r.body.value("timed_out", false)) << r.raw;
    if (first.is_null()) first = r.body;
    EXPECT_EQ(r.body, first) << "every caller joined the one drain";
  }

  // Until the sidecar leaves, the leases are still held: a late result is still committed.
  sdk::Client api(d.address());
  EXPECT_EQ(api.post_result(held[0], sdk::step::complete({{"by", "late app"}})), sdk::Posted::kCommitted);

  // SIGTERM leaves without a second wait (the task still held goes back to the pool through leave).
  d.sidecar->signal(SIGTERM);
  EXPECT_EQ(d.sidecar->wait(20s), 0);
  EXPECT_TRUE(worker_record(d.id).is_null()) << "left the pool";
  EXPECT_EQ(count_logged(d.log, "draining"), 1u) << "SIGTERM started a second drain:\n" << tail(d.log);
  EXPECT_EQ(count_logged(d.log, "signal received after the drain: leaving"), 1u) << tail(d.log);

  // The unfinished task was handed over: another worker runs it, and the old lease's result is refused.
  Node& b = start_sidecar("b", true);
  ASSERT_TRUE(wait_until([&] { return all_terminal(ids); }, 30s)) << pending(ids);
  auto done_early = get(held[0]["workflow_id"].get<std::string>());
  EXPECT_EQ(done_early["output"]["by"], "late app") << done_early.dump();
  EXPECT_EQ(done_early["steps"], 1);
  auto handed = get(held[1]["workflow_id"].get<std::string>());
  EXPECT_EQ(handed["status"], "complete") << handed.dump();
  EXPECT_EQ(handed["steps"], 1) << handed.dump();
  EXPECT_EQ(handed["output"]["worker"], b.id) << handed.dump();
  EXPECT_EQ(sdk::Client(b.address()).post_result(held[1], sdk::step::complete()), sdk::Posted::kLeaseLost);
  EXPECT_FALSE(file_contains(kv_->log_path(), "worker lost", d.id)) << "leave, not a reclaim";
}

TEST_F(WorkerDrain, SigtermDuringAHookDrainJoinsIt) {
  start_kv();
  Node& d = start_sidecar("joined", false, {"--admin-listen", "127.0.0.1:0"});
  auto id = dispatch("noop");
  auto held = hold(d, 1);
  ASSERT_EQ(held.size(), 1u);
  auto hook = drain_async(d.admin_address());
  ASSERT_TRUE(wait_until([&] { return worker_record(d.id).value("state", "") == "draining"; }, 10s));

  // The kubelet gave up on the hook (or the app exited early): SIGTERM while the drain still waits.
  d.sidecar->signal(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return count_logged(d.log, "signal received: draining") == 1; }, 10s))
      << tail(d.log);
  EXPECT_TRUE(d.sidecar->running()) << "the sidecar left while the app still held a task";
  EXPECT_FALSE(answered(hook));

  EXPECT_EQ(sdk::Client(d.address()).post_result(held[0], sdk::step::complete({{"by", "test"}})),
            sdk::Posted::kCommitted);
  ASSERT_EQ(hook.wait_for(20s), std::future_status::ready);
  auto h = hook.get();
  EXPECT_EQ(h.status, 200) << h.raw;
  EXPECT_TRUE(h.body.value("drained", false)) << h.raw;
  EXPECT_EQ(d.sidecar->wait(20s), 0);
  EXPECT_EQ(count_logged(d.log, "draining"), 1u) << "one drain, joined by SIGTERM:\n" << tail(d.log);
  EXPECT_TRUE(worker_record(d.id).is_null());
  auto w = get(id);
  EXPECT_EQ(w["status"], "complete");
  EXPECT_EQ(w["output"]["by"], "test");
}

// GET `target` from a chosen loopback source address (127.0.0.0/8 is all local, so a test can stand in for a
// pod or the node without leaving the machine). Returns the status line and body, "" if nothing came back.
std::string get_from(const std::string& source_ip, const std::string& address, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, source_ip.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  auto colon = address.rfind(':');
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &dst.sin_addr);
  dst.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  std::string out;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// The admin listener is on the pod's IP, reachable by every pod: GET /drain must come from the kubelet, i.e. the
// node (--node-ip, status.hostIP) or the pod's loopback. Another address gets 403, and the worker keeps working.
TEST_F(WorkerDrain, OnlyTheNodeAndLoopbackMayDrain) {
  start_kv();
  Node& d = start_sidecar("guarded", false, {"--admin-listen", "127.0.0.1:0", "--node-ip", "127.0.0.3"});
  auto ready = [&] { return sdk::Client(d.admin_address(), 5s).request("GET", "/readyz").status; };
  ASSERT_TRUE(wait_until([&] { return ready() == 200; }, 20s));

  // Another pod (here 127.0.0.2, neither loopback 127.0.0.1 nor the node): refused, nothing drains.
  auto refused = get_from("127.0.0.2", d.admin_address(), "/drain");
  EXPECT_NE(refused.find(" 403 "), std::string::npos) << refused;
  EXPECT_NE(refused.find("accepted only from the pod's loopback and its node"), std::string::npos) << refused;
  EXPECT_NE(refused.find("127.0.0.2"), std::string::npos) << "the refusal names the caller: " << refused;
  EXPECT_EQ(ready(), 200) << "a refused drain took the worker out of service";
  dispatch("noop", Json::object());
  auto held = hold(d, 1);
  ASSERT_EQ(held.size(), 1u) << "the worker stopped pulling after a refused drain";
  // The probes stay open to everyone (the kubelet and Prometheus).
  EXPECT_NE(get_from("127.0.0.2", d.admin_address(), "/healthz").find(" 200 "), std::string::npos);

  // The node (the kubelet's preStop hook): accepted.
  EXPECT_EQ(sdk::Client(d.address()).post_result(held[0], sdk::step::complete(Json::object())),
            sdk::Posted::kCommitted);
  auto accepted = get_from("127.0.0.3", d.admin_address(), "/drain");
  EXPECT_NE(accepted.find(" 200 "), std::string::npos) << accepted;
  EXPECT_EQ(ready(), 503);
}

// A drain that no SIGTERM follows (a stray or stuck hook, an app that asked to drain and was restarted) is undone
// after --undrain-after: back in the kv's ranking, ready and pulling again; a later drain starts afresh.
TEST_F(WorkerDrain, ADrainNoSigtermFollowsIsUndoneAndALaterOneStartsAfresh) {
  start_kv();
  Node& d = start_sidecar("stray", false,
                          {"--admin-listen", "127.0.0.1:0", "--drain-timeout", "1s", "--undrain-after", "3s"});
  auto readyz = [&] { return sdk::Client(d.admin_address(), 5s).request("GET", "/readyz").status; };
  ASSERT_TRUE(wait_until([&] { return readyz() == 200; }, 20s)) << tail(d.log);

  auto first = sdk::Client(d.admin_address(), 20s).request("GET", "/drain");
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_TRUE(first.body.value("drained", false)) << first.raw;
  EXPECT_EQ(readyz(), 503);
  EXPECT_EQ(worker_record(d.id).value("state", ""), "draining");
  // Within the bound the drain holds: work dispatched now is not pulled by the drained worker.
  auto id = dispatch("noop", {{"after", "drain"}});
  EXPECT_TRUE(sdk::Client(d.address(), 5s).request("GET", "/v1/tasks?max=1&wait=0s").body["tasks"].empty());

  ASSERT_TRUE(wait_until([&] { return worker_record(d.id).value("state", "") == "active"; }, 20s))
      << "not undrained in the kv:\n" << tail(d.log);
  ASSERT_TRUE(wait_until([&] { return readyz() == 200; }, 10s)) << tail(d.log);
  auto metrics = sdk::Client(d.admin_address(), 5s).request("GET", "/metrics").raw;
  EXPECT_EQ(metric(metrics, "gasoline_worker_undrains_total"), 1) << metrics;
  EXPECT_EQ(metric(metrics, "gasoline_worker_draining"), 0) << metrics;
  EXPECT_EQ(count_logged(d.log, "undrained: no SIGTERM followed the drain; back in the pool's ranking and pulling again"),
            1u)
      << tail(d.log);
  // Pulling again: the workflow dispatched during the drain comes to this worker, the only one of the pool.
  auto held = hold(d, 1);
  ASSERT_EQ(held.size(), 1u) << "the undrained worker does not pull";
  EXPECT_EQ(held[0]["workflow_id"], id);
  EXPECT_EQ(sdk::Client(d.address()).post_result(held[0], sdk::step::complete(Json::object())),
            sdk::Posted::kCommitted);

  // A later drain is a new one (not the old summary), and the SIGTERM that follows it leaves the pool.
  auto second = sdk::Client(d.admin_address(), 20s).request("GET", "/drain");
  ASSERT_EQ(second.status, 200) << second.raw;
  EXPECT_EQ(worker_record(d.id).value("state", ""), "draining");
  EXPECT_EQ(count_logged(d.log, "draining"), 2u) << tail(d.log);
  d.sidecar->signal(SIGTERM);
  EXPECT_EQ(d.sidecar->wait(20s), 0) << tail(d.log);
  EXPECT_TRUE(worker_record(d.id).is_null()) << "left the pool";
}

// The bound must leave the drain its whole --drain-timeout: an undo while the app still finishes its tasks would
// hand the worker new work in the middle of its shutdown.
TEST_F(WorkerDrain, UndrainAfterNotBeyondTheDrainTimeoutIsRefusedAtStart) {
  start_kv();
  std::string log = dir_->path() + "/refused.log";
  Process p({testing::binary_path("gasoline-worker"), "--kv", kv_->address(), "--token-file",
             dir_->path() + "/kv/token", "--drain-timeout", "30s", "--undrain-after", "10s"},
            log);
  int code = p.wait(20s);
  EXPECT_NE(code, 0);
  EXPECT_TRUE(file_contains(log, "--undrain-after", "must exceed --drain-timeout")) << tail(log);
}

}  // namespace
}  // namespace gasoline
