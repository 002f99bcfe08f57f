#include "kv/raft/transport.h"

#include "common/log.h"

#include "kv/raft/handshake.h"
#include "kv/raft/tls_pump.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <optional>
#include <set>

namespace gasoline::raft {
namespace {

namespace hs = handshake;

// Addresses in the Raft configuration are "raft_host:port/client_host:port"; only the part before '/' is dialled.
bool split_host_port(const std::string& configured, std::string& host, std::string& port) {
  std::string address = configured.substr(0, configured.find('/'));
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return true;
}

std::string remote_host(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "unknown";
  char name[64] = {0};
  if (addr.ss_family == AF_INET6)
    uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&addr), name, sizeof name);
  else
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), name, sizeof name);
  return name;
}

struct Transport;

// One outgoing connection attempt: resolve → connect → hello → read and check the listener's challenge → our
// proof → hand the stream to libraft.
struct Connect {
  Transport* t = nullptr;
  raft_uv_connect* req = nullptr;
  raft_uv_connect_cb cb = nullptr;
  std::string address;
  uv_getaddrinfo_t resolve{};
  uv_tcp_t* tcp = nullptr;
  uv_connect_t connect{};
  uv_timer_t* deadline = nullptr;
  hs::Hello hello;
  std::string challenge;
  bool canceled = false;
  bool resolving = false;
  bool handshaking = false;  // reading the challenge
  bool failed = false;
  int status = 0;  // handed to libraft once the handle is closed
  std::list<Connect*>::iterator pos;
};

// One incoming connection until its handshake has succeeded.
struct Incoming {
  Transport* t = nullptr;
  uv_tcp_t* tcp = nullptr;
  uv_timer_t* deadline = nullptr;
  std::string remote;
  std::string buf;
  std::optional<hs::Hello> hello;  // once read, `buf` collects the dialler's proof
  hs::Proof expected_proof{};
  std::list<Incoming*>::iterator pos;
};

struct Transport {
  raft_uv_transport* self = nullptr;
  uv_loop_t* loop = nullptr;
  raft_id id = 0;
  std::string address;
  TransportOptions options;
  uv_tcp_t listener{};
  bool listening = false;
  raft_uv_accept_cb accept_cb = nullptr;
  std::list<Connect*> connects;
  std::list<Incoming*> incoming;
  raft_uv_transport_close_cb close_cb = nullptr;
  int closing_handles = 0;
  bool closing = false;
  // (remote host, reason) pairs already logged: a refused peer retries every few hundred ms, and one line per
  // cause is what an operator needs; the metric counts every refusal.
  std::set<std::string> logged_refusals;
};

constexpr size_t kMaxLoggedRefusals = 1024;

void refused(Transport* t, const std::string& remote, const std::string& reason, const std::string& detail) {
  if (t->options.on_refused) t->options.on_refused(reason);
  if (t->logged_refusals.size() >= kMaxLoggedRefusals) return;
  if (!t->logged_refusals.insert(remote + "|" + reason).second) return;
  log::warn("raft handshake refused; further refusals of this peer for this reason are only counted "
            "(gasoline_kv_raft_handshakes_refused_total)",
            {{"remote", remote}, {"reason", reason}, {"detail", detail}});
  if (t->logged_refusals.size() == kMaxLoggedRefusals)
    log::warn("raft handshake refusals from too many peers; no more are logged, only counted");
}

void maybe_closed(Transport* t) {
  if (t->closing && t->closing_handles == 0 && t->connects.empty() && t->close_cb) {
    auto cb = t->close_cb;
    t->close_cb = nullptr;
    cb(t->self);
  }
}

void close_deadline(Transport* t, uv_timer_t*& timer) {
  if (!timer) return;
  uv_timer_stop(timer);
  t->closing_handles++;
  timer->data = t;
  uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) {
    auto* t = static_cast<Transport*>(h->data);
    delete reinterpret_cast<uv_timer_t*>(h);
    t->closing_handles--;
    maybe_closed(t);
  });
  timer = nullptr;
}

uv_timer_t* start_deadline(Transport* t, void* owner, uv_timer_cb cb) {
  auto* timer = new uv_timer_t;
  uv_timer_init(t->loop, timer);
  timer->data = owner;
  uv_timer_start(timer, cb, static_cast<uint64_t>(t->options.handshake_timeout.count()), 0);
  return timer;
}

