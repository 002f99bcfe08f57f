#pragma once
// What the Raft log replicates: the effects of a group-committed entry, computed once by the leader, rather than
// the commands themselves. The leader runs apply_entry() when it proposes (kv/store/speculation.h); followers
// and the leader's own apply only write these mutations. Every replica still ends in the same state, but only
// one of them pays for decoding records, evaluating conditions and building results.
//
// The payload is a MessagePack array, ["fx", index, ts, commands, [key, value-or-nil, ...]] with keys and values
// as binary, so it can never be mistaken for a command entry (a map). Effects carry whole records (a command
// carries a few ids), so above kCompressAbove bytes the array is LZ4-compressed: ["fz", raw size, lz4 block]. The
// records' repeated field names make entries several times smaller, and every replica writes, checksums and sends
// each entry (measured: docs/benchmarks.md).
#include "kv/store/txn.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gasoline::store {

struct EffectsView {
  uint64_t index = 0;     // the log index the leader computed these effects for
  int64_t ts = 0;         // the leader's timestamp of the entry
  uint64_t commands = 0;  // how many client commands the entry carried (metrics)
  // Views into the payload, in key order; nullopt = delete.
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> mutations;
};

inline constexpr size_t kCompressAbove = 512;
// A compressed payload that claims to expand beyond this is refused before anything is allocated.
inline constexpr size_t kMaxEffectsBytes = 256u << 20;

std::string encode_effects(uint64_t index, int64_t ts, size_t commands, const Mutations& mutations);
// True if `payload` is an effects entry, compressed or not (false for a command entry). Looks at the first bytes.
bool is_effects(std::string_view payload);

// Entry formats and their versioning. A command entry (older logs) is a MessagePack map; every other entry is an
// array whose first element is a string tag naming its format: "fx" and "fz" are the effects of this version. A
// version that changes the layout must use a new tag, so an older replica meets an entry it cannot read as such
// and stops, instead of misreading it and diverging from the others (a rolling upgrade must upgrade every replica
// before the leader writes the new format). Never reuse a tag.
enum class EntryFormat { kCommands, kEffects, kUnknown };
struct EntryFormatInfo {
  EntryFormat format = EntryFormat::kUnknown;
  std::string tag;  // the array's tag, when the payload is a tagged array
};
EntryFormatInfo entry_format(std::string_view payload);
// Throws msgpack::DecodeError naming the problem on malformed input. The views point into `payload`, or into
// `scratch` when the payload is compressed: keep both alive while the view is used.
EffectsView decode_effects(std::string_view payload, std::string& scratch);

}  // namespace gasoline::store
