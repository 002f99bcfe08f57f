#include "gateway/gateway.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/random_id.h"

#include <algorithm>
#include <atomic>

namespace gasoline::gateway {
namespace {

bool retryable(const std::string& code) { return code == rpc::code::kUnavailable || code == rpc::code::kNotLeader; }

Outcome outcome_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const rpc::KvError& e) {
    // KvError's what() is "code: message"; the answer carries the two apart.
    std::string what = e.what();
    std::string prefix = e.code() + ": ";
    return Outcome{false, {}, e.code(), what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what};
  } catch (const std::exception& e) {
    return Outcome{false, {}, rpc::code::kInternal, e.what()};
  }
}

}  // namespace

Gateway::Gateway(Options options, Metrics& metrics) : options_(std::move(options)), metrics_(metrics) {
  timer_thread_ = std::thread([this] { timer_loop(); });
}

Gateway::~Gateway() { shutdown(); }

void Gateway::shutdown(std::chrono::milliseconds grace) {
  std::map<std::string, Conn> conns;
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    idle_cv_.wait_for(lock, grace, [&] { return inflight_ == 0; });
    conns.swap(conns_);
  }
  {
    std::lock_guard lock(timer_mu_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_thread_.joinable()) timer_thread_.join();
  // Closing a client answers its pending calls with "unavailable"; their replies go out as 503.
  for (auto& [_, c] : conns) c.client->close();
  metrics_.set_kv_clients(0);
}