// Writes all of `bytes` now or fails. Handshake messages are at most ~1 KiB on a fresh connection whose send
// buffer is empty, so a short write means a broken connection; writing synchronously also means no write request
// is in flight when the stream changes hands.
bool write_now(uv_tcp_t* tcp, const std::string& bytes) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  return uv_try_write(reinterpret_cast<uv_stream_t*>(tcp), &buf, 1) == static_cast<int>(bytes.size());
}

void finish_connect(Connect* c) {
  Transport* t = c->t;
  t->connects.erase(c->pos);
  c->cb(c->req, nullptr, c->status);
  delete c;
  maybe_closed(t);
}

// Finishes a connect attempt with an error: the handles (if any) are closed first, then libraft is told.
void fail_connect(Connect* c, int status) {
  if (c->failed) return;
  c->failed = true;
  c->status = status;
  close_deadline(c->t, c->deadline);
  if (!c->tcp) return finish_connect(c);
  c->tcp->data = c;
  uv_close(reinterpret_cast<uv_handle_t*>(c->tcp), [](uv_handle_t* h) {
    auto* c = static_cast<Connect*>(h->data);
    delete reinterpret_cast<uv_tcp_t*>(h);
    c->tcp = nullptr;
    finish_connect(c);
  });
}

// Raft's messages are small and latency-bound (an append result releases the leader's commit): without
// TCP_NODELAY, Nagle's algorithm holds a small write until the previous one is acknowledged.
//
// A peer can also vanish without a word: a Kubernetes pod that is replaced takes its IP address with it, and
// libraft only writes to its outgoing stream, so it neither reads the FIN of a peer that closed nor gets an RST
// from one that is gone; the kernel would retransmit to the dead address for many minutes while libraft believes
// the stream is fine and the replacement never hears from the leader. TCP_USER_TIMEOUT aborts a connection whose
// data stays unacknowledged for kPeerSilenceLimit, and keepalive probes do the same for an idle one; libraft then
// sees the error, reconnects, and the reconnect resolves the peer's name again (its new address).
constexpr int kPeerSilenceLimitMs = 5000;

void tune_socket(uv_tcp_t* tcp) {
  if (int rv = uv_tcp_nodelay(tcp, 1); rv != 0)
    log::warn("could not set TCP_NODELAY on a raft connection", {{"error", uv_strerror(rv)}});
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) != 0) return;
  const int user_timeout = kPeerSilenceLimitMs, on = 1, idle = 2, interval = 1, probes = 3;
  bool ok = setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) == 0 &&
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) == 0 &&
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) == 0 &&
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes) == 0;
  if (!ok)
    log::warn("could not bound how long a raft connection may stay silent; a vanished peer is noticed late",
              {{"error", std::strerror(errno)}});
}

// With TLS: the stream libraft gets is one end of a local socket pair, and a pump thread carries its bytes over TLS
// on a duplicate of the peer's socket; the TCP handle itself is closed. Without TLS: the TCP handle. Null when the
// pair cannot be made (the handle is closed then too).
uv_stream_t* stream_for_libraft(Transport* t, uv_tcp_t* tcp, bool dialler, const std::string& peer_address) {
  if (!t->options.tls) return reinterpret_cast<uv_stream_t*>(tcp);
  uv_os_fd_t fd = -1;
  int peer = uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) == 0 ? ::dup(fd) : -1;
  int pair[2] = {-1, -1};
  bool ok = peer >= 0 && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0;
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  uv_pipe_t* pipe = nullptr;
  if (ok) {
    // libraft frees the streams it is given with raft_free.
    pipe = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
    ok = pipe && uv_pipe_init(t->loop, pipe, 0) == 0 && uv_pipe_open(pipe, pair[0]) == 0;
  }
  if (!ok) {
    log::error("raft TLS: could not set up the local pair for a connection",
               {{"peer", peer_address}, {"error", std::strerror(errno)}});
    if (peer >= 0) ::close(peer);
    for (int p : pair)
      if (p >= 0) ::close(p);
    if (pipe) raft_free(pipe);
    return nullptr;
  }
  std::string host;
  std::string port;
  if (dialler) split_host_port(peer_address, host, port);
  start_tls_pump(peer, pair[1],
                 TlsPumpOptions{t->options.tls, dialler, host, t->options.handshake_timeout, t->options.on_tls_failed});
  return reinterpret_cast<uv_stream_t*>(pipe);
}

