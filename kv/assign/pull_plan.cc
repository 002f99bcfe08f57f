#include "kv/assign/pull_plan.h"

#include <algorithm>

#include "kv/assign/shedding.h"

namespace gasoline::assign {

bool Member::serves(std::string_view name) const {
  return workflows.empty() || std::find(workflows.begin(), workflows.end(), name) != workflows.end();
}

std::vector<std::string> live_ids(std::span<const Member> members, std::string_view name, int64_t now,
                                  int64_t active_window_ms) {
  std::vector<std::string> ids;
  for (const auto& m : members) {
    if (!m.active || m.last_ping_ts < now - active_window_ms) continue;
    if (!name.empty() && !m.serves(name)) continue;
    ids.emplace_back(m.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

int64_t shed_key(int64_t wake_ts, int64_t now, bool backup) {
  // Part of the shedding behaviour the primary/backup hand-off relies on (docs/design.md, step 5): the golden
  // ratio constant spreads consecutive epochs over the whole key space.
  const int64_t epoch = now / 1000;
  return wake_ts ^
         static_cast<int64_t>((static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL) ^ (backup ? 0x5bd1e995ULL : 0));
}

PullPlanner::PullPlanner(PullConfig config, PullRequest request, std::span<const Member> members,
                         const PullsSeen& seen, int64_t now)
    : config_(config), request_(request), members_(members), seen_(seen), now_(now) {
  if (request_.max == 0) return;
  auto self = std::find_if(members_.begin(), members_.end(), [&](const Member& m) { return m.id == request_.worker; });
  if (self != members_.end() && self->active) self_ = &*self;
}

bool PullPlanner::primary_handles(const std::string& primary, const std::string& workflow_id, int64_t ts) const {
  auto it = seen_.find(primary);
  if (it == seen_.end() || it->second.ts < now_ - config_.backup_grace_ms) return false;
  return keep(it->second.ratio, workflow_id, shed_key(ts, now_, false));
}

const Ranking& PullPlanner::ranking_for(const std::string& name) {
  auto it = rankings_.find(name);
  if (it == rankings_.end())
    it = rankings_
             .emplace(name, make_ranking(live_ids(members_, name, now_, config_.active_window_ms), request_.worker))
             .first;
  return it->second;
}

bool PullPlanner::offer(int64_t ts, const std::string& workflow_id, const std::string& name) {
  if (!self_ || plan_.more) return false;
  if (!self_->serves(name)) return true;
  const auto& ranking = ranking_for(name);
  const auto role = role_of(config_.strategy, ranking, workflow_id, ts);
  if (!should_take(role, now_ - ts, config_.backup_grace_ms)) return true;
  const bool backup = role == Role::kBackup;
  if (backup) {
    auto c = pick(config_.strategy, ranking.members, workflow_id, ts);
    if (c.primary >= 0 && primary_handles(ranking.members[c.primary], workflow_id, ts)) return true;
  }
  if (!keep(request_.ratio, workflow_id, shed_key(ts, now_, backup))) {
    ++plan_.shed;
    return true;
  }
  if (plan_.leases.size() >= request_.max) {
    plan_.more = true;
    return false;
  }
  plan_.leases.push_back(PlannedLease{workflow_id, ts});
  return true;
}

}  // namespace gasoline::assign
