#include "common/msgpack.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace gasoline::msgpack {

// --- Writer ------------------------------------------------------------------------------------------------

void Writer::be(uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Writer::unsigned_integer(uint64_t v) {
  if (v < 128) {
    out_.push_back(static_cast<char>(v));
  } else if (v <= 0xff) {
    out_.push_back(static_cast<char>(0xcc));
    be(v, 1);
  } else if (v <= 0xffff) {
    out_.push_back(static_cast<char>(0xcd));
    be(v, 2);
  } else if (v <= 0xffffffff) {
    out_.push_back(static_cast<char>(0xce));
    be(v, 4);
  } else {
    out_.push_back(static_cast<char>(0xcf));
    be(v, 8);
  }
}

void Writer::integer(int64_t v) {
  if (v >= 0) return unsigned_integer(static_cast<uint64_t>(v));
  auto u = static_cast<uint64_t>(v);
  if (v >= -32) {
    out_.push_back(static_cast<char>(u & 0xff));
  } else if (v >= std::numeric_limits<int8_t>::min()) {
    out_.push_back(static_cast<char>(0xd0));
    be(u, 1);
  } else if (v >= std::numeric_limits<int16_t>::min()) {
    out_.push_back(static_cast<char>(0xd1));
    be(u, 2);
  } else if (v >= std::numeric_limits<int32_t>::min()) {
    out_.push_back(static_cast<char>(0xd2));
    be(u, 4);
  } else {
    out_.push_back(static_cast<char>(0xd3));
    be(u, 8);
  }
}

void Writer::floating(double v) {
  // nlohmann writes a float32 whenever it holds the value exactly; doing the same keeps the bytes identical.
  if (v >= static_cast<double>(std::numeric_limits<float>::lowest()) &&
      v <= static_cast<double>(std::numeric_limits<float>::max()) &&
      static_cast<double>(static_cast<float>(v)) == v) {
    out_.push_back(static_cast<char>(0xca));
    be(std::bit_cast<uint32_t>(static_cast<float>(v)), 4);
  } else {
    out_.push_back(static_cast<char>(0xcb));
    be(std::bit_cast<uint64_t>(v), 8);
  }
}

void Writer::string(std::string_view s) {
  size_t n = s.size();
  if (n <= 31) {
    out_.push_back(static_cast<char>(0xa0 | n));
  } else if (n <= 0xff) {
    out_.push_back(static_cast<char>(0xd9));
    be(n, 1);
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(0xda));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(0xdb));
    be(n, 4);
  }
  out_.append(s);
}

void Writer::array_header(size_t n) {
  if (n <= 15) {
    out_.push_back(static_cast<char>(0x90 | n));
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(0xdc));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(0xdd));
    be(n, 4);
  }
}

void Writer::map_header(size_t n) {
  if (n <= 15) {
    out_.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(0xde));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(0xdf));
    be(n, 4);
  }
}

void Writer::binary(std::string_view bytes) {
  size_t n = bytes.size();
  if (n <= 0xff) {
    out_.push_back(static_cast<char>(0xc4));
    be(n, 1);
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(0xc5));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(0xc6));
    be(n, 4);
  }
  out_.append(bytes);
}

void Writer::strings(const std::vector<std::string>& v) {
  array_header(v.size());
  for (const auto& s : v) string(s);
}

