#include "kv/raft/transport.h"

#include "common/log.h"

#include <cstdint>
#include <cstring>
#include <list>
#include <memory>

namespace gasoline::raft {
namespace {

constexpr uint64_t kHandshakeVersion = 1;
constexpr size_t kMaxAddress = 1024;

void put64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

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

struct Transport;

// One outgoing connection attempt: resolve → connect → write handshake → hand the stream to libraft.
struct Connect {
  Transport* t = nullptr;
  raft_uv_connect* req = nullptr;
  raft_uv_connect_cb cb = nullptr;
  std::string address;
  uv_getaddrinfo_t resolve{};
  uv_tcp_t* tcp = nullptr;
  uv_connect_t connect{};
  uv_write_t write{};
  std::string handshake;
  bool canceled = false;
  bool resolving = false;
  int status = 0;  // handed to libraft once the handle is closed
  std::list<Connect*>::iterator pos;
};

// One incoming connection until its handshake has been read.
struct Incoming {
  Transport* t = nullptr;
  uv_tcp_t* tcp = nullptr;
  std::string buf;
  std::list<Incoming*>::iterator pos;
};

struct Transport {
  raft_uv_transport* self = nullptr;
  uv_loop_t* loop = nullptr;
  raft_id id = 0;
  std::string address;
  std::string bind_address;
  uv_tcp_t listener{};
  bool listening = false;
  raft_uv_accept_cb accept_cb = nullptr;
  std::list<Connect*> connects;
  std::list<Incoming*> incoming;
  raft_uv_transport_close_cb close_cb = nullptr;
  int closing_handles = 0;
  bool closing = false;
};

void maybe_closed(Transport* t) {
  if (t->closing && t->closing_handles == 0 && t->connects.empty() && t->close_cb) {
    auto cb = t->close_cb;
    t->close_cb = nullptr;
    cb(t->self);
  }
}

void finish_connect(Connect* c) {
  Transport* t = c->t;
  t->connects.erase(c->pos);
  c->cb(c->req, nullptr, c->status);
  delete c;
  maybe_closed(t);
}

// Finishes a connect attempt with an error: the handle (if any) is closed first, then libraft is told.
void fail_connect(Connect* c, int status) {
  c->status = status;
  if (!c->tcp) return finish_connect(c);
  c->tcp->data = c;
  uv_close(reinterpret_cast<uv_handle_t*>(c->tcp), [](uv_handle_t* h) {
    auto* c = static_cast<Connect*>(h->data);
    delete reinterpret_cast<uv_tcp_t*>(h);
    c->tcp = nullptr;
    finish_connect(c);
  });
}

void on_written(uv_write_t* w, int status) {
  auto* c = static_cast<Connect*>(w->data);
  if (c->canceled) return fail_connect(c, RAFT_CANCELED);
  if (status != 0) return fail_connect(c, RAFT_NOCONNECTION);
  Transport* t = c->t;
  auto* stream = reinterpret_cast<uv_stream_t*>(c->tcp);
  c->tcp = nullptr;  // libraft owns the stream from here on
  t->connects.erase(c->pos);
  c->cb(c->req, stream, 0);
  delete c;
  maybe_closed(t);
}

// Raft's messages are small and latency-bound (an append result releases the leader's commit): without
// TCP_NODELAY, Nagle's algorithm holds a small write until the previous one is acknowledged.
void no_delay(uv_tcp_t* tcp) {
  if (int rv = uv_tcp_nodelay(tcp, 1); rv != 0)
    log::warn("could not set TCP_NODELAY on a raft connection", {{"error", uv_strerror(rv)}});
}

void on_connected(uv_connect_t* req, int status) {
  auto* c = static_cast<Connect*>(req->data);
  if (c->canceled) return fail_connect(c, RAFT_CANCELED);
  if (status != 0) return fail_connect(c, RAFT_NOCONNECTION);
  no_delay(c->tcp);
  c->handshake = encode_handshake(c->t->id, c->t->address);
  uv_buf_t buf = uv_buf_init(c->handshake.data(), static_cast<unsigned>(c->handshake.size()));
  c->write.data = c;
  if (uv_write(&c->write, reinterpret_cast<uv_stream_t*>(c->tcp), &buf, 1, on_written) != 0)
    fail_connect(c, RAFT_NOCONNECTION);
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
  if (rv != 0) fail_connect(c, RAFT_NOCONNECTION);
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
  in->t->incoming.erase(in->pos);
  in->t->closing_handles++;
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

void on_handshake_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* in = static_cast<Incoming*>(stream->data);
  if (n > 0) in->buf.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n < 0) return drop_incoming(in);
  size_t need = handshake_size(in->buf.data(), in->buf.size());
  if (need == SIZE_MAX) {
    log::warn("raft peer sent an invalid handshake; connection dropped");
    return drop_incoming(in);
  }
  if (need == 0 || in->buf.size() < need) return;
  if (in->buf.size() > need) {
    // libraft's peer writes nothing before the handshake completes; extra bytes would be lost here.
    log::warn("raft peer sent data before the handshake completed; connection dropped");
    return drop_incoming(in);
  }
  raft_id id = 0;
  std::string address;
  if (!decode_handshake(in->buf.data(), in->buf.size(), id, address)) return drop_incoming(in);
  uv_read_stop(stream);
  Transport* t = in->t;
  t->incoming.erase(in->pos);
  in->tcp->data = nullptr;
  auto* tcp = in->tcp;
  delete in;
  t->accept_cb(t->self, id, address.c_str(), reinterpret_cast<uv_stream_t*>(tcp));
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
  no_delay(in->tcp);
  // Read exactly the handshake's bytes: the peer's Raft messages follow at once, and they belong to libraft.
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(in->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* in = static_cast<Incoming*>(h->data);
        size_t need = handshake_size(in->buf.data(), in->buf.size());
        size_t want = need == 0 ? 24 - in->buf.size() : need == SIZE_MAX ? 1 : need - in->buf.size();
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
  const std::string& bind = t->bind_address.empty() ? t->address : t->bind_address;
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
  for (auto* c : t->connects) {
    c->canceled = true;
    if (c->resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&c->resolve));
    // A connect in progress finishes through its own callbacks, which see `canceled`.
  }
  maybe_closed(t);
}

}  // namespace

