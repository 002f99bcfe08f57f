#include "kv/store/effects.h"

#include "common/msgpack.h"

#include <lz4.h>

namespace gasoline::store {
namespace {

constexpr std::string_view kTag = "fx";
constexpr std::string_view kCompressedTag = "fz";
constexpr const char* kWhat = "raft effects entry";

bool starts_with_tag(std::string_view payload, uint8_t array_header, std::string_view tag) {
  // fixarray(n), then fixstr(2) tag.
  return payload.size() >= 4 && static_cast<uint8_t>(payload[0]) == array_header &&
         static_cast<uint8_t>(payload[1]) == 0xa2 && payload.substr(2, 2) == tag;
}

std::string compress(const std::string& raw) {
  std::string block(static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw.size()))), '\0');
  int n = LZ4_compress_default(raw.data(), block.data(), static_cast<int>(raw.size()), static_cast<int>(block.size()));
  if (n <= 0) return raw;
  block.resize(static_cast<size_t>(n));
  std::string out;
  out.reserve(block.size() + 16);
  msgpack::Writer w(out);
  w.array_header(3);
  w.string(kCompressedTag);
  w.unsigned_integer(raw.size());
  w.binary(block);
  return out.size() < raw.size() ? out : raw;
}

// The uncompressed payload of a compressed one, in `scratch`.
std::string_view decompress(std::string_view payload, std::string& scratch) {
  msgpack::Reader r(payload, kWhat);
  if (r.array_header() != 3) r.fail("expected 3 fields");
  if (r.string() != kCompressedTag) r.fail("not a compressed effects entry");
  uint64_t size = r.unsigned_integer(kMaxEffectsBytes);
  auto block = r.binary();
  if (!r.done()) r.fail("trailing bytes");
  // LZ4 expands at most ~255x: a size claim beyond that is a lie, refused before allocating it.
  if (size > 255 * block.size() + 16) r.fail("claimed size does not fit the compressed block");
  scratch.resize(size);
  int n = LZ4_decompress_safe(block.data(), scratch.data(), static_cast<int>(block.size()), static_cast<int>(size));
  if (n < 0 || static_cast<uint64_t>(n) != size) r.fail("corrupt lz4 block");
  return scratch;
}

}  // namespace

std::string encode_effects(uint64_t index, int64_t ts, size_t commands, const Mutations& mutations) {
  std::string out;
  size_t bytes = 32;
  for (const auto& [k, v] : mutations) bytes += k.size() + (v ? v->size() : 0) + 8;
  out.reserve(bytes);
  msgpack::Writer w(out);
  w.array_header(5);
  w.string(kTag);
  w.unsigned_integer(index);
  w.integer(ts);
  w.unsigned_integer(commands);
  w.array_header(2 * mutations.size());
  for (const auto& [k, v] : mutations) {
    w.binary(k);
    if (v) {
      w.binary(*v);
    } else {
      w.nil();
    }
  }
  return out.size() > kCompressAbove ? compress(out) : out;
}

bool is_effects(std::string_view payload) {
  return starts_with_tag(payload, 0x95, kTag) || starts_with_tag(payload, 0x93, kCompressedTag);
}

EntryFormatInfo entry_format(std::string_view payload) {
  if (is_effects(payload)) return {EntryFormat::kEffects, std::string(payload.substr(2, 2))};
  if (payload.empty()) return {};
  auto first = static_cast<uint8_t>(payload[0]);
  if ((first & 0xf0) == 0x80 || first == 0xde || first == 0xdf) return {EntryFormat::kCommands, ""};
  // A tagged array of another format: read its tag to name it.
  try {
    msgpack::Reader r(payload, kWhat);
    r.array_header();
    if (r.peek() == msgpack::Type::kString) return {EntryFormat::kUnknown, std::string(r.string())};
  } catch (const msgpack::DecodeError&) {
    // Not a tagged array either: garbage, which the caller reports as an entry of no known format.
  }
  return {};
}

EffectsView decode_effects(std::string_view payload, std::string& scratch) {
  if (starts_with_tag(payload, 0x93, kCompressedTag)) payload = decompress(payload, scratch);
  msgpack::Reader r(payload, kWhat);
  if (r.array_header() != 5) r.fail("expected 5 fields");
  if (r.string() != kTag) r.fail("not an effects entry");
  EffectsView e;
  e.index = r.unsigned_integer();
  e.ts = r.integer();
  e.commands = r.unsigned_integer();
  size_t n = r.array_header();
  if (n % 2 != 0) r.fail("odd number of key/value items");
  // Each pair takes at least 3 bytes, so a hostile count cannot make us reserve much more than the input.
  if (n / 2 > payload.size() / 3) r.fail("more mutations than bytes");
  e.mutations.reserve(n / 2);
  std::string_view previous;
  for (size_t i = 0; i < n / 2; ++i) {
    auto key = r.binary();
    if (key.empty()) r.fail("empty key");
    if (i > 0 && key <= previous) r.fail("keys out of order");
    previous = key;
    if (r.nil()) {
      e.mutations.emplace_back(key, std::nullopt);
    } else {
      e.mutations.emplace_back(key, r.binary());
    }
  }
  if (!r.done()) r.fail("trailing bytes");
  return e;
}

}  // namespace gasoline::store
