#include "kv/cli/view.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace gasoline::cli {

namespace {

const char* const kStatuses[] = {"pending", "running", "sleeping", "waiting", "complete", "failed", "cancelled"};

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string percent(double fraction) { return fixed(fraction * 100, 0) + "%"; }

const Json* find_pool(const Json& answer, const std::string& pool) {
  if (!answer.is_object() || !answer.contains("pools") || !answer["pools"].is_array()) return nullptr;
  for (const auto& p : answer["pools"])
    if (p.value("pool", "") == pool) return &p;
  return nullptr;
}

// A per-second rate of a counter between two samples; "-" without a previous sample or when the counter went
// back (the kv's leader changed and its counters started over).
std::string rate(const Json* before, const Json& after, const char* key, double seconds) {
  if (!before || seconds <= 0) return "-";
  auto a = before->value(key, uint64_t{0}), b = after.value(key, uint64_t{0});
  if (b < a) return "-";
  return fixed(static_cast<double>(b - a) / seconds, 1) + "/s";
}

std::string count_of(const Json& pool, const char* status) {
  if (!pool.contains("counts") || !pool["counts"].is_object()) return "-";
  return std::to_string(pool["counts"].value(status, uint64_t{0}));
}

}  // namespace

std::string format_table(const Rows& rows) {
  std::vector<size_t> widths;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out.append(widths[i] + 2 - r[i].size(), ' ');
    }
    out += "\n";
  }
  return out;
}

std::string format_age(int64_t ms) {
  if (ms < 0) return "-";
  if (ms < 10000) return std::to_string(ms) + "ms";
  if (ms < 600000) return std::to_string(ms / 1000) + "s";
  if (ms < 7200000) return std::to_string(ms / 60000) + "m";
  if (ms < 172800000) return std::to_string(ms / 3600000) + "h";
  return std::to_string(ms / 86400000) + "d";
}

Rows status_rows(const Json& status) {
  Rows rows{{"POOL", "WORKERS", "ACTIVE", "DUE", "OLDEST DUE"}};
  for (const char* s : kStatuses) {
    std::string h = s;
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    rows[0].push_back(h);
  }
  rows[0].push_back("RETENTION");
  if (!status.contains("pools") || !status["pools"].is_array()) return rows;
  for (const auto& p : status["pools"]) {
    std::vector<std::string> row{p.value("pool", ""), std::to_string(p.value("workers", 0)),
                                 std::to_string(p.value("active_workers", 0)), std::to_string(p.value("due", 0)),
                                 format_age(p.value("oldest_due_age_ms", int64_t{0}))};
    for (const char* s : kStatuses) row.push_back(count_of(p, s));
    int64_t retention = p.value("retention_ms", int64_t{0});
    row.push_back((retention == 0 ? std::string("forever") : format_age(retention)) + " (" +
                  p.value("retention_source", "") + ")");
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string render_watch(const std::string& pool, const std::string& kv, const PoolSample* prev,
                         const PoolSample& cur) {
  std::ostringstream out;
  const Json raft = cur.status.contains("raft") && cur.status["raft"].is_object() ? cur.status["raft"] : Json::object();
  out << "gasctl watch " << pool << "   kv " << kv << " (" << cur.status.value("role", "?");
  if (raft.contains("term")) out << ", term " << raft.value("term", uint64_t{0});
  out << ", applied " << cur.status.value("applied_index", uint64_t{0}) << ")\n";

  const Json* p = find_pool(cur.status, pool);
  if (!p) {
    out << "\npool " << pool << ": not known to the kv (no workers, wake entries or finished workflows yet)\n";
    return out.str();
  }
  const Json* before = prev ? find_pool(prev->status, pool) : nullptr;
  const double seconds = prev ? cur.at_s - prev->at_s : 0;
  out << "throughput " << rate(before, *p, "leases_granted", seconds) << " leased   shed "
      << rate(before, *p, "shed", seconds) << "   due " << p->value("due", 0) << "   running " << count_of(*p, "running")
      << "   wake lag (oldest due) " << format_age(p->value("oldest_due_age_ms", int64_t{0})) << "\n";
  out << "workflows ";
  for (const char* s : kStatuses) out << "  " << s << " " << count_of(*p, s);
  out << "\n";
  out << "workers    " << p->value("workers", 0) << " in the pool, " << p->value("active_workers", 0)
      << " active (ranked)\n\n";

  const Json* ws = find_pool(cur.workers, pool);
  const Json* ws_before = prev ? find_pool(prev->workers, pool) : nullptr;
  Rows rows{{"RANK", "WORKER", "POD", "STATE", "CPU", "FREE", "SHARE", "EXPECTED", "LEASES/S", "LAST PING"}};
  if (ws && ws->contains("workers")) {
    for (const auto& w : (*ws)["workers"]) {
      const Json* w_before = nullptr;
      if (ws_before && ws_before->contains("workers"))
        for (const auto& b : (*ws_before)["workers"])
          if (b.value("id", "") == w.value("id", "")) w_before = &b;
      int rank = w.value("rank", -1);
      rows.push_back({rank >= 0 ? std::to_string(rank) : "-", w.value("id", ""), w.value("pod", ""),
                      w.value("state", ""), percent(w.value("cpu", 0.0)), std::to_string(w.value("free_slots", 0)),
                      fixed(w.value("share", 0.0) * 100, 1) + "%", fixed(w.value("expected_share", 0.0) * 100, 1) + "%",
                      rate(w_before, w, "leases_granted", seconds),
                      format_age(w.value("last_ping_age_ms", int64_t{-1}))});
    }
  }
  out << format_table(rows);
  if (rows.size() == 1) out << "(no worker has pinged this pool)\n";
  return out.str();
}

}  // namespace gasoline::cli
