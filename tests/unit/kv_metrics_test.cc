// The kv's Prometheus metrics as a scraper sees them (the text format): the Raft view of this replica, the
// leader-only pool gauges and how a replica that loses the leadership drops them, so dashboards and alerts that
// sum or max across replicas never count a former leader's numbers.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <string>

#include "kv/service/metrics.h"

namespace gasoline::kv {
namespace {

std::string scrape(const Metrics& m) { return prometheus::TextSerializer().Serialize(m.registry()->Collect()); }

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(KvMetrics, RaftStateAndLeaderChanges) {
  Metrics m;
  m.raft_state(3, true, false, true);
  m.raft_state(3, true, false, false);  // the same leader, published again: not a change
  m.raft_state(4, false, false, false);
  m.raft_state(4, true, true, true);
  auto text = scrape(m);
  EXPECT_TRUE(has_line(text, "gasoline_kv_raft_term 4")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_raft_has_leader 1")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_raft_is_leader 1")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_raft_leader_changes_total 2")) << text;
}

TEST(KvMetrics, APoolsCountersStartAtZero) {
  Metrics m;
  m.pool_seen("shop");
  auto text = scrape(m);
  for (const char* name : {"gasoline_kv_leases_granted_total", "gasoline_kv_lease_conflicts_total",
                           "gasoline_kv_shed_workflows_total", "gasoline_kv_reclaimed_leases_total",
                           "gasoline_kv_orphaned_leases_released_total"})
    EXPECT_TRUE(has_line(text, std::string(name) + "{pool=\"shop\"} 0")) << name << "\n" << text;
  m.shed("shop", 3);
  m.pool_seen("shop");  // seen again: nothing reset
  EXPECT_TRUE(has_line(scrape(m), "gasoline_kv_shed_workflows_total{pool=\"shop\"} 3"));
}

TEST(KvMetrics, CommitLatencyIsAHistogramInSeconds) {
  Metrics m;
  m.raft_commit_latency(0.003);
  m.raft_commit_latency(0.2);
  auto text = scrape(m);
  EXPECT_TRUE(has_line(text, "gasoline_kv_raft_commit_duration_seconds_count 2")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_raft_commit_duration_seconds_bucket{le=\"0.005\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_raft_commit_duration_seconds_bucket{le=\"0.25\"} 2")) << text;
}

TEST(KvMetrics, LeaderOnlyGaugesAreDroppedWithTheLeadership) {
  Metrics m;
  m.workflows_by_status("shop", "running", 7);
  m.due("shop", 12, 1.5);
  m.workflows("shop", 20, 5);
  m.pull("shop");  // a counter: kept
  auto text = scrape(m);
  EXPECT_TRUE(has_line(text, "gasoline_kv_workflows_by_status{pool=\"shop\",status=\"running\"} 7")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_due_workflows{pool=\"shop\"} 12")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_oldest_due_age_seconds{pool=\"shop\"} 1.5")) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_workflows{pool=\"shop\",state=\"live\"} 20")) << text;

  m.forget_leader_gauges();
  text = scrape(m);
  EXPECT_EQ(text.find("pool=\"shop\",status="), std::string::npos) << text;
  EXPECT_EQ(text.find("gasoline_kv_due_workflows{"), std::string::npos) << text;
  EXPECT_EQ(text.find("gasoline_kv_oldest_due_age_seconds{"), std::string::npos) << text;
  EXPECT_EQ(text.find("gasoline_kv_workflows{"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text, "gasoline_kv_pulls_total{pool=\"shop\"} 1")) << text;

  // Leading again sets them afresh.
  m.due("shop", 1, 0);
  EXPECT_TRUE(has_line(scrape(m), "gasoline_kv_due_workflows{pool=\"shop\"} 1"));
}

}  // namespace
}  // namespace gasoline::kv