void Writer::json(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return nil();
    case nlohmann::json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: return unsigned_integer(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float: return floating(j.get<double>());
    case nlohmann::json::value_t::string: return string(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::object:
      if (j.empty()) return map_header(0);
      break;
    default: break;
  }
  nlohmann::json::to_msgpack(j, nlohmann::detail::output_adapter<char>(out_));
}

// --- Reader ------------------------------------------------------------------------------------------------

void Reader::fail(std::string_view message) const {
  throw DecodeError(std::string(what_) + ": " + std::string(message) + " at byte " + std::to_string(base_ + pos_));
}

uint8_t Reader::byte() {
  if (pos_ >= bytes_.size()) fail("truncated");
  return static_cast<uint8_t>(bytes_[pos_++]);
}

uint64_t Reader::be(int bytes) {
  if (bytes_.size() - pos_ < static_cast<size_t>(bytes)) fail("truncated");
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(bytes_[pos_++]);
  return v;
}

std::string_view Reader::take(size_t n) {
  if (bytes_.size() - pos_ < n) fail("truncated");
  auto s = bytes_.substr(pos_, n);
  pos_ += n;
  return s;
}

Type Reader::peek() const {
  if (pos_ >= bytes_.size()) fail("truncated");
  auto b = static_cast<uint8_t>(bytes_[pos_]);
  if (b <= 0x7f || b >= 0xe0) return Type::kInt;
  if (b <= 0x8f) return Type::kMap;
  if (b <= 0x9f) return Type::kArray;
  if (b <= 0xbf) return Type::kString;
  switch (b) {
    case 0xc0: return Type::kNil;
    case 0xc2:
    case 0xc3: return Type::kBool;
    case 0xc4:
    case 0xc5:
    case 0xc6: return Type::kBinary;
    case 0xca:
    case 0xcb: return Type::kFloat;
    case 0xd9:
    case 0xda:
    case 0xdb: return Type::kString;
    case 0xdc:
    case 0xdd: return Type::kArray;
    case 0xde:
    case 0xdf: return Type::kMap;
    default: break;
  }
  if ((b >= 0xcc && b <= 0xd3)) return Type::kInt;
  if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) return Type::kExt;
  fail("invalid type byte 0xc1");
}

bool Reader::nil() {
  if (pos_ < bytes_.size() && static_cast<uint8_t>(bytes_[pos_]) == 0xc0) {
    ++pos_;
    return true;
  }
  return false;
}

size_t Reader::map_header() {
  uint8_t b = byte();
  if (b >= 0x80 && b <= 0x8f) return b & 0x0f;
  if (b == 0xde) return be(2);
  if (b == 0xdf) return be(4);
  --pos_;
  fail("expected a map");
}

size_t Reader::array_header() {
  uint8_t b = byte();
  if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
  if (b == 0xdc) return be(2);
  if (b == 0xdd) return be(4);
  --pos_;
  fail("expected an array");
}

std::string_view Reader::string() {
  uint8_t b = byte();
  if (b >= 0xa0 && b <= 0xbf) return take(b & 0x1f);
  if (b == 0xd9) return take(be(1));
  if (b == 0xda) return take(be(2));
  if (b == 0xdb) return take(be(4));
  --pos_;
  fail("expected a string");
}

std::string_view Reader::binary() {
  uint8_t b = byte();
  if (b == 0xc4) return take(be(1));
  if (b == 0xc5) return take(be(2));
  if (b == 0xc6) return take(be(4));
  --pos_;
  fail("expected binary bytes");
}

std::vector<std::string> Reader::strings() {
  std::vector<std::string> out(array_header());
  for (auto& s : out) s = string();
  return out;
}

bool Reader::boolean() {
  uint8_t b = byte();
  if (b == 0xc2) return false;
  if (b == 0xc3) return true;
  --pos_;
  fail("expected a boolean");
}

uint64_t Reader::unsigned_integer() {
  size_t start = pos_;
  uint8_t b = byte();
  if (b <= 0x7f) return b;
  switch (b) {
    case 0xcc: return be(1);
    case 0xcd: return be(2);
    case 0xce: return be(4);
    case 0xcf: return be(8);
    default: break;
  }
  pos_ = start;
  int64_t v = integer();
  if (v < 0) {
    pos_ = start;
    fail("expected a non-negative integer");
  }
  return static_cast<uint64_t>(v);
}

uint64_t Reader::unsigned_integer(uint64_t max) {
  size_t start = pos_;
  uint64_t v = unsigned_integer();
  if (v > max) {
    pos_ = start;
    fail(std::to_string(v) + " is out of range (at most " + std::to_string(max) + ")");
  }
  return v;
}

