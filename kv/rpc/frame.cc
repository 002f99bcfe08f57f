#include "kv/rpc/frame.h"

namespace gasoline::rpc {
namespace {
void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_be(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
}  // namespace

bool valid_frame_type(uint8_t t) { return t >= 1 && t <= 6; }

std::string encode_frame(FrameType type, uint64_t id, std::string_view body) {
  std::string out;
  out.reserve(kLengthSize + kHeaderSize + body.size());
  put_be(out, kHeaderSize + body.size(), 4);
  out.push_back(static_cast<char>(type));
  put_be(out, id, 8);
  out.append(body);
  return out;
}

FrameDecoder::Status FrameDecoder::next(Frame& out) {
  if (!error_.empty()) return Status::kError;
  size_t avail = buf_.size() - pos_;
  if (avail < kLengthSize) return Status::kNeedMore;
  const char* p = buf_.data() + pos_;
  uint64_t len = get_be(p, 4);
  if (len < kHeaderSize) {
    error_ = "frame length " + std::to_string(len) + " is shorter than the 9-byte header";
    return Status::kError;
  }
  if (len > max_frame_) {
    error_ = "frame of " + std::to_string(len) + " bytes exceeds the limit of " + std::to_string(max_frame_);
    return Status::kError;
  }
  // The length alone can be refused early, but the type byte must have arrived before it is judged: with exactly
  // the 4 length bytes buffered, p[4] is std::string's terminating NUL, read as "unknown frame type 0".
  if (avail < kLengthSize + 1) return Status::kNeedMore;
  uint8_t type = static_cast<uint8_t>(p[4]);
  if (!valid_frame_type(type)) {
    error_ = "unknown frame type " + std::to_string(type);
    return Status::kError;
  }
  if (avail < kLengthSize + len) return Status::kNeedMore;
  out.type = static_cast<FrameType>(type);
  out.id = get_be(p + 5, 8);
  out.body.assign(p + kLengthSize + kHeaderSize, len - kHeaderSize);
  pos_ += kLengthSize + len;
  // Compact once the consumed prefix dominates, so a long-lived connection doesn't grow its buffer.
  if (pos_ > 64 * 1024 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return Status::kFrame;
}

}  // namespace gasoline::rpc
