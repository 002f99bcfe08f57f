#include "kv/store/effects.h"

#include "common/msgpack.h"

namespace gasoline::store {
namespace {

constexpr std::string_view kTag = "fx";
constexpr const char* kWhat = "raft effects entry";

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
  return out;
}

bool is_effects(std::string_view payload) {
  // fixarray(5), then fixstr(2) "fx".
  return payload.size() >= 4 && static_cast<uint8_t>(payload[0]) == 0x95 && static_cast<uint8_t>(payload[1]) == 0xa2 &&
         payload.substr(2, 2) == kTag;
}

EffectsView decode_effects(std::string_view payload) {
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
