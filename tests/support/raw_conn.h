#pragma once
// A raw TCP connection to a kv for tests that send what the client library never would (malformed frames,
// requests pipelined behind the hello): bytes out, frames (or the close) in, with deadlines.
#include "kv/rpc/frame.h"
#include "kv/rpc/protocol.h"

#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gasoline::testing {

class RawConn {
 public:
  explicit RawConn(const std::string& address) : decoder_(SIZE_MAX) {
    auto colon = address.rfind(':');
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address(address.substr(0, colon)),
                                      static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    socket_.connect(ep);
  }

  void send(std::string_view bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()), ec);
  }

  struct Read {
    std::optional<rpc::Frame> frame;
    bool closed = false;
    bool timed_out = false;
  };
  Read next(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      rpc::Frame f;
      auto st = decoder_.next(f);
      if (st == rpc::FrameDecoder::Status::kFrame) return Read{f, false, false};
      if (st == rpc::FrameDecoder::Status::kError) throw std::runtime_error("server sent a bad frame");
      if (eof_) return Read{std::nullopt, true, false};
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) return Read{std::nullopt, false, true};
      bool done = false;
      boost::system::error_code ec;
      size_t n = 0;
      socket_.async_read_some(boost::asio::buffer(buf_), [&](boost::system::error_code e, size_t k) {
        ec = e;
        n = k;
        done = true;
      });
      io_.restart();
      io_.run_for(left);
      if (!done) {
        socket_.cancel();
        io_.restart();
        io_.run();
      }
      if (n > 0) decoder_.feed(buf_.data(), n);
      if (ec && ec != boost::asio::error::operation_aborted) eof_ = true;
    }
  }

  // Reads the error frame the server sends before closing, then the close.
  rpc::Json expect_error_then_close() {
    auto r = next();
    if (!r.frame) throw std::runtime_error(r.closed ? "closed without an error frame" : "no error frame in time");
    if (r.frame->type != rpc::FrameType::kError)
      throw std::runtime_error("expected an error frame, got type " + std::to_string(static_cast<int>(r.frame->type)));
    auto body = rpc::Json::from_msgpack(r.frame->body);
    auto after = next();
    if (!after.closed) throw std::runtime_error("connection not closed after the error frame");
    return body;
  }

  rpc::Json response(uint64_t id) {
    auto r = next();
    if (!r.frame) throw std::runtime_error(r.closed ? "closed instead of answering" : "no response in time");
    if (r.frame->type != rpc::FrameType::kResponse)
      throw std::runtime_error("expected a response, got type " + std::to_string(static_cast<int>(r.frame->type)));
    if (r.frame->id != id) throw std::runtime_error("response id " + std::to_string(r.frame->id));
    return rpc::Json::from_msgpack(r.frame->body);
  }

  void hello(const std::string& token) {
    send(rpc::encode_frame(rpc::FrameType::kHello, 0,
                           pack(rpc::Json{{"version", rpc::kProtocolVersion}, {"token", token}})));
    auto r = next();
    if (!r.frame || r.frame->type != rpc::FrameType::kWelcome) throw std::runtime_error("no welcome");
  }

  static std::string pack(const rpc::Json& j) {
    std::string out;
    rpc::Json::to_msgpack(j, out);
    return out;
  }
  static std::string request(uint64_t id, const std::string& op, const rpc::Json& args = rpc::Json::object()) {
    return rpc::encode_frame(rpc::FrameType::kRequest, id, pack(rpc::Json{{"op", op}, {"args", args}}));
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_{io_};
  rpc::FrameDecoder decoder_;
  std::array<char, 65536> buf_{};
  bool eof_ = false;
};

}  // namespace gasoline::testing
