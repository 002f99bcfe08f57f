#pragma once
// The Raft snapshot format: every key of the state at one applied index, so a wiped or lagging replica can install
// it. Pure encoding on top of a RocksDB snapshot iterator; RaftLog and the deterministic fixture tests share it.
//   "GASNAP01" | u64 LE count | count × (u32 LE key len | key | u32 LE value len | value)
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rocksdb {
class DB;
class Snapshot;
}  // namespace rocksdb

namespace gasoline::raft {

// Serialises the DB as of `snapshot`. nullopt (and `error` set) when it exceeds `cap_bytes` or iteration fails.
std::optional<std::string> encode_snapshot(rocksdb::DB* db, const rocksdb::Snapshot* snapshot, size_t cap_bytes,
                                           uint64_t& keys, std::string& error);

struct DecodedSnapshot {
  std::vector<std::pair<std::string, std::string>> pairs;
  uint64_t applied_index = 0;  // the stored applied index inside the snapshot (0 if absent)
};
// nullopt for bytes that are not a well-formed snapshot.
std::optional<DecodedSnapshot> decode_snapshot(const char* data, size_t len);

// The format version in the magic ("GASNAP" + two digits); a layout change takes the next number, so an older
// replica recognises a snapshot it cannot read. nullopt when the bytes do not start with the magic at all.
inline constexpr int kSnapshotVersion = 1;
std::optional<int> snapshot_version(const char* data, size_t len);

}  // namespace gasoline::raft
