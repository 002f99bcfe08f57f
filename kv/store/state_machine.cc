#include "kv/store/state_machine.h"

#include "kv/store/keys.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <stdexcept>

namespace gasoline::store {
namespace {

class DbReader : public Reader {
 public:
  explicit DbReader(rocksdb::DB* db) : db_(db) {}

  std::optional<std::string> get(std::string_view key) const override {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) throw std::runtime_error("rocksdb get: " + s.ToString());
    return value;
  }

  void scan(std::string_view prefix, const ScanFn& fn) const override {
    auto end = keys::prefix_end(prefix);
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size())))
        break;
    }
    if (!it->status().ok()) throw std::runtime_error("rocksdb scan: " + it->status().ToString());
  }

 private:
  rocksdb::DB* db_;
};

}  // namespace

StateMachine::StateMachine(Options options) : options_(std::move(options)) {}
StateMachine::~StateMachine() = default;

std::unique_ptr<StateMachine> StateMachine::open(const Options& options) {
  std::unique_ptr<StateMachine> sm(new StateMachine(options));
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.IncreaseParallelism(2);
  // Memtable inserts were the largest cost of the apply thread (skiplist key comparisons from the top level for
  // every key). Most keys land right after the previous key of their family (new workflow ids, wake times,
  // status and owner index entries), so let the skiplist start from there. Hints need the single-writer path,
  // which is ours anyway (one thread applies).
  ro.allow_concurrent_memtable_write = false;
  ro.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(ro, options.path, &raw);
  if (!s.ok()) throw std::runtime_error("open state DB at '" + options.path + "': " + s.ToString());
  sm->db_.reset(raw);
  sm->reader_ = std::make_unique<DbReader>(raw);
  DbReader reader(raw);
  if (auto v = reader.get(keys::applied_index())) sm->applied_.store(keys::get_u64(*v), std::memory_order_relaxed);
  if (auto v = reader.get(keys::last_ts())) sm->last_ts_.store(keys::get_ts(*v), std::memory_order_relaxed);
  sm->load_mirrors();
  return sm;
}

uint64_t StateMachine::applied_index() const { return applied_.load(std::memory_order_relaxed); }
int64_t StateMachine::last_ts() const { return last_ts_.load(std::memory_order_relaxed); }

std::optional<Applied> StateMachine::apply(const Entry& entry, uint64_t index) {
  if (index <= applied_index()) return std::nullopt;
  Applied out = apply_entry(*reader_, entry, index, options_.config);
  rocksdb::WriteBatch batch;
  for (const auto& [k, v] : out.mutations) {
    if (v) {
      batch.Put(k, *v);
    } else {
      batch.Delete(k);
    }
  }
  write(batch, index, entry.ts);
  mirror(out.mutations);
  return out;
}

bool StateMachine::apply_effects(const EffectsView& effects, uint64_t index) {
  if (index <= applied_index()) return false;
  if (effects.index != index)
    throw std::runtime_error("effects computed for index " + std::to_string(effects.index) + " arrived at index " +
                             std::to_string(index));
  rocksdb::WriteBatch batch;
  Mutations mirrored;  // only the families the in-memory mirrors follow
  for (const auto& [k, v] : effects.mutations) {
    rocksdb::Slice key(k.data(), k.size());
    if (v) {
      batch.Put(key, rocksdb::Slice(v->data(), v->size()));
    } else {
      batch.Delete(key);
    }
    if (k[0] == keys::kWake || k[0] == keys::kWorker)
      mirrored.emplace(std::string(k), v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
  }
  write(batch, index, effects.ts);
  mirror(mirrored);
  return true;
}

// Adds the applied index and the last timestamp to the entry's batch and writes it in one atomic write.
void StateMachine::write(rocksdb::WriteBatch& batch, uint64_t index, int64_t entry_ts) {
  std::string idx;
  keys::put_u64(idx, index);
  batch.Put(keys::applied_index(), idx);
  int64_t ts = std::max(entry_ts, last_ts());
  std::string tsb;
  keys::put_ts(tsb, ts);
  batch.Put(keys::last_ts(), tsb);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync && options_.wal;
  wo.disableWAL = !options_.wal;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) throw std::runtime_error("write entry " + std::to_string(index) + ": " + s.ToString());
  applied_.store(index, std::memory_order_relaxed);
  last_ts_.store(ts, std::memory_order_relaxed);
}