void on_challenge_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Connect*>(stream->data);
  if (n > 0) c->challenge.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (c->failed) return;
  if (n < 0) {
    // A listener that refused our proof, or one that went away: libraft retries on its own schedule.
    log::debug("raft peer closed the connection during the handshake",
               {{"address", c->address}, {"error", uv_strerror(static_cast<int>(n))}});
    return fail_connect(c, RAFT_NOCONNECTION);
  }
  if (c->challenge.size() < hs::kChallengeSize) return;
  Transport* t = c->t;
  hs::Nonce listener_nonce{};
  std::memcpy(listener_nonce.data(), c->challenge.data(), hs::kNonceSize);
  std::string_view listener_proof(c->challenge.data() + hs::kNonceSize, hs::kProofSize);
  try {
    if (!hs::proof_matches(hs::prove(t->options.secret, hs::Role::kListener, c->hello, listener_nonce),
                           listener_proof)) {
      refused(t, c->address, "listener_proof", "the peer we dialled does not hold the raft secret");
      return fail_connect(c, RAFT_NOCONNECTION);
    }
    auto proof = hs::prove(t->options.secret, hs::Role::kDialler, c->hello, listener_nonce);
    if (!write_now(c->tcp, std::string(reinterpret_cast<const char*>(proof.data()), proof.size())))
      return fail_connect(c, RAFT_NOCONNECTION);
  } catch (const std::exception& e) {
    log::error("raft handshake failed", {{"address", c->address}, {"error", e.what()}});
    return fail_connect(c, RAFT_NOCONNECTION);
  }
  uv_read_stop(stream);
  close_deadline(t, c->deadline);
  auto* tcp = c->tcp;
  c->tcp = nullptr;  // libraft owns the stream from here on
  tcp->data = nullptr;
  t->connects.erase(c->pos);
  uv_stream_t* out = stream_for_libraft(t, tcp, true, c->address);
  c->cb(c->req, out, out ? 0 : RAFT_NOCONNECTION);
  delete c;
  maybe_closed(t);
}

void on_connected(uv_connect_t* req, int status) {
  auto* c = static_cast<Connect*>(req->data);
  if (c->failed) return;
  if (c->canceled) return fail_connect(c, RAFT_CANCELED);
  if (status != 0) return fail_connect(c, RAFT_NOCONNECTION);
  tune_socket(c->tcp);
  try {
    c->hello = hs::Hello{c->t->id, c->t->address, hs::random_nonce()};
  } catch (const std::exception& e) {
    log::error("raft handshake failed", {{"address", c->address}, {"error", e.what()}});
    return fail_connect(c, RAFT_NOCONNECTION);
  }
  if (!write_now(c->tcp, hs::encode_hello(c->hello))) return fail_connect(c, RAFT_NOCONNECTION);
  c->handshaking = true;
  close_deadline(c->t, c->deadline);  // the connect's; the handshake gets its own
  c->deadline = start_deadline(c->t, c, [](uv_timer_t* timer) {
    auto* c = static_cast<Connect*>(timer->data);
    log::debug("raft peer did not answer the handshake in time", {{"address", c->address}});
    fail_connect(c, RAFT_NOCONNECTION);
  });
  // Read exactly the challenge: nothing else is sent to a dialler on this connection.
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(c->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<Connect*>(h->data);
        size_t want = std::max<size_t>(1, hs::kChallengeSize - std::min(c->challenge.size(), hs::kChallengeSize));
        *buf = uv_buf_init(new char[want], static_cast<unsigned>(want));
      },
      on_challenge_read);
}

void on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
  auto* c = static_cast<Connect*>(req->data);
  c->resolving = false;
  if (c->canceled || status != 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    if (!c->canceled)
      log::debug("raft peer address did not resolve", {{"address", c->address}, {"error", uv_strerror(status)}});
    return fail_connect(c, c->canceled ? RAFT_CANCELED : RAFT_NOCONNECTION);
  }
  c->tcp = new uv_tcp_t;
  uv_tcp_init(c->t->loop, c->tcp);
  c->tcp->data = c;
  c->connect.data = c;
  int rv = uv_tcp_connect(&c->connect, c->tcp, res->ai_addr, on_connected);
  uv_freeaddrinfo(res);
  if (rv != 0) return fail_connect(c, RAFT_NOCONNECTION);
  // The kernel retries the SYN to an address that is gone for about two minutes (tcp_syn_retries), and libraft
  // starts no other attempt to this peer meanwhile: a replica replaced by a pod with a new address would stay
  // unreachable that long (seen on the real node: each rolled kv replica took ~2 min to become Ready). Give up
  // after the handshake timeout instead; libraft's next attempt resolves the name again.
  c->deadline = start_deadline(c->t, c, [](uv_timer_t* timer) {
    auto* c = static_cast<Connect*>(timer->data);
    log::debug("raft peer did not accept the connection in time", {{"address", c->address}});
    fail_connect(c, RAFT_NOCONNECTION);
  });
}

