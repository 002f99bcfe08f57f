#pragma once
// The shell around apply(): RocksDB persistence plus two in-memory mirrors the leader reads on every pull (the
// wake index and the worker table). Mirrors are derived from the mutations, so they can never disagree with the
// DB; they are rebuilt on open.
#include "kv/store/apply.h"
#include "kv/store/effects.h"

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>

namespace rocksdb {
class DB;
class Snapshot;
class WriteBatch;
}

namespace gasoline::store {

struct DueEntry {
  int64_t ts = 0;
  std::string workflow_id;
  std::string name;
};

// A lease as the owner index records it.
struct HeldLease {
  std::string workflow_id;
  uint64_t token = 0;
};

struct Options {
  std::string path;
  bool sync = true;  // fsync every applied entry (group commit amortises it)
  Config config;
  // RocksDB's own write-ahead log. A replica of a Raft cluster runs without it: the Raft log is the write-ahead
  // log, and after a crash whatever RocksDB lost is replayed from it or reinstalled from a snapshot (the applied
  // index is written in every batch, and a memtable is flushed whole, so the DB is always some prefix of entries).
  bool wal = true;
};

// The whole state frozen at one applied index (a RocksDB snapshot), for a Raft snapshot: pinned between two
// applies, read later on another thread while applies go on, released when dropped. Must not outlive its
// StateMachine.
class PinnedState {
 public:
  PinnedState(const PinnedState&) = delete;
  PinnedState& operator=(const PinnedState&) = delete;
  ~PinnedState();
  // Every key and value in key order, until `visit` returns false. Returns the storage's error, if any.
  std::optional<std::string> scan(const std::function<bool(std::string_view key, std::string_view value)>& visit) const;

 private:
  friend class StateMachine;
  PinnedState(rocksdb::DB* db, const rocksdb::Snapshot* snapshot) : db_(db), snapshot_(snapshot) {}
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

class StateMachine {
 public:
  // Opens or creates the DB. Throws std::runtime_error naming the path and RocksDB's reason.
  static std::unique_ptr<StateMachine> open(const Options& options);
  ~StateMachine();
  StateMachine(const StateMachine&) = delete;
  StateMachine& operator=(const StateMachine&) = delete;

  uint64_t applied_index() const;
  int64_t last_ts() const;

  // Applies the entry with this index. Entries at or below applied_index() were applied before (a replay after a
  // restart) and are skipped: returns nullopt. Throws std::runtime_error if the write fails.
  std::optional<Applied> apply(const Entry& entry, uint64_t index);
  // Writes effects the leader computed for the entry with this index (kv/store/effects.h). Returns false for an
  // index at or below applied_index() (a replay). Throws std::runtime_error if the effects name another index
  // (the log and the state would diverge) or the write fails.
  bool apply_effects(const EffectsView& effects, uint64_t index);

  // The committed state, for the leader's speculation (read on the thread that applies).
  const Reader& committed() const { return *reader_; }
  const Config& config() const { return options_.config; }

  std::optional<Workflow> workflow(std::string_view id) const;
  // Workflows of a pool (optionally of one status), ordered by status then id, after `after_id` (exclusive).
  std::vector<Workflow> list(std::string_view pool, std::optional<Status> status, size_t limit,
                             std::string_view after_id = {}) const;
  std::vector<Signal> signals(std::string_view workflow_id, uint64_t after_seq, size_t limit) const;

  std::vector<Worker> workers(std::string_view pool) const;  // empty pool = every pool
  // The leases the committed state gives worker `worker_id` of `pool` (from the owner index; entries written
  // before the index carried tokens read the record).
  std::vector<HeldLease> leases_of(std::string_view pool, std::string_view worker_id) const;
  std::vector<std::string> pools() const;                    // pools that have workers or wake entries

  // Retention. The pool's own setting (ConfigurePool), nullopt when it uses the kv's default.
  std::optional<int64_t> pool_retention(std::string_view pool) const;
  // Pools that have finished workflows.
  std::vector<std::string> finished_pools() const;
  // Finished workflows of a pool that finished at or before `ts`, oldest first, at most `limit`.
  std::vector<std::string> finished_before(std::string_view pool, int64_t ts, size_t limit) const;
  // Workflows of a pool: all of them (the status index), the finished ones (the finished index), and all of them
  // by status (the status byte of each status index key, so one scan gives both).
  struct PoolCounts {
    size_t all = 0;
    size_t finished = 0;
    std::array<size_t, kStatusCount> by_status{};  // indexed by static_cast<size_t>(Status)
  };
  PoolCounts counts(std::string_view pool) const;
  // Wake entries of a pool due at `now`, earliest first.
  std::vector<DueEntry> due(std::string_view pool, int64_t now, size_t limit) const;
  // Visits due entries earliest first without copying them, until `fn` returns false or `limit` were visited.
  // Runs under the mirror's read lock: keep `fn` short and never call back into the state machine from it.
  void for_each_due(std::string_view pool, int64_t now, size_t limit,
                    const std::function<bool(int64_t ts, const std::string& workflow_id, const std::string& name)>& fn)
      const;
  bool has_wake(std::string_view pool, int64_t ts, std::string_view workflow_id) const;
  // Every wake entry later than `now`, for the leader's timer when it takes over.
  std::vector<std::pair<std::string, DueEntry>> future_wakes(int64_t now) const;
  size_t wake_count(std::string_view pool) const;

  // Replaces the whole state with `pairs` (a Raft snapshot being installed) in one WriteBatch, then reloads the
  // applied index, the last timestamp and the mirrors from it.
  void replace_all(const std::vector<std::pair<std::string, std::string>>& pairs);

  // The state as of now (the last applied entry), for a Raft snapshot.
  std::unique_ptr<PinnedState> pin();
  // Every key and value as of now, in key order (tests compare replicas with it).
  std::optional<std::string> scan(const std::function<bool(std::string_view key, std::string_view value)>& visit);

 private:
  explicit StateMachine(Options options);
  void load_mirrors();
  void mirror(const Mutations& m);
  void write(rocksdb::WriteBatch& batch, uint64_t index, int64_t ts);

  Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<Reader> reader_;
  // Written by the applier thread only; read from any thread (Service::now() on the timer and I/O threads, the
  // status op, metrics), hence atomic. Relaxed: each is a number on its own, nothing else is published through it.
  std::atomic<uint64_t> applied_{0};
  std::atomic<int64_t> last_ts_{0};

  mutable std::shared_mutex mirror_mu_;
  // pool → (ts, workflow id) → name
  std::unordered_map<std::string, std::map<std::pair<int64_t, std::string>, std::string>> wakes_;
  // pool → worker id → worker
  std::unordered_map<std::string, std::map<std::string, Worker>> workers_;
};

}  // namespace gasoline::store