PinnedState::~PinnedState() { db_->ReleaseSnapshot(snapshot_); }

std::optional<std::string> PinnedState::scan(
    const std::function<bool(std::string_view key, std::string_view value)>& visit) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    if (!visit(std::string_view(it->key().data(), it->key().size()),
               std::string_view(it->value().data(), it->value().size())))
      break;
  if (!it->status().ok()) return it->status().ToString();
  return std::nullopt;
}

std::unique_ptr<PinnedState> StateMachine::pin() {
  return std::unique_ptr<PinnedState>(new PinnedState(db_.get(), db_->GetSnapshot()));
}

std::optional<std::string> StateMachine::scan(
    const std::function<bool(std::string_view key, std::string_view value)>& visit) {
  return pin()->scan(visit);
}

void StateMachine::replace_all(const std::vector<std::pair<std::string, std::string>>& pairs) {
  rocksdb::WriteBatch batch;
  // Every key starts with a lowercase family letter, so this range covers the whole state.
  batch.DeleteRange(rocksdb::Slice("\x00", 1), rocksdb::Slice("\xff\xff", 2));
  for (const auto& [k, v] : pairs) batch.Put(k, v);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync && options_.wal;
  wo.disableWAL = !options_.wal;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) throw std::runtime_error("install snapshot: " + s.ToString());
  DbReader reader(db_.get());
  // Stored once each, so a reader on another thread never sees the zeros in between.
  uint64_t applied = 0;
  int64_t last_ts = 0;
  if (auto v = reader.get(keys::applied_index())) applied = keys::get_u64(*v);
  if (auto v = reader.get(keys::last_ts())) last_ts = keys::get_ts(*v);
  applied_.store(applied, std::memory_order_relaxed);
  last_ts_.store(last_ts, std::memory_order_relaxed);
  load_mirrors();
}

void StateMachine::mirror(const Mutations& m) {
  std::unique_lock lock(mirror_mu_);
  for (const auto& [k, v] : m) {
    if (k.empty()) continue;
    if (k[0] == keys::kWake) {
      keys::WakeKey wk;
      if (!keys::parse_wake(k, wk)) continue;
      auto& pool = wakes_[std::string(wk.pool)];
      if (v) {
        pool[{wk.ts, std::string(wk.workflow_id)}] = *v;
      } else {
        pool.erase({wk.ts, std::string(wk.workflow_id)});
      }
    } else if (k[0] == keys::kWorker) {
      std::string_view pool, id;
      if (!keys::parse_worker(k, pool, id)) continue;
      auto& ws = workers_[std::string(pool)];
      if (v) {
        ws[std::string(id)] = decode_worker(*v);
      } else {
        ws.erase(std::string(id));
      }
    }
  }
}

void StateMachine::load_mirrors() {
  DbReader reader(db_.get());
  Mutations all;
  for (char family : {keys::kWake, keys::kWorker}) {
    reader.scan(std::string(1, family), [&](std::string_view k, std::string_view v) {
      all.emplace(std::string(k), std::string(v));
      return true;
    });
  }
  std::unique_lock lock(mirror_mu_);
  wakes_.clear();
  workers_.clear();
  lock.unlock();
  mirror(all);
}

std::optional<Workflow> StateMachine::workflow(std::string_view id) const {
  DbReader reader(db_.get());
  auto raw = reader.get(keys::workflow(id));
  if (!raw) return std::nullopt;
  return decode_workflow(*raw);
}