int do_connect(raft_uv_transport* rt, raft_uv_connect* req, raft_id, const char* address, raft_uv_connect_cb cb) {
  auto* t = static_cast<Transport*>(rt->impl);
  std::string host, port;
  if (!split_host_port(address, host, port)) {
    std::snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE, "address '%s' must be host:port", address);
    return RAFT_NOCONNECTION;
  }
  auto* c = new Connect;
  c->t = t;
  c->req = req;
  c->cb = cb;
  c->address = address;
  req->cb = cb;
  c->resolve.data = c;
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->pos = t->connects.insert(t->connects.end(), c);
  c->resolving = true;
  int rv = uv_getaddrinfo(t->loop, &c->resolve, on_resolved, host.c_str(), port.c_str(), &hints);
  if (rv != 0) {
    t->connects.erase(c->pos);
    delete c;
    return RAFT_NOCONNECTION;
  }
  return 0;
}

void drop_incoming(Incoming* in) {
  Transport* t = in->t;
  t->incoming.erase(in->pos);
  close_deadline(t, in->deadline);
  t->closing_handles++;
  in->tcp->data = in;
  uv_close(reinterpret_cast<uv_handle_t*>(in->tcp), [](uv_handle_t* h) {
    auto* in = static_cast<Incoming*>(h->data);
    Transport* t = in->t;
    delete reinterpret_cast<uv_tcp_t*>(h);
    delete in;
    t->closing_handles--;
    maybe_closed(t);
  });
}

void refuse_incoming(Incoming* in, const std::string& reason, const std::string& detail) {
  refused(in->t, in->remote, reason, detail);
  drop_incoming(in);
}

// The listener's side: once the hello is complete, answer with our nonce and proof; once the dialler's proof is
// complete and right, hand the stream to libraft with the id and address the hello claimed.
void on_handshake_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* in = static_cast<Incoming*>(stream->data);
  if (n > 0) in->buf.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n < 0)
    return refuse_incoming(in, "closed", std::string("closed during the handshake: ") + uv_strerror(static_cast<int>(n)));
  Transport* t = in->t;
  if (!in->hello) {
    size_t need = hs::hello_size(in->buf.data(), in->buf.size());
    if (need == SIZE_MAX) return refuse_incoming(in, "malformed", "invalid hello header");
    if (need == 0 || in->buf.size() < need) return;
    std::string error;
    auto hello = hs::decode_hello(in->buf.data(), in->buf.size(), error);
    if (!hello) return refuse_incoming(in, "malformed", error);
    try {
      auto nonce = hs::random_nonce();
      in->expected_proof = hs::prove(t->options.secret, hs::Role::kDialler, *hello, nonce);
      auto challenge = hs::encode_challenge(nonce, hs::prove(t->options.secret, hs::Role::kListener, *hello, nonce));
      if (!write_now(in->tcp, challenge)) return refuse_incoming(in, "closed", "could not send the challenge");
    } catch (const std::exception& e) {
      log::error("raft handshake failed", {{"remote", in->remote}, {"error", e.what()}});
      return drop_incoming(in);
    }
    in->hello = std::move(hello);
    in->buf.clear();
    return;
  }
  if (in->buf.size() < hs::kProofSize) return;
  if (!hs::proof_matches(in->expected_proof, in->buf))
    return refuse_incoming(in, "bad_proof",
                           "claimed raft id " + std::to_string(in->hello->id) + " at '" + in->hello->address +
                               "' without the raft secret");
  uv_read_stop(stream);
  t->incoming.erase(in->pos);
  close_deadline(t, in->deadline);
  auto* tcp = in->tcp;
  tcp->data = nullptr;
  raft_id id = in->hello->id;
  std::string address = in->hello->address;
  delete in;
  if (uv_stream_t* out = stream_for_libraft(t, tcp, false, address)) t->accept_cb(t->self, id, address.c_str(), out);
}

