#include "kv/rpc/client.h"

#include "kv/rpc/server.h"
#include "kv/rpc/stream.h"

#include <boost/asio.hpp>
#include <openssl/ssl.h>

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace gasoline::rpc {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
std::exception_ptr kv_error(const std::string& code, const std::string& message, Json details = Json::object()) {
  return std::make_exception_ptr(KvError(code, message, std::move(details)));
}
}  // namespace

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  enum class State { kIdle, kConnecting, kHello, kReady };

  ClientOptions options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  tcp::socket socket{io};              // while connecting; then moved into `stream`
  // The connection once TCP is up. Shared with the handlers of its pending operations: a disconnect drops it while
  // a read (and maybe a write or the handshake) is still pending, and a TLS operation completing with "aborted"
  // still touches its stream.
  std::shared_ptr<Stream> stream;
  std::shared_ptr<tls::ssl::context> tls_context;  // built once from options.tls (files read at construction)
  tcp::resolver resolver{io};
  asio::steady_timer connect_timer{io};
  State state = State::kIdle;
  size_t endpoint_index = 0;
  std::string redirect;  // a leader address learned from not_leader
  std::atomic<bool> ready{false};
  std::atomic<bool> closing{false};
  uint64_t next_id = 1;
  uint64_t generation = 0;  // bumps on every new connection so stale callbacks are ignored
  // A call in flight, or queued for the connection. Every call has a deadline, so a kv that accepts but never
  // answers cannot leave a callback pending forever.
  struct Call {
    Callback cb;
    std::string op;
    std::chrono::steady_clock::time_point sent;
    std::chrono::steady_clock::time_point deadline;
  };
  std::map<uint64_t, Call> inflight;
  asio::steady_timer deadline_timer{io};
  bool deadline_armed = false;
  std::deque<std::pair<uint64_t, std::string>> queued;  // requests waiting for the connection
  std::string write_pending;
  std::string write_inflight;
  bool writing = false;
  FrameDecoder decoder;
  std::array<char, 64 * 1024> read_buf{};
  std::function<void(const Json&)> on_bump;
  std::function<void()> on_connect;
  std::function<std::vector<Client::ConnectCall>()> connect_calls;
  mutable std::mutex endpoint_mu;
  std::string current_endpoint;
  std::chrono::steady_clock::time_point last_rx{};  // last bytes received on the current connection

  explicit Impl(ClientOptions o) : options(std::move(o)), decoder(options.max_frame) {
    if (options.tls.enabled) tls_context = tls::client_context(options.tls);
  }

  std::string next_endpoint() {
    if (!redirect.empty()) return redirect;
    if (options.endpoints.empty()) return "";
    return options.endpoints[endpoint_index % options.endpoints.size()];
  }

  void fail_all(const std::string& code, const std::string& message) {
    auto pending = std::move(inflight);
    inflight.clear();
    for (auto& [id, call] : pending) call.cb(kv_error(code, message), Json());
    queued.clear();
  }

  // Fails the calls past their deadline (the outcome of a write among them is unknown: callers retry idempotently)
  // and leaves a connection that stayed silent since the oldest of them was sent.
  void expire_calls() {
    auto now = std::chrono::steady_clock::now();
    std::vector<Call> expired;
    for (auto it = inflight.begin(); it != inflight.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second));
        it = inflight.erase(it);
      } else {
        ++it;
      }
    }
    if (expired.empty()) return;
    auto oldest = expired.front().sent;
    for (auto& call : expired) {
      oldest = std::min(oldest, call.sent);
      auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline - call.sent).count();
      call.cb(kv_error(code::kUnavailable, "'" + call.op + "' got no answer within " + std::to_string(waited) + " ms"),
              Json());
    }
    drop_if_silent(oldest);
  }

  void arm_deadline_timer() {
    if (deadline_armed || inflight.empty() || closing) return;
    deadline_armed = true;
    deadline_timer.expires_after(std::chrono::milliseconds(100));
    std::weak_ptr<Impl> weak = shared_from_this();  // a timer must not keep a closed client alive
    deadline_timer.async_wait([weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!self) return;
      self->deadline_armed = false;
      if (ec || self->closing) return;
      self->expire_calls();
      self->arm_deadline_timer();
    });
  }

  void disconnect(const std::string& why) {
    ++generation;
    boost::system::error_code ec;
    socket.close(ec);
    if (stream) stream->close();
    stream.reset();
    connect_timer.cancel();
    state = State::kIdle;
    ready = false;
    writing = false;
    write_pending.clear();
    write_inflight.clear();
    decoder = FrameDecoder(options.max_frame);
    // Rotate so the next attempt tries another replica.
    if (redirect.empty()) ++endpoint_index;
    redirect.clear();
    fail_all(code::kUnavailable, why);
  }

  void connect() {
    if (state != State::kIdle || closing) return;
    std::string ep = next_endpoint();
    if (ep.empty()) {
      fail_all(code::kUnavailable, "no kv endpoints configured");
      return;
    }
    {
      std::lock_guard lock(endpoint_mu);
      current_endpoint = ep;
    }
    state = State::kConnecting;
    auto gen = ++generation;
    auto colon = ep.rfind(':');
    std::string host = host_of(ep);
    std::string port = colon == std::string::npos ? "" : ep.substr(colon + 1);
    auto self = shared_from_this();
    connect_timer.expires_after(options.connect_timeout);
    connect_timer.async_wait([self, gen, ep](boost::system::error_code ec) {
      if (ec || gen != self->generation || self->state == State::kReady) return;
      self->disconnect("connecting to kv at " + ep + " timed out");
    });
    resolver.async_resolve(host, port, [self, gen, ep](boost::system::error_code ec, tcp::resolver::results_type r) {
      if (gen != self->generation) return;
      if (ec) {
        self->disconnect("resolving kv address " + ep + ": " + ec.message());
        return;
      }
      asio::async_connect(self->socket, r, [self, gen, ep](boost::system::error_code ec, const tcp::endpoint&) {
        if (gen != self->generation) return;
        if (ec) {
          self->disconnect("connecting to kv at " + ep + ": " + ec.message());
          return;
        }
        boost::system::error_code ignored;
        self->socket.set_option(tcp::no_delay(true), ignored);
        if (!self->tls_context) {
          self->stream = std::make_shared<Stream>(std::move(self->socket));
          self->send_hello(gen);
          return;
        }
        self->start_tls(gen, ep);
      });
    });
  }

  void start_tls(uint64_t gen, const std::string& ep) {
    stream = std::make_shared<Stream>(std::move(socket), tls_context);
    std::string name = options.tls.server_name.empty() ? host_of(ep) : options.tls.server_name;
    auto* tls = stream->tls();
    // SNI for servers behind a name-routing proxy, and the name the certificate must carry (a DNS name or an IP).
    if (!name.empty() && !is_ip(name)) SSL_set_tlsext_host_name(tls->native_handle(), name.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(name));
    auto self = shared_from_this();
    tls->async_handshake(asio::ssl::stream_base::client, [self, gen, ep, name, keep = stream](boost::system::error_code ec) {
      if (gen != self->generation) return;
      if (ec) {
        self->disconnect("TLS handshake with kv at " + ep + " (verifying '" + name + "') failed: " +
                         tls::last_error(ec.message()) + " (does the kv serve TLS, and is its certificate from the "
                         "CA given and for that name?)");
        return;
      }
      self->send_hello(gen);
    });
  }

  void send_hello(uint64_t gen) {
    state = State::kHello;
    write(encode_frame(FrameType::kHello, 0,
                       encode_body(Json{{"version", kProtocolVersion}, {"token", options.token}, {"client", options.name}})));
    read(gen);
  }

  static std::string host_of(const std::string& ep) {
    auto colon = ep.rfind(':');
    std::string host = colon == std::string::npos ? ep : ep.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    return host;
  }

  static bool is_ip(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
  }

  void write(std::string frame) {
    write_pending += frame;
    if (!writing) flush();
  }

  void flush() {
    if (write_pending.empty()) {
      writing = false;
      return;
    }
    writing = true;
    write_inflight.swap(write_pending);
    write_pending.clear();
    auto self = shared_from_this();
    auto gen = generation;
    stream->async_write(asio::buffer(write_inflight), [self, gen, keep = stream](boost::system::error_code ec, size_t) {
      if (gen != self->generation) return;
      self->write_inflight.clear();
      if (ec) {
        self->disconnect("writing to kv: " + ec.message());
        return;
      }
      self->flush();
    });
  }

  void read(uint64_t gen) {
    auto self = shared_from_this();
    stream->async_read_some(asio::buffer(read_buf), [self, gen, keep = stream](boost::system::error_code ec, size_t n) {
      if (gen != self->generation) return;
      if (ec) {
        self->disconnect("kv connection lost: " + ec.message());
        return;
      }
      self->last_rx = std::chrono::steady_clock::now();
      self->decoder.feed(self->read_buf.data(), n);
      Frame f;
      while (gen == self->generation) {
        auto st = self->decoder.next(f);
        if (st == FrameDecoder::Status::kNeedMore) break;
        if (st == FrameDecoder::Status::kError) {
          self->disconnect("bad frame from kv: " + self->decoder.error());
          return;
        }
        self->on_frame(f);
      }
      if (gen == self->generation) self->read(gen);
    });
  }

  void on_frame(const Frame& f) {
    Json body;
    try {
      body = decode_body(f.body);
    } catch (const std::exception& e) {
      disconnect(std::string("kv sent a body that is not MessagePack: ") + e.what());
      return;
    }
    switch (f.type) {
      case FrameType::kWelcome: {
        state = State::kReady;
        ready = true;
        connect_timer.cancel();
        auto waiting = std::move(queued);
        queued.clear();
        if (connect_calls)
          for (auto& c : connect_calls()) submit(c.op, std::move(c.args), std::move(c.cb), options.call_timeout);
        for (auto& [id, frame] : waiting) write(std::move(frame));
        if (on_connect) on_connect();
        return;
      }
      case FrameType::kResponse: {
        auto it = inflight.find(f.id);
        if (it == inflight.end()) return;  // timed out already
        auto cb = std::move(it->second.cb);
        inflight.erase(it);
        if (body.value("ok", false)) {
          cb(nullptr, body.contains("result") ? body["result"] : Json::object());
        } else {
          Json err = body.contains("error") ? body["error"] : Json::object();
          std::string code = err.value("code", code::kInternal);
          if (code == code::kNotLeader && err.contains("leader") && err["leader"].is_string() &&
              !err["leader"].get<std::string>().empty())
            redirect = err["leader"].get<std::string>();
          cb(kv_error(code, err.value("message", "unknown error"), err), Json());
          if (!redirect.empty() && code == code::kNotLeader) {
            auto target = redirect;
            disconnect("redirected to the leader at " + target);
            redirect = target;
          }
        }
        return;
      }
      case FrameType::kBump:
        if (on_bump) on_bump(body);
        return;
      case FrameType::kError: {
        std::string code = body.value("code", code::kProtocol);
        std::string message = body.value("message", "the kv closed the connection");
        fail_all(code, message);
        disconnect(code + ": " + message);
        return;
      }
      default:
        disconnect("unexpected frame type from kv");
        return;
    }
  }

  void submit(const std::string& op, Json args, Callback cb, std::chrono::milliseconds timeout) {
    if (closing) {
      cb(kv_error(code::kUnavailable, "client is closed"), Json());
      return;
    }
    uint64_t id = next_id++;
    auto now = std::chrono::steady_clock::now();
    inflight.emplace(id, Call{std::move(cb), op, now, now + timeout});
    arm_deadline_timer();
    std::string frame = encode_frame(FrameType::kRequest, id, encode_body(Json{{"op", op}, {"args", std::move(args)}}));
    if (frame.size() > options.max_frame + kLengthSize) {
      auto it = inflight.find(id);
      auto c = std::move(it->second.cb);
      inflight.erase(it);
      c(kv_error(code::kTooLarge, "request of " + std::to_string(frame.size()) + " bytes exceeds the frame limit"),
        Json());
      return;
    }
    if (state == State::kReady) {
      write(std::move(frame));
    } else {
      queued.emplace_back(id, std::move(frame));
      connect();
    }
  }

  void cancel(uint64_t id) { inflight.erase(id); }

  // A replica that is frozen or cut off keeps its TCP connection open; leave it when it stayed silent for a
  // whole attempt, so the retry can reach the new leader.
  void drop_if_silent(std::chrono::steady_clock::time_point since) {
    if (state != State::kIdle && last_rx < since) disconnect("the kv did not answer in time; trying another replica");
  }
};

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

