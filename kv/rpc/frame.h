#pragma once
// Wire framing (docs/protocol.md, "Framing"):
//
//   +-----------+---------+---------------+---------------------+
//   | len: u32  | type:u8 | request id:u64| body: MessagePack   |
//   +-----------+---------+---------------+---------------------+
//   len counts everything after itself (type + id + body), big-endian like the id.
//
// Pure: no sockets. The decoder is what the fuzz target exercises.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gasoline::rpc {

enum class FrameType : uint8_t {
  kHello = 1,     // client → server: {version, token, client}
  kWelcome = 2,   // server → client: {version, server}
  kRequest = 3,   // client → server: {op, args}
  kResponse = 4,  // server → client: {ok: true, result} | {ok: false, error: {code, message, ...}}
  kBump = 5,      // server → client push on a worker stream: {pool, due}
  kError = 6,     // server → client, then the connection closes: {code, message}
};
bool valid_frame_type(uint8_t t);

inline constexpr size_t kLengthSize = 4;
inline constexpr size_t kHeaderSize = 1 + 8;  // after the length
inline constexpr size_t kDefaultMaxFrame = 16 * 1024 * 1024;

struct Frame {
  FrameType type = FrameType::kRequest;
  uint64_t id = 0;
  std::string body;
};

std::string encode_frame(FrameType type, uint64_t id, std::string_view body);

// Incremental decoder: feed bytes as they arrive, then take frames out.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}

  enum class Status { kFrame, kNeedMore, kError };

  void feed(const char* data, size_t n) { buf_.append(data, n); }
  // kFrame fills `out`; kError is sticky and error() says why (the connection must then be closed).
  Status next(Frame& out);
  const std::string& error() const { return error_; }
  size_t buffered() const { return buf_.size() - pos_; }
  // Raises (or lowers) the cap for frames not decoded yet: a connection gets the full cap only once it
  // authenticated.
  void set_max_frame(size_t max_frame) { max_frame_ = max_frame; }

 private:
  size_t max_frame_;
  std::string buf_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace gasoline::rpc
