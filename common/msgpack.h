#pragma once
// A small MessagePack writer and reader for hot paths that know their schema: records are written and read field by
// field, without building an nlohmann::json DOM (a map node and a key string per field) in between. The writer
// picks the same encodings as nlohmann's to_msgpack (smallest integer form, float32 when exact, str8), so bytes
// written here and bytes written through a DOM are identical for the same map with keys in sorted order.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gasoline::msgpack {

// Malformed or unexpected bytes. The message names what was being read and the byte offset.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Nesting deeper than this is refused by skip() and json(), so a hostile input cannot exhaust the stack.
inline constexpr int kMaxDepth = 64;

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void nil() { out_.push_back(static_cast<char>(0xc0)); }
  void boolean(bool v) { out_.push_back(static_cast<char>(v ? 0xc3 : 0xc2)); }
  void integer(int64_t v);
  void unsigned_integer(uint64_t v);
  void floating(double v);
  void string(std::string_view s);
  void binary(std::string_view bytes);  // bin8/16/32: bytes that are not text (keys, encoded records)
  void array_header(size_t n);
  void map_header(size_t n);
  void strings(const std::vector<std::string>& v);
  // Any JSON value (nulls and empty maps without a detour through nlohmann).
  void json(const nlohmann::json& j);

 private:
  void be(uint64_t v, int bytes);
  std::string& out_;
};

enum class Type { kNil, kBool, kInt, kFloat, kString, kBinary, kArray, kMap, kExt };

class Reader {
 public:
  // `what` names the thing being decoded in error messages ("workflow record"); `base` is the offset of `bytes`
  // in the whole input, so a reader over one field's bytes reports offsets in the whole.
  Reader(std::string_view bytes, std::string_view what, size_t base = 0) : bytes_(bytes), what_(what), base_(base) {}

  bool done() const { return pos_ == bytes_.size(); }
  size_t offset() const { return pos_; }
  Type peek() const;
  // Consumes a nil and returns true, or returns false and consumes nothing.
  bool nil();

  size_t map_header();
  size_t array_header();
  std::string_view string();
  std::string_view binary();
  std::vector<std::string> strings();  // an array of strings
  bool boolean();
  int64_t integer();            // any integer encoding that fits int64
  uint64_t unsigned_integer();  // any non-negative integer encoding
  uint64_t unsigned_integer(uint64_t max);  // ... and at most `max`
  double floating();            // a float or an integer
  // One whole value of any type, as a JSON value (nil → null).
  nlohmann::json json();
  void skip();
  // Skips one value and returns its encoded bytes (and their offset, for a Reader over them).
  std::string_view raw(size_t* offset = nullptr);

  // Throws DecodeError("<what>: <message> at byte N").
  [[noreturn]] void fail(std::string_view message) const;

 private:
  uint8_t byte();
  uint64_t be(int bytes);
  std::string_view take(size_t n);
  void skip(int depth);

  std::string_view bytes_;
  std::string_view what_;
  size_t base_ = 0;
  size_t pos_ = 0;
};

}  // namespace gasoline::msgpack
