#pragma once
// The Raft snapshot format: every key of the state at one applied index, so a wiped or lagging replica can install
// it. Pure encoding over the keys a store::PinnedState visits (RaftCore's snapshot and restore).
//   "GASNAP01" | u64 LE count | count × (u32 LE key len | key | u32 LE value len | value)
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gasoline::raft {

// Visits every key and value of the state in key order until the visitor returns false; returns the storage's
// error, if any (store::PinnedState::scan).
using StateScan = std::function<std::optional<std::string>(
    const std::function<bool(std::string_view key, std::string_view value)>& visit)>;

// Serialises what `scan` visits. nullopt (and `error` set) when it exceeds `cap_bytes` or the scan fails.
std::optional<std::string> encode_snapshot(const StateScan& scan, size_t cap_bytes, uint64_t& keys,
                                           std::string& error);

struct DecodedSnapshot {
  std::vector<std::pair<std::string, std::string>> pairs;
  uint64_t applied_index = 0;  // the stored applied index inside the snapshot (0 if absent)
};
// nullopt for bytes that are not a well-formed snapshot.
std::optional<DecodedSnapshot> decode_snapshot(const char* data, size_t len);

// The format version in the magic ("GASNAP" + two digits); a layout change takes the next number, so an older
// replica recognises a snapshot it cannot read. nullopt when the bytes do not start with the magic at all.
// Snapshots are on disk and on the wire between versions: never renumber or reuse a version.
inline constexpr int kSnapshotVersion = 1;
std::optional<int> snapshot_version(const char* data, size_t len);

}  // namespace gasoline::raft