void Gateway::handle(http::Request req, http::Reply raw_reply) {
  const int64_t start = mono_ms();
  Plan planned = plan(req, [](const char* prefix) { return random_id(prefix); });
  const std::string route = route_name(planned.route);
  // Every answer is counted once, with its route, status and time.
  auto reply = [this, route, start, raw_reply = std::move(raw_reply)](http::Response r) {
    metrics_.request(route, r.status, static_cast<double>(mono_ms() - start) / 1000.0);
    raw_reply(std::move(r));
  };
  if (planned.reply) return reply(std::move(*planned.reply));
  switch (planned.route) {
    case Route::kHealthz: return reply(http::json_response(200, R"({"status":"ok"})"));
    case Route::kReadyz: {
      std::lock_guard lock(mu_);
      return reply(stopping_ ? http::error_response(503, "unavailable", "shutting down")
                             : http::json_response(200, R"({"ready":true})"));
    }
    case Route::kMetrics: {
      http::Response r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = metrics_.text();
      return reply(std::move(r));
    }
    default: break;
  }
  auto token = bearer_token(req);
  if (!token) {
    auto r = http::error_response(401, "unauthenticated",
                                  "missing 'Authorization: Bearer <token>': the kv's token, or a credential of the "
                                  "pool's namespace (docs/security.md, Roles)");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return reply(std::move(r));
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return reply(http::error_response(503, "unavailable", "the gateway is shutting down"));
    if (inflight_ >= options_.max_inflight) {
      auto r = http::error_response(429, "overloaded",
                                    "more than " + std::to_string(options_.max_inflight) +
                                        " requests in flight (--max-inflight); retry shortly");
      r.headers.emplace_back("Retry-After", "1");
      return reply(std::move(r));
    }
    ++inflight_;
    metrics_.set_inflight(static_cast<double>(inflight_));
  }
  auto client = acquire(*token);
  if (!client) {
    bool stopping;
    {
      std::lock_guard lock(mu_);
      --inflight_;
      metrics_.set_inflight(static_cast<double>(inflight_));
      stopping = stopping_;
    }
    if (stopping) return reply(http::error_response(503, "unavailable", "the gateway is shutting down"));
    auto r = http::error_response(429, "overloaded",
                                  "every kv connection (--max-clients " + std::to_string(options_.max_clients) +
                                      ", one per distinct credential) is busy; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    return reply(std::move(r));
  }
  run_calls(*token, std::move(client), std::move(planned), std::move(reply));
}

std::shared_ptr<rpc::Client> Gateway::acquire(const std::string& token) {
  // Closing a client joins its thread: never under mu_, which every client's callbacks take.
  std::vector<std::shared_ptr<rpc::Client>> closing;
  std::shared_ptr<rpc::Client> out;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return nullptr;
    const int64_t now = mono_ms();
    for (auto it = conns_.begin(); it != conns_.end();) {
      bool idle_too_long = it->second.inflight == 0 && now - it->second.last_used > options_.client_idle.count();
      if (it->second.inflight == 0 && (it->second.refused || idle_too_long)) {
        closing.push_back(std::move(it->second.client));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    auto it = conns_.find(token);
    bool room = it != conns_.end() || conns_.size() < options_.max_clients;
    if (!room) {
      // The longest idle connection makes room; with every one busy, the caller waits its turn (429).
      auto victim = conns_.end();
      for (auto c = conns_.begin(); c != conns_.end(); ++c)
        if (c->second.inflight == 0 && (victim == conns_.end() || c->second.last_used < victim->second.last_used))
          victim = c;
      if (victim != conns_.end()) {
        closing.push_back(std::move(victim->second.client));
        conns_.erase(victim);
        room = true;
      }
    }
    if (room) {
      if (it == conns_.end()) {
        rpc::ClientOptions o;
        o.endpoints = options_.kv;
        o.token = token;
        o.name = "gasoline-gateway";
        o.tls = options_.kv_tls;
        o.call_timeout = options_.call_timeout;
        it = conns_.emplace(token, Conn{std::make_shared<rpc::Client>(o), now, 0, false}).first;
      }
      it->second.last_used = now;
      ++it->second.inflight;
      out = it->second.client;
    }
    metrics_.set_kv_clients(static_cast<double>(conns_.size()));
  }
  for (auto& c : closing) c->close();
  return out;
}

void Gateway::release(const std::string& token, bool refused) {
  std::lock_guard lock(mu_);
  if (--inflight_ == 0) idle_cv_.notify_all();
  metrics_.set_inflight(static_cast<double>(inflight_));
  auto it = conns_.find(token);
  if (it == conns_.end()) return;
  if (it->second.inflight > 0) --it->second.inflight;
  it->second.last_used = mono_ms();
  if (refused) it->second.refused = true;
}

void Gateway::run_calls(const std::string& token, std::shared_ptr<rpc::Client> client, Plan plan,
                        http::Reply reply) {
  struct Batch {
    Plan plan;
    http::Reply reply;
    std::vector<Outcome> outcomes;
    std::atomic<size_t> left{0};
  };
  auto batch = std::make_shared<Batch>();
  batch->plan = std::move(plan);
  batch->reply = std::move(reply);
  batch->outcomes.resize(batch->plan.calls.size());
  batch->left = batch->plan.calls.size();
  const int64_t retry_until = mono_ms() + options_.retry_for.count();
  for (size_t i = 0; i < batch->plan.calls.size(); ++i) {
    call(client, batch->plan.calls[i], retry_until, [this, batch, i, token](Outcome o) {
      batch->outcomes[i] = std::move(o);
      if (batch->left.fetch_sub(1) != 1) return;
      // The last outcome: answer, and give the connection back. A refused credential closes it, so a token
      // that was revoked or mistyped does not keep a connection.
      bool refused = std::any_of(batch->outcomes.begin(), batch->outcomes.end(),
                                 [](const Outcome& x) { return !x.ok && x.code == rpc::code::kUnauthenticated; });
      release(token, refused);
      try {
        batch->reply(respond(batch->plan, batch->outcomes));
      } catch (const std::exception& e) {  // on a kv client's I/O thread: never let it end that thread
        log::error("answering a request failed", {{"error", e.what()}});
        batch->reply(http::error_response(500, "internal", std::string("answering failed: ") + e.what()));
      }
    });
  }
}

void Gateway::call(std::shared_ptr<rpc::Client> client, KvCall kv_call, int64_t retry_until,
                   std::function<void(Outcome)> done) {
  auto op = kv_call.op;
  auto args = kv_call.args;
  client->call_async(
      op, std::move(args),
      [this, client, kv_call = std::move(kv_call), retry_until, done = std::move(done)](std::exception_ptr error,
                                                                                          rpc::Json result) mutable {
        if (!error) return done(Outcome{true, std::move(result), {}, {}});
        Outcome o = outcome_of(error);
        bool stopping;
        {
          std::lock_guard lock(mu_);
          stopping = stopping_;
        }
        constexpr int64_t kBackoffMs = 200;
        if (retryable(o.code) && !stopping && mono_ms() + kBackoffMs < retry_until) {
          metrics_.retried();
          log::debug("kv unavailable; retrying", {{"op", kv_call.op}, {"error", o.message}});
          after(std::chrono::milliseconds(kBackoffMs),
                [this, client, kv_call = std::move(kv_call), retry_until, done = std::move(done)]() mutable {
                  call(std::move(client), std::move(kv_call), retry_until, std::move(done));
                });
          return;
        }
        done(std::move(o));
      });
}

void Gateway::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  {
    std::lock_guard lock(timer_mu_);
    if (!timer_stop_) {
      timers_.emplace(mono_ms() + delay.count(), std::move(fn));
      fn = nullptr;
    }
  }
  if (fn) {
    fn();  // shutting down: the call runs at once, finds the client closed and answers unavailable
    return;
  }
  timer_cv_.notify_one();
}

void Gateway::timer_loop() {
  std::unique_lock lock(timer_mu_);
  while (true) {
    if (timer_stop_) break;
    if (timers_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    const int64_t now = mono_ms();
    auto first = timers_.begin();
    if (first->first > now) {
      timer_cv_.wait_for(lock, std::chrono::milliseconds(first->first - now));
      continue;
    }
    auto fn = std::move(first->second);
    timers_.erase(first);
    lock.unlock();
    fn();
    lock.lock();
  }
  // What is still waiting runs now: each call then fails at once on its closed client and is answered.
  auto rest = std::move(timers_);
  timers_.clear();
  lock.unlock();
  for (auto& [_, fn] : rest) fn();
}

}  // namespace gasoline::gateway
