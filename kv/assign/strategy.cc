#include "kv/assign/strategy.h"

#include "kv/assign/hash.h"

namespace gasoline::assign {
namespace {

Candidates pick_modulo_next(std::span<const std::string> members, int64_t ts) {
  const uint64_t n = members.size();
  const uint64_t bucket = hash_ts(ts) % n;
  Candidates c;
  c.primary = static_cast<int>(bucket);
  if (n > 1) c.backup = static_cast<int>((bucket + n - 1) % n);
  return c;
}

Candidates pick_rendezvous(std::span<const std::string> members, std::string_view workflow_id) {
  // Strict total order: higher score first, then smaller id, so ties cannot depend on scan order.
  auto beats = [&](uint64_t sa, size_t a, uint64_t sb, size_t b) {
    return sa != sb ? sa > sb : members[a] < members[b];
  };
  Candidates c;
  uint64_t best = 0;
  uint64_t second = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    const uint64_t s = rendezvous_score(workflow_id, members[i]);
    if (c.primary < 0 || beats(s, i, best, static_cast<size_t>(c.primary))) {
      c.backup = c.primary;
      second = best;
      c.primary = static_cast<int>(i);
      best = s;
    } else if (c.backup < 0 || beats(s, i, second, static_cast<size_t>(c.backup))) {
      c.backup = static_cast<int>(i);
      second = s;
    }
  }
  return c;
}

}  // namespace

std::string_view to_string(Strategy s) {
  switch (s) {
    case Strategy::kModuloNext:
      return "modulo-next";
    case Strategy::kRendezvous:
      return "rendezvous";
    case Strategy::kAll:
      return "all";
  }
  return "unknown";
}

std::optional<Strategy> parse_strategy(std::string_view s) {
  for (Strategy st : {Strategy::kModuloNext, Strategy::kRendezvous, Strategy::kAll}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

Candidates pick(Strategy strategy, std::span<const std::string> sorted_members, std::string_view workflow_id,
                int64_t earliest_wake_ts) {
  if (sorted_members.empty()) return {};
  switch (strategy) {
    case Strategy::kModuloNext:
      return pick_modulo_next(sorted_members, earliest_wake_ts);
    case Strategy::kRendezvous:
      return pick_rendezvous(sorted_members, workflow_id);
    case Strategy::kAll:
      return {.primary = 0, .backup = -1};
  }
  return {};
}

Role role_of(Strategy strategy, const Ranking& ranking, std::string_view workflow_id, int64_t earliest_wake_ts) {
  const int n = static_cast<int>(ranking.members.size());
  if (ranking.self < 0 || ranking.self >= n) return Role::kNone;
  if (strategy == Strategy::kAll) return Role::kPrimary;
  const Candidates c = pick(strategy, ranking.members, workflow_id, earliest_wake_ts);
  if (c.primary == ranking.self) return Role::kPrimary;
  if (c.backup == ranking.self) return Role::kBackup;
  return Role::kNone;
}

bool should_take(Role role, int64_t overdue_ms, int64_t backup_grace_ms) {
  switch (role) {
    case Role::kPrimary:
      return true;
    case Role::kBackup:
      return overdue_ms >= backup_grace_ms;
    case Role::kNone:
      return false;
  }
  return false;
}

}  // namespace gasoline::assign