void on_connection(uv_stream_t* server, int status) {
  auto* t = static_cast<Transport*>(server->data);
  if (status != 0 || t->closing) return;
  auto* in = new Incoming;
  in->t = t;
  in->tcp = new uv_tcp_t;
  uv_tcp_init(t->loop, in->tcp);
  in->tcp->data = in;
  in->pos = t->incoming.insert(t->incoming.end(), in);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(in->tcp)) != 0) return drop_incoming(in);
  in->remote = remote_host(in->tcp);
  // A flood of connections that never finish costs a bounded amount: the oldest pending one makes room.
  if (t->incoming.size() > t->options.max_pending_handshakes)
    refuse_incoming(t->incoming.front(), "overload", "too many handshakes in progress; the oldest was dropped");
  tune_socket(in->tcp);
  in->deadline = start_deadline(t, in, [](uv_timer_t* timer) {
    refuse_incoming(static_cast<Incoming*>(timer->data), "timeout", "handshake not finished in time");
  });
  // Read exactly the handshake's bytes: the peer's Raft messages follow at once, and they belong to libraft.
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(in->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* in = static_cast<Incoming*>(h->data);
        size_t want = 1;
        if (in->hello) {
          want = hs::kProofSize - std::min(in->buf.size(), hs::kProofSize);
        } else {
          size_t need = hs::hello_size(in->buf.data(), in->buf.size());
          want = need == 0 ? hs::kHeaderSize - in->buf.size() : need == SIZE_MAX ? 1 : need - in->buf.size();
        }
        want = std::max<size_t>(want, 1);
        *buf = uv_buf_init(new char[want], static_cast<unsigned>(want));
      },
      on_handshake_read);
}

int do_init(raft_uv_transport* rt, raft_id id, const char* address) {
  auto* t = static_cast<Transport*>(rt->impl);
  t->id = id;
  t->address = address;
  return 0;
}

int do_listen(raft_uv_transport* rt, raft_uv_accept_cb cb) {
  auto* t = static_cast<Transport*>(rt->impl);
  t->accept_cb = cb;
  std::string host, port;
  const std::string& bind = t->options.bind_address.empty() ? t->address : t->options.bind_address;
  if (!split_host_port(bind, host, port)) {
    std::snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE, "bind address '%s' must be host:port", bind.c_str());
    return RAFT_INVALID;
  }
  // Binding needs an address now, so resolve synchronously once (a host name of this very pod).
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  struct addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    std::snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE, "cannot resolve bind address '%s'", bind.c_str());
    return RAFT_INVALID;
  }
  uv_tcp_init(t->loop, &t->listener);
  t->listener.data = t;
  int rv = uv_tcp_bind(&t->listener, res->ai_addr, 0);
  freeaddrinfo(res);
  if (rv == 0) rv = uv_listen(reinterpret_cast<uv_stream_t*>(&t->listener), 128, on_connection);
  if (rv != 0) {
    std::snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE, "listen on '%s': %s", bind.c_str(), uv_strerror(rv));
    t->closing_handles++;
    uv_close(reinterpret_cast<uv_handle_t*>(&t->listener), [](uv_handle_t* h) {
      auto* t = static_cast<Transport*>(h->data);
      t->closing_handles--;
    });
    return RAFT_IOERR;
  }
  t->listening = true;
  return 0;
}

void do_close(raft_uv_transport* rt, raft_uv_transport_close_cb cb) {
  auto* t = static_cast<Transport*>(rt->impl);
  t->closing = true;
  t->close_cb = cb;
  if (t->listening) {
    t->listening = false;
    t->closing_handles++;
    uv_close(reinterpret_cast<uv_handle_t*>(&t->listener), [](uv_handle_t* h) {
      auto* t = static_cast<Transport*>(h->data);
      t->closing_handles--;
      maybe_closed(t);
    });
  }
  for (auto* in : std::list<Incoming*>(t->incoming)) drop_incoming(in);
  for (auto* c : std::list<Connect*>(t->connects)) {
    c->canceled = true;
    if (c->resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&c->resolve));
    // A handshake waiting for the listener's challenge ends now rather than at its deadline; a connect in
    // progress finishes through its own callbacks, which see `canceled`.
    if (c->handshaking) fail_connect(c, RAFT_CANCELED);
  }
  maybe_closed(t);
}

}  // namespace

int transport_init(raft_uv_transport* t, uv_loop_t* loop, TransportOptions options) {
  auto* impl = new Transport;
  impl->self = t;
  impl->loop = loop;
  impl->options = std::move(options);
  t->impl = impl;
  t->init = do_init;
  t->listen = do_listen;
  t->connect = do_connect;
  t->close = do_close;
  return 0;
}

void transport_close(raft_uv_transport* t) {
  auto* impl = static_cast<Transport*>(t->impl);
  if (impl && impl->options.tls)
    if (size_t left = wait_for_tls_pumps(std::chrono::seconds(2)))
      log::warn("raft TLS connections still open at shutdown", {{"connections", left}});
  delete impl;
  t->impl = nullptr;
}

}  // namespace gasoline::raft
