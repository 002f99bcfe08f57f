#include "kv/store/keys.h"

namespace gasoline::store::keys {
namespace {
std::string two(char family, std::string_view a, std::string_view b) {
  std::string k;
  k.reserve(2 + a.size() + b.size());
  k.push_back(family);
  k.append(a);
  k.push_back('\0');
  k.append(b);
  return k;
}
}  // namespace

std::string applied_index() { return "mapplied"; }
std::string last_ts() { return "mts"; }

std::string worker(std::string_view pool, std::string_view id) { return two(kWorker, pool, id); }
std::string worker_prefix(std::string_view pool) { return two(kWorker, pool, ""); }
std::string worker_family() { return std::string(1, kWorker); }
std::string workflow(std::string_view id) { return std::string(1, kWorkflow).append(id); }

// `family pool \0 ts:8 workflow`: a pool's workflows in time order (wake-ups, finish times).
static std::string timed(char family, std::string_view pool, int64_t ts, std::string_view workflow_id) {
  std::string k = two(family, pool, "");
  put_ts(k, ts);
  k.append(workflow_id);
  return k;
}

std::string wake(std::string_view pool, int64_t ts, std::string_view workflow_id) {
  return timed(kWake, pool, ts, workflow_id);
}
std::string wake_prefix(std::string_view pool) { return two(kWake, pool, ""); }
std::string owner(std::string_view worker_id, std::string_view workflow_id) {
  return two(kOwner, worker_id, workflow_id);
}
std::string owner_prefix(std::string_view worker_id) { return two(kOwner, worker_id, ""); }
std::string ended(std::string_view pool, int64_t ts, std::string_view workflow_id) {
  return timed(kEnded, pool, ts, workflow_id);
}
std::string ended_prefix(std::string_view pool) { return two(kEnded, pool, ""); }
std::string ended_family() { return std::string(1, kEnded); }
std::string pool_config(std::string_view pool) { return std::string(1, kPoolConfig).append(pool); }
std::string signal_id_prefix(std::string_view workflow_id) { return two(kSignalId, workflow_id, ""); }
std::string owner_value(uint64_t token, std::string_view pool) {
  std::string v;
  v.reserve(8 + pool.size());
  put_u64(v, token);
  v.append(pool);
  return v;
}
bool parse_owner_value(std::string_view value, uint64_t& token, std::string_view& pool) {
  if (value.size() <= 8) return false;
  token = get_u64(value);
  pool = value.substr(8);
  return true;
}
std::string signal(std::string_view workflow_id, uint64_t seq) {
  std::string k = signal_prefix(workflow_id);
  put_u64(k, seq);
  return k;
}
std::string signal_prefix(std::string_view workflow_id) { return two(kSignal, workflow_id, ""); }
std::string idempotency(std::string_view pool, std::string_view key) { return two(kIdempotency, pool, key); }
std::string signal_id(std::string_view workflow_id, std::string_view id) { return two(kSignalId, workflow_id, id); }
std::string by_status(std::string_view pool, uint8_t status, std::string_view workflow_id) {
  std::string k = by_status_prefix(pool, status);
  k.append(workflow_id);
  return k;
}
std::string by_status_prefix(std::string_view pool) { return two(kByStatus, pool, ""); }
std::string by_status_prefix(std::string_view pool, uint8_t status) {
  std::string k = by_status_prefix(pool);
  k.push_back(static_cast<char>(status));
  return k;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c != 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\xff');  // unreachable for our prefixes, which start with a letter
}

void put_u64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint64_t get_u64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

void put_ts(std::string& out, int64_t ts) { put_u64(out, static_cast<uint64_t>(ts) ^ (1ULL << 63)); }
int64_t get_ts(std::string_view in) { return static_cast<int64_t>(get_u64(in) ^ (1ULL << 63)); }

bool parse_wake(std::string_view key, WakeKey& out) {
  if (key.empty() || key[0] != kWake) return false;
  auto sep = key.find('\0', 1);
  if (sep == std::string_view::npos || key.size() < sep + 1 + 8) return false;
  out.pool = key.substr(1, sep - 1);
  out.ts = get_ts(key.substr(sep + 1, 8));
  out.workflow_id = key.substr(sep + 9);
  return true;
}

bool parse_worker(std::string_view key, std::string_view& pool, std::string_view& id) {
  if (key.empty() || key[0] != kWorker) return false;
  auto sep = key.find('\0', 1);
  if (sep == std::string_view::npos) return false;
  pool = key.substr(1, sep - 1);
  id = key.substr(sep + 1);
  return true;
}

}  // namespace gasoline::store::keys