std::string encode_handshake(raft_id id, const std::string& address) {
  size_t padded = (address.size() + 1 + 7) / 8 * 8;
  std::string out;
  put64(out, kHandshakeVersion);
  put64(out, id);
  put64(out, padded);
  out.append(address);
  out.append(padded - address.size(), '\0');
  return out;
}

size_t handshake_size(const char* data, size_t n) {
  if (n < 24) return 0;
  if (get64(data) != kHandshakeVersion) return SIZE_MAX;
  uint64_t len = get64(data + 16);
  if (len == 0 || len > kMaxAddress || len % 8 != 0) return SIZE_MAX;
  return 24 + static_cast<size_t>(len);
}

bool decode_handshake(const char* data, size_t n, raft_id& id, std::string& address) {
  size_t need = handshake_size(data, n);
  if (need == 0 || need == SIZE_MAX || n < need) return false;
  id = get64(data + 8);
  const char* a = data + 24;
  size_t len = strnlen(a, need - 24);
  if (len == need - 24) return false;  // no NUL terminator
  address.assign(a, len);
  return true;
}

int transport_init(raft_uv_transport* t, uv_loop_t* loop, const std::string& bind_address) {
  auto* impl = new Transport;
  impl->self = t;
  impl->loop = loop;
  impl->bind_address = bind_address;
  t->impl = impl;
  t->init = do_init;
  t->listen = do_listen;
  t->connect = do_connect;
  t->close = do_close;
  return 0;
}

void transport_close(raft_uv_transport* t) {
  delete static_cast<Transport*>(t->impl);
  t->impl = nullptr;
}

}  // namespace gasoline::raft
