// libFuzzer target: kv/store's record codec (decode_workflow / decode_worker / decode_signal over common/msgpack)
// and the Raft effects entries (decode_effects), which peers send.
//
// Byte 0 picks the record kind, the rest is the stored bytes. A record read from the DB or a snapshot a peer sent
// must either decode or throw msgpack::DecodeError; anything else escaping, a crash or a sanitizer report is a
// finding. A record that decodes must re-encode to bytes that decode to the same record and re-encode to the same
// bytes (encoding is a fixpoint after one round).
//
// Built with clang++ -fsanitize=fuzzer,address,undefined by tests/fuzz/CMakeLists.txt.
#include "common/msgpack.h"
#include "kv/store/effects.h"
#include "kv/store/model.h"
#include "tests/fuzz/fuzz_check.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace gasoline::store;

template <typename Record>
void round_trip(std::string_view bytes, Record (*decode_fn)(std::string_view)) {
  Record first;
  try {
    first = decode_fn(bytes);
  } catch (const gasoline::msgpack::DecodeError&) {
    return;
  }
  std::string once = encode(first);
  Record second = decode_fn(once);  // must not throw: we wrote it
  std::string twice = encode(second);
  CHECK(once == twice);
}

// Effects that decode must re-encode to bytes that decode to the same effects (and encoding is a fixpoint).
void effects_round_trip(std::string_view bytes) {
  EffectsView first;
  std::string scratch;
  try {
    first = decode_effects(bytes, scratch);
  } catch (const gasoline::msgpack::DecodeError&) {
    return;
  }
  CHECK(is_effects(bytes));
  Mutations m;
  for (const auto& [k, v] : first.mutations) m[std::string(k)] = v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
  CHECK(m.size() == first.mutations.size());
  std::string once = encode_effects(first.index, first.ts, first.commands, m);
  std::string scratch2;
  auto second = decode_effects(once, scratch2);  // must not throw: we wrote it
  CHECK(second.index == first.index && second.ts == first.ts && second.commands == first.commands);
  CHECK(second.mutations == first.mutations);
  Mutations m2;
  for (const auto& [k, v] : second.mutations) m2[std::string(k)] = v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
  CHECK(encode_effects(second.index, second.ts, second.commands, m2) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: round_trip<Workflow>(bytes, decode_workflow); break;
    case 1: round_trip<Worker>(bytes, decode_worker); break;
    case 2: round_trip<Signal>(bytes, decode_signal); break;
    default: effects_round_trip(bytes); break;
  }
  return 0;
}