int64_t Reader::integer() {
  size_t start = pos_;
  uint8_t b = byte();
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return static_cast<int8_t>(b);
  switch (b) {
    case 0xcc: return static_cast<int64_t>(be(1));
    case 0xcd: return static_cast<int64_t>(be(2));
    case 0xce: return static_cast<int64_t>(be(4));
    case 0xcf: {
      uint64_t u = be(8);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        pos_ = start;
        fail("integer out of range");
      }
      return static_cast<int64_t>(u);
    }
    case 0xd0: return static_cast<int8_t>(be(1));
    case 0xd1: return static_cast<int16_t>(be(2));
    case 0xd2: return static_cast<int32_t>(be(4));
    case 0xd3: return static_cast<int64_t>(be(8));
    default: break;
  }
  pos_ = start;
  fail("expected an integer");
}

double Reader::floating() {
  if (pos_ < bytes_.size()) {
    auto b = static_cast<uint8_t>(bytes_[pos_]);
    if (b == 0xca) {
      ++pos_;
      return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(be(4))));
    }
    if (b == 0xcb) {
      ++pos_;
      return std::bit_cast<double>(be(8));
    }
    if (b == 0xcf) {
      ++pos_;
      return static_cast<double>(be(8));
    }
  }
  if (peek() != Type::kInt) fail("expected a number");
  return static_cast<double>(integer());
}

void Reader::skip() { skip(0); }

std::string_view Reader::raw(size_t* offset) {
  size_t start = pos_;
  skip();
  if (offset) *offset = base_ + start;
  return bytes_.substr(start, pos_ - start);
}

void Reader::skip(int depth) {
  if (depth > kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
  uint8_t b = byte();
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return;
  if (b <= 0x8f) {
    for (size_t i = 0, n = b & 0x0f; i < 2 * n; ++i) skip(depth + 1);
    return;
  }
  if (b <= 0x9f) {
    for (size_t i = 0, n = b & 0x0f; i < n; ++i) skip(depth + 1);
    return;
  }
  if (b <= 0xbf) {
    take(b & 0x1f);
    return;
  }
  switch (b) {
    case 0xc4: case 0xd9: take(be(1)); return;
    case 0xc5: case 0xda: take(be(2)); return;
    case 0xc6: case 0xdb: take(be(4)); return;
    case 0xc7: take(be(1) + 1); return;
    case 0xc8: take(be(2) + 1); return;
    case 0xc9: take(be(4) + 1); return;
    case 0xca: take(4); return;
    case 0xcb: take(8); return;
    case 0xcc: case 0xd0: take(1); return;
    case 0xcd: case 0xd1: take(2); return;
    case 0xce: case 0xd2: take(4); return;
    case 0xcf: case 0xd3: take(8); return;
    case 0xd4: take(2); return;
    case 0xd5: take(3); return;
    case 0xd6: take(5); return;
    case 0xd7: take(9); return;
    case 0xd8: take(17); return;
    case 0xdc: case 0xdd: {
      uint64_t n = be(b == 0xdc ? 2 : 4);
      for (uint64_t i = 0; i < n; ++i) skip(depth + 1);
      return;
    }
    case 0xde: case 0xdf: {
      uint64_t n = be(b == 0xde ? 2 : 4);
      for (uint64_t i = 0; i < 2 * n; ++i) skip(depth + 1);
      return;
    }
    default: break;
  }
  --pos_;
  fail("invalid type byte 0xc1");
}

nlohmann::json Reader::json() {
  if (nil()) return nullptr;
  size_t start = pos_;
  skip();  // bounds the nesting and finds the value's end before nlohmann parses it
  auto slice = bytes_.substr(start, pos_ - start);
  if (slice.size() == 1 && static_cast<uint8_t>(slice[0]) == 0x80) return nlohmann::json::object();
  try {
    return nlohmann::json::from_msgpack(slice.begin(), slice.end());
  } catch (const nlohmann::json::exception& e) {
    pos_ = start;
    fail(std::string("invalid value: ") + e.what());
  }
}

}  // namespace gasoline::msgpack