std::vector<Workflow> StateMachine::list(std::string_view pool, std::optional<Status> status, size_t limit,
                                         std::string_view after_id) const {
  DbReader reader(db_.get());
  std::vector<Workflow> out;
  if (limit == 0) return out;
  // The cursor is an id; without a status filter the order is (status, id), so resume after the cursor's status.
  uint8_t after_status = status ? static_cast<uint8_t>(*status) : 0;
  if (!after_id.empty() && !status) {
    if (auto w = workflow(after_id); w && w->pool == pool) after_status = static_cast<uint8_t>(w->status);
  }
  auto prefix = status ? keys::by_status_prefix(pool, static_cast<uint8_t>(*status)) : keys::by_status_prefix(pool);
  auto base_size = keys::by_status_prefix(pool).size();
  reader.scan(prefix, [&](std::string_view key, std::string_view) {
    auto st = static_cast<uint8_t>(key[base_size]);
    auto id = key.substr(base_size + 1);
    if (!after_id.empty() && (st < after_status || (st == after_status && id <= after_id))) return true;
    if (auto w = workflow(id)) out.push_back(std::move(*w));
    return out.size() < limit;
  });
  return out;
}

std::vector<Signal> StateMachine::signals(std::string_view workflow_id, uint64_t after_seq, size_t limit) const {
  DbReader reader(db_.get());
  std::vector<Signal> out;
  if (limit == 0) return out;
  reader.scan(keys::signal_prefix(workflow_id), [&](std::string_view, std::string_view value) {
    auto s = decode_signal(value);
    if (s.seq > after_seq) out.push_back(std::move(s));
    return out.size() < limit;
  });
  return out;
}

std::vector<HeldLease> StateMachine::leases_of(std::string_view pool, std::string_view worker_id) const {
  DbReader reader(db_.get());
  std::vector<HeldLease> out;
  std::vector<std::string> legacy;
  auto prefix = keys::owner_prefix(worker_id);
  reader.scan(prefix, [&](std::string_view key, std::string_view value) {
    uint64_t token = 0;
    std::string_view lease_pool;
    if (!keys::parse_owner_value(value, token, lease_pool)) {
      legacy.emplace_back(key.substr(prefix.size()));
    } else if (lease_pool == pool) {
      out.push_back(HeldLease{std::string(key.substr(prefix.size())), token});
    }
    return true;
  });
  for (const auto& id : legacy) {
    auto w = workflow(id);
    if (w && w->pool == pool && w->lease_worker == worker_id && w->lease_token != 0)
      out.push_back(HeldLease{id, w->lease_token});
  }
  return out;
}

std::optional<int64_t> StateMachine::pool_retention(std::string_view pool) const {
  DbReader reader(db_.get());
  auto raw = reader.get(keys::pool_config(pool));
  if (!raw) return std::nullopt;
  auto j = decode(*raw);
  if (!j.is_object() || !j.contains("retention_ms") || !j["retention_ms"].is_number_integer()) return std::nullopt;
  return j["retention_ms"].get<int64_t>();
}

std::vector<std::string> StateMachine::finished_pools() const {
  // One seek per pool: jump past each pool's keys instead of reading them.
  std::vector<std::string> pools;
  auto family = keys::ended_family();
  auto end = keys::prefix_end(family);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(family); it->Valid();) {
    std::string_view key(it->key().data(), it->key().size());
    auto nul = key.find('\0');
    if (nul == std::string_view::npos) break;
    pools.emplace_back(key.substr(1, nul - 1));
    it->Seek(keys::prefix_end(keys::ended_prefix(pools.back())));
  }
  if (!it->status().ok()) throw std::runtime_error("rocksdb scan: " + it->status().ToString());
  return pools;
}

