#include "kv/service/metrics.h"

namespace gasoline::kv {
using namespace prometheus;

Metrics::Metrics()
    : registry_(std::make_shared<Registry>()),
      pulls_(BuildCounter().Name("gasoline_kv_pulls_total").Help("Pull requests served").Register(*registry_)),
      granted_(BuildCounter()
                   .Name("gasoline_kv_leases_granted_total")
                   .Help("Workflow leases granted to workers")
                   .Register(*registry_)),
      conflicts_(BuildCounter()
                     .Name("gasoline_kv_lease_conflicts_total")
                     .Help("Lease compare-and-sets that lost (already leased or changed since the scan)")
                     .Register(*registry_)),
      shed_(BuildCounter()
                .Name("gasoline_kv_shed_workflows_total")
                .Help("Due workflows a busy worker skipped because of its CPU shedding curve")
                .Register(*registry_)),
      reclaimed_(BuildCounter()
                     .Name("gasoline_kv_reclaimed_leases_total")
                     .Help("Leases taken back from lost workers")
                     .Register(*registry_)),
      orphans_(BuildCounter()
                   .Name("gasoline_kv_orphaned_leases_released_total")
                   .Help("Leases released because their live worker did not hold them for the orphan grace "
                         "(the pull's answer was lost)")
                   .Register(*registry_)),
      purged_(BuildCounter()
                  .Name("gasoline_kv_workflows_purged_total")
                  .Help("Finished workflows deleted after their pool's retention")
                  .Register(*registry_)),
      workflows_(BuildGauge()
                     .Name("gasoline_kv_workflows")
                     .Help("Workflow records by pool: live (not finished) and finished (kept until retention)")
                     .Register(*registry_)),
      rpc_errors_(BuildCounter()
                      .Name("gasoline_kv_rpc_errors_total")
                      .Help("RPC errors returned or connections closed, by code")
                      .Register(*registry_)),
      denied_(BuildCounter()
                   .Name("gasoline_kv_requests_denied_total")
                   .Help("Requests refused because the caller's role does not allow them, by op and reason "
                         "(role, namespace, worker)")
                   .Register(*registry_)),
      token_reviews_(BuildCounter()
                         .Name("gasoline_kv_token_reviews_total")
                         .Help("ServiceAccount tokens checked with a TokenReview, by result (authenticated, refused, "
                               "error: the API server did not answer; cached: answered from the kv's cache)")
                         .Register(*registry_)),
      bumps_(BuildCounter()
                 .Name("gasoline_kv_bumps_sent_total")
                 .Help("Bump frames pushed to worker streams")
                 .Register(*registry_)),
      commands_(BuildCounter()
                    .Name("gasoline_kv_commands_total")
                    .Help("Commands applied, by type and result")
                    .Register(*registry_)),
      handshakes_refused_(BuildCounter()
                              .Name("gasoline_kv_raft_handshakes_refused_total")
                              .Help("Raft connections refused before reaching libraft (no or a wrong raft secret, "
                                    "malformed, too slow), by reason")
                              .Register(*registry_)),
      active_(BuildGauge()
                  .Name("gasoline_kv_active_workers")
                  .Help("Workers in the ranking of a pool (active and pinged within the window)")
                  .Register(*registry_)),
      applied_(BuildGauge().Name("gasoline_kv_applied_index").Help("Last applied log index").Register(*registry_)),
      wake_lag_(BuildHistogram()
                    .Name("gasoline_kv_wake_lag_seconds")
                    .Help("Time from a workflow's wake-up to the pull that leased it")
                    .Register(*registry_)),
      entry_size_(BuildHistogram()
                      .Name("gasoline_kv_group_commit_commands")
                      .Help("Commands per log entry (group commit)")
                      .Register(*registry_)),
      by_status_(BuildGauge()
                     .Name("gasoline_kv_workflows_by_status")
                     .Help("Workflow records by pool and status (pending, running, sleeping, waiting, complete, "
                           "failed, cancelled); leader only")
                     .Register(*registry_)),
      due_(BuildGauge()
               .Name("gasoline_kv_due_workflows")
               .Help("Wake entries due now (ready to lease), by pool; leader only")
               .Register(*registry_)),
      oldest_due_(BuildGauge()
                      .Name("gasoline_kv_oldest_due_age_seconds")
                      .Help("How long the oldest due wake entry has been due (0 when none is), by pool; leader only")
                      .Register(*registry_)),
      raft_term_(BuildGauge().Name("gasoline_kv_raft_term").Help("Current Raft term").Register(*registry_).Add({})),
      raft_has_leader_(BuildGauge()
                           .Name("gasoline_kv_raft_has_leader")
                           .Help("1 while this replica knows a Raft leader")
                           .Register(*registry_)
                           .Add({})),
      raft_is_leader_(BuildGauge()
                          .Name("gasoline_kv_raft_is_leader")
                          .Help("1 while this replica is the Raft leader")
                          .Register(*registry_)
                          .Add({})),
      leader_changes_(BuildCounter()
                          .Name("gasoline_kv_raft_leader_changes_total")
                          .Help("Times this replica learned of a new Raft leader (after another one or none)")
                          .Register(*registry_)
                          .Add({})),
      commit_seconds_(BuildHistogram()
                          .Name("gasoline_kv_raft_commit_duration_seconds")
                          .Help("Leader: from proposing a log entry to its commit by a quorum")
                          .Register(*registry_)) {}

void Metrics::set_leader_gauge(Family<Gauge>& family, const std::map<std::string, std::string>& labels, double value) {
  std::lock_guard lock(leader_gauges_mu_);
  auto& g = family.Add(labels);
  g.Set(value);
  leader_gauges_.insert({&family, &g});
}

void Metrics::forget_leader_gauges() {
  std::lock_guard lock(leader_gauges_mu_);
  for (auto [family, gauge] : leader_gauges_) family->Remove(gauge);
  leader_gauges_.clear();
}

void Metrics::raft_state(uint64_t term, bool has_leader, bool is_leader, bool leader_changed) {
  raft_term_.Set(static_cast<double>(term));
  raft_has_leader_.Set(has_leader ? 1 : 0);
  raft_is_leader_.Set(is_leader ? 1 : 0);
  if (leader_changed) leader_changes_.Increment();
}

void Metrics::raft_commit_latency(double seconds) {
  static const Histogram::BucketBoundaries kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                    0.05,   0.1,   0.25,   0.5,   1,     2.5};
  commit_seconds_.Add({}, kBuckets).Observe(seconds);
}

void Metrics::wake_lag(const std::string& pool, double seconds) {
  static const Histogram::BucketBoundaries kBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,  0.5,    1,     2.5,  5,     10,   30};
  wake_lag_.Add({{"pool", pool}}, kBuckets).Observe(seconds);
}

void Metrics::committed(size_t commands) {
  static const Histogram::BucketBoundaries kBuckets{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
  entry_size_.Add({}, kBuckets).Observe(static_cast<double>(commands));
}

}  // namespace gasoline::kv
