#pragma once
// Key encoding. One RocksDB column family; the first byte names the key family, so one WriteBatch covers a whole
// command and one snapshot iterator covers the whole state (what Raft snapshots need). Separators are \0 because
// validated names never contain it. Integers are big-endian (timestamps with the sign bit flipped) so that byte
// order is numeric order.
//
//   m <name>                                   meta: applied index, last ts
//   w <pool> \0 <worker>                       Worker
//   f <workflow>                               Workflow
//   x <pool> \0 <ts:8> <workflow>      → name  wake index: at most one entry per workflow
//   o <worker> \0 <workflow>  → token:8 pool  leases by holder (reclaim, leave and lease reconciliation)
//   s <workflow> \0 <seq:8>                    Signal
//   i <pool> \0 <key>                  → id    idempotency keys of dispatch
//   g <workflow> \0 <signal id>                idempotency of signals
//   p <pool> \0 <status:1> <workflow>          workflows by pool and status (list)
//   e <pool> \0 <ts:8> <workflow>              finished workflows by the time they finished (retention)
//   c <pool>                           → map    a pool's settings (retention)
// Families are stored on disk: never reuse or renumber one.
#include <cstdint>
#include <string>
#include <string_view>

namespace gasoline::store::keys {

inline constexpr char kMeta = 'm';
inline constexpr char kWorker = 'w';
inline constexpr char kWorkflow = 'f';
inline constexpr char kWake = 'x';
inline constexpr char kOwner = 'o';
inline constexpr char kSignal = 's';
inline constexpr char kIdempotency = 'i';
inline constexpr char kSignalId = 'g';
inline constexpr char kByStatus = 'p';
inline constexpr char kEnded = 'e';
inline constexpr char kPoolConfig = 'c';

std::string applied_index();
std::string last_ts();

std::string worker(std::string_view pool, std::string_view id);
std::string worker_prefix(std::string_view pool);
std::string worker_family();
std::string workflow(std::string_view id);
std::string wake(std::string_view pool, int64_t ts, std::string_view workflow_id);
std::string wake_prefix(std::string_view pool);
std::string owner(std::string_view worker_id, std::string_view workflow_id);
std::string owner_prefix(std::string_view worker_id);
std::string signal(std::string_view workflow_id, uint64_t seq);
std::string signal_prefix(std::string_view workflow_id);
std::string idempotency(std::string_view pool, std::string_view key);
std::string signal_id(std::string_view workflow_id, std::string_view id);
std::string by_status(std::string_view pool, uint8_t status, std::string_view workflow_id);
std::string by_status_prefix(std::string_view pool);
std::string by_status_prefix(std::string_view pool, uint8_t status);
std::string ended(std::string_view pool, int64_t ts, std::string_view workflow_id);
std::string ended_prefix(std::string_view pool);
std::string ended_family();
std::string pool_config(std::string_view pool);
std::string signal_id_prefix(std::string_view workflow_id);

// The smallest key greater than every key that starts with `prefix`.
std::string prefix_end(std::string_view prefix);

void put_u64(std::string& out, uint64_t v);
uint64_t get_u64(std::string_view in);  // first 8 bytes, big-endian
void put_ts(std::string& out, int64_t ts);
int64_t get_ts(std::string_view in);

// The value of an owner key: the lease's fencing token and the workflow's pool, so the leader can compare a
// worker's leases with what the worker says it holds without reading every record. Entries written before this
// value existed are empty: parse_owner_value returns false and the record is the truth.
std::string owner_value(uint64_t token, std::string_view pool);
bool parse_owner_value(std::string_view value, uint64_t& token, std::string_view& pool);

// Parses a wake key back into its parts; false when the key is not a wake key.
struct WakeKey {
  std::string_view pool;
  int64_t ts = 0;
  std::string_view workflow_id;
};
bool parse_wake(std::string_view key, WakeKey& out);
// Parses a worker key; false when it is not one.
bool parse_worker(std::string_view key, std::string_view& pool, std::string_view& id);

}  // namespace gasoline::store::keys