std::vector<std::string> StateMachine::finished_before(std::string_view pool, int64_t ts, size_t limit) const {
  DbReader reader(db_.get());
  std::vector<std::string> ids;
  auto prefix = keys::ended_prefix(pool);
  if (limit == 0) return ids;
  reader.scan(prefix, [&](std::string_view key, std::string_view) {
    if (key.size() < prefix.size() + 8 || keys::get_ts(key.substr(prefix.size())) > ts) return false;
    ids.emplace_back(key.substr(prefix.size() + 8));
    return ids.size() < limit;
  });
  return ids;
}

StateMachine::PoolCounts StateMachine::counts(std::string_view pool) const {
  DbReader reader(db_.get());
  PoolCounts c;
  const size_t status_at = keys::by_status_prefix(pool).size();
  reader.scan(keys::by_status_prefix(pool), [&](std::string_view key, std::string_view) {
    ++c.all;
    // A status byte this version does not know (a newer writer) still counts in `all`.
    if (key.size() > status_at) {
      auto s = static_cast<unsigned char>(key[status_at]);
      if (s < kStatusCount) ++c.by_status[s];
    }
    return true;
  });
  reader.scan(keys::ended_prefix(pool), [&](std::string_view, std::string_view) {
    ++c.finished;
    return true;
  });
  return c;
}

std::vector<Worker> StateMachine::workers(std::string_view pool) const {
  std::shared_lock lock(mirror_mu_);
  std::vector<Worker> out;
  for (const auto& [p, ws] : workers_) {
    if (!pool.empty() && p != pool) continue;
    for (const auto& [id, w] : ws) out.push_back(w);
  }
  return out;
}

std::vector<std::string> StateMachine::pools() const {
  std::shared_lock lock(mirror_mu_);
  std::set<std::string> names;
  for (const auto& [p, ws] : workers_)
    if (!ws.empty()) names.insert(p);
  for (const auto& [p, es] : wakes_)
    if (!es.empty()) names.insert(p);
  return {names.begin(), names.end()};
}

std::vector<DueEntry> StateMachine::due(std::string_view pool, int64_t now, size_t limit) const {
  std::shared_lock lock(mirror_mu_);
  std::vector<DueEntry> out;
  auto it = wakes_.find(std::string(pool));
  if (it == wakes_.end()) return out;
  for (const auto& [key, name] : it->second) {
    if (key.first > now || out.size() >= limit) break;
    out.push_back(DueEntry{key.first, key.second, name});
  }
  return out;
}

void StateMachine::for_each_due(
    std::string_view pool, int64_t now, size_t limit,
    const std::function<bool(int64_t, const std::string&, const std::string&)>& fn) const {
  std::shared_lock lock(mirror_mu_);
  auto it = wakes_.find(std::string(pool));
  if (it == wakes_.end()) return;
  size_t seen = 0;
  for (const auto& [key, name] : it->second) {
    if (key.first > now || seen++ >= limit) break;
    if (!fn(key.first, key.second, name)) break;
  }
}

bool StateMachine::has_wake(std::string_view pool, int64_t ts, std::string_view workflow_id) const {
  std::shared_lock lock(mirror_mu_);
  auto it = wakes_.find(std::string(pool));
  return it != wakes_.end() && it->second.count({ts, std::string(workflow_id)}) > 0;
}

std::vector<std::pair<std::string, DueEntry>> StateMachine::future_wakes(int64_t now) const {
  std::shared_lock lock(mirror_mu_);
  std::vector<std::pair<std::string, DueEntry>> out;
  for (const auto& [pool, es] : wakes_) {
    for (auto it = es.upper_bound({now, std::string(1, '\xff')}); it != es.end(); ++it)
      out.emplace_back(pool, DueEntry{it->first.first, it->first.second, it->second});
  }
  return out;
}

size_t StateMachine::wake_count(std::string_view pool) const {
  std::shared_lock lock(mirror_mu_);
  auto it = wakes_.find(std::string(pool));
  return it == wakes_.end() ? 0 : it->second.size();
}

}  // namespace gasoline::store
