#include "worker/pass_through.h"

#include "common/clock.h"
#include "common/random_id.h"
#include "kv/rpc/protocol.h"
#include "worker/kv_failure.h"

#include <vector>

namespace gasoline::worker {
namespace {

constexpr int64_t kPassThroughMs = 10'000;  // dispatch/get/signal/cancel give up (503) after this

}  // namespace

void PassThrough::request(const std::string& op, Json args, Done done) {
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      done(shutting_down());
      return;
    }
  }
  if (op == rpc::op::kDispatch && args.value("id", "").empty()) args["id"] = random_id("wf_");
  if (op == rpc::op::kSignal && args.value("signal_id", "").empty()) args["signal_id"] = random_id("sig_");
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    calls_.emplace(id, PendingCall{op, std::move(args), mono_ms() + kPassThroughMs, 0, false, std::move(done)});
  }
  send(id);
}

Outcome PassThrough::success_outcome(const PendingCall& c, const Json& result) {
  if (c.op == rpc::op::kDispatch) return Outcome{result.value("existing", false) ? 200 : 201, result, {}};
  if (c.op == rpc::op::kCommit) {
    metrics_.result(result.value("duplicate", false) ? "duplicate" : "ok");
    return Outcome{200,
                   Json{{"status", result.value("status", "")},
                        {"duplicate", result.value("duplicate", false)},
                        {"workflow_id", c.args.value("workflow_id", "")},
                        {"token", api::make_token(c.args.value("token", uint64_t{0}), c.args.value("workflow_id", ""))
                                      .text()}},
                   {}};
  }
  return Outcome{200, result, {}};
}

void PassThrough::send(uint64_t id) {
  std::string op;
  Json args;
  {
    std::lock_guard lock(mu_);
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second.inflight) return;
    it->second.inflight = true;
    op = it->second.op;
    args = it->second.args;
  }
  client_.call_async(op, std::move(args), [this, id](std::exception_ptr e, Json result) {
    Done done;
    Outcome outcome;
    {
      std::lock_guard lock(mu_);
      auto it = calls_.find(id);
      if (it == calls_.end()) return;  // answered already (deadline)
      auto& c = it->second;
      c.inflight = false;
      if (e) {
        auto f = failure_of(e);
        if (transient(f.code) && mono_ms() + 100 < c.deadline) {
          c.next_try = mono_ms() + 100;  // the housekeeping thread sends it again
          return;
        }
        if (c.op == rpc::op::kCommit && (f.code == rpc::code::kConflict || f.code == rpc::code::kNotFound)) {
          metrics_.result("conflict");
          outcome = error_outcome(409, "lease_lost", f.message + "; drop the task");
        } else {
          outcome = error_outcome(api::http_status_for_kv(f.code), f.code, f.message);
        }
      } else {
        try {
          outcome = success_outcome(c, result);
        } catch (const std::exception& ex) {
          // On the kv client's I/O thread: answer the app, never let the exception end the thread.
          outcome = error_outcome(502, "internal", "unexpected reply to '" + c.op + "' from the kv: " + ex.what());
        }
      }
      done = std::move(c.done);
      calls_.erase(it);
    }
    done(std::move(outcome));
  });
}

void PassThrough::tick() {
  std::vector<Done> expired;
  std::vector<std::string> expired_ops;
  std::vector<uint64_t> recall;
  {
    std::lock_guard lock(mu_);
    int64_t now = mono_ms();
    for (auto& [id, c] : calls_) {
      if (!c.inflight && c.next_try && now >= c.next_try) recall.push_back(id);
    }
    for (auto it = calls_.begin(); it != calls_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second.done));
        expired_ops.push_back(it->second.op);
        it = calls_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (size_t i = 0; i < expired.size(); ++i)
    expired[i](error_outcome(503, "unavailable", "the kv did not answer '" + expired_ops[i] + "' in time; retry later"));
  for (auto id : recall) send(id);
}

void PassThrough::shutdown() {
  std::map<uint64_t, PendingCall> calls;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    calls.swap(calls_);
  }
  for (auto& [id, c] : calls) c.done(shutting_down());
}

}  // namespace gasoline::worker