Client::~Client() { close(); }

void Client::close() {
  if (!impl_ || impl_->closing.exchange(true)) return;
  auto impl = impl_;
  asio::post(impl->io, [impl] {
    impl->disconnect("client closed");
    impl->work.reset();
    impl->io.stop();
  });
  if (impl->thread.joinable()) {
    if (impl->thread.get_id() == std::this_thread::get_id()) {
      impl->thread.detach();
    } else {
      impl->thread.join();
      // io.stop() left the completions of what disconnect() cancelled (the read, timers, a resolve) and any call
      // posted meanwhile in the queue, each holding the Impl that owns the queue: run them now (each sees
      // `closing`; a late call is answered "client is closed"), or the Impl, its sockets and its resolver thread
      // would never be freed. A gateway closes a client for every credential it evicts.
      impl->io.restart();
      impl->io.poll();
    }
  }
}

void Client::call_async(const std::string& op, Json args, Callback cb, std::chrono::milliseconds timeout) {
  auto impl = impl_;
  if (timeout.count() <= 0) timeout = impl->options.call_timeout;
  asio::post(impl->io, [impl, op, args = std::move(args), cb = std::move(cb), timeout]() mutable {
    impl->submit(op, std::move(args), std::move(cb), timeout);
  });
}

Json Client::call(const std::string& op, Json args, CallOptions options) {
  auto timeout = options.timeout.count() > 0 ? options.timeout : impl_->options.call_timeout;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto backoff = std::chrono::milliseconds(20);
  // A retried call gives each attempt a bounded time, so a silent replica does not eat the whole deadline.
  auto attempt_timeout = options.retry ? std::max<std::chrono::milliseconds>(impl_->options.connect_timeout * 2,
                                                                             std::chrono::milliseconds(500))
                                       : timeout;
  while (true) {
    auto sent = std::chrono::steady_clock::now();
    auto promise = std::make_shared<std::promise<Json>>();
    auto future = promise->get_future();
    auto attempt_deadline = std::min(deadline, sent + attempt_timeout);
    call_async(
        op, args,
        [promise](std::exception_ptr e, Json result) {
          if (e) {
            promise->set_exception(e);
          } else {
            promise->set_value(std::move(result));
          }
        },
        std::max(std::chrono::milliseconds(1),
                 std::chrono::duration_cast<std::chrono::milliseconds>(attempt_deadline - sent)));
    if (future.wait_until(attempt_deadline) != std::future_status::ready) {
      // The callback may still fire later; the promise is shared so that is harmless.
      auto impl = impl_;
      asio::post(impl->io, [impl, sent] { impl->drop_if_silent(sent); });
      if (!options.retry || std::chrono::steady_clock::now() + backoff >= deadline)
        throw KvError(code::kUnavailable, "'" + op + "' timed out after " + std::to_string(timeout.count()) + " ms");
      std::this_thread::sleep_for(backoff);  // backoff between attempts of a retried call
      backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
      continue;
    }
    try {
      return future.get();
    } catch (const KvError& e) {
      // not_leader means the request was not executed, so following the redirect is always safe; other
      // transport failures are ambiguous and retried only when the caller says the call is idempotent.
      bool redirect = e.code() == code::kNotLeader;
      bool transient = e.code() == code::kUnavailable;
      if (!(redirect || (options.retry && transient)) || std::chrono::steady_clock::now() + backoff >= deadline) throw;
    }
    std::this_thread::sleep_for(backoff);  // backoff between attempts of a retried call, not test synchronisation
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

void Client::set_bump_handler(std::function<void(const Json&)> handler) {
  auto impl = impl_;
  asio::post(impl->io, [impl, h = std::move(handler)]() mutable { impl->on_bump = std::move(h); });
}

void Client::set_connect_handler(std::function<void()> handler) {
  auto impl = impl_;
  asio::post(impl->io, [impl, h = std::move(handler)]() mutable { impl->on_connect = std::move(h); });
}

void Client::set_token(std::string token) {
  auto impl = impl_;
  asio::post(impl->io, [impl, t = std::move(token)]() mutable { impl->options.token = std::move(t); });
}

void Client::set_connect_calls(std::function<std::vector<ConnectCall>()> make) {
  auto impl = impl_;
  asio::post(impl->io, [impl, m = std::move(make)]() mutable { impl->connect_calls = std::move(m); });
}

bool Client::connected() const { return impl_->ready; }

std::string Client::endpoint() const {
  std::lock_guard lock(impl_->endpoint_mu);
  return impl_->current_endpoint.empty() && !impl_->options.endpoints.empty() ? impl_->options.endpoints.front()
                                                                              : impl_->current_endpoint;
}

}  // namespace gasoline::rpc
