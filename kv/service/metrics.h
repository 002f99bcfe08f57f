#pragma once
// The kv's Prometheus metrics. Names follow Prometheus conventions: gasoline_kv_ prefix, _total for counters,
// base units (seconds). Labels are bounded: pool and error code, never a workflow or worker id.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace gasoline::kv {

class Metrics {
 public:
  Metrics();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // The per-pool counters at 0 as soon as the pool exists, so rates and alerts on sheds, reclaims and conflicts
  // see a series (0) rather than none until the first event.
  void pool_seen(const std::string& pool) {
    for (auto* family : {&granted_, &conflicts_, &shed_, &reclaimed_, &orphans_}) family->Add({{"pool", pool}});
  }
  void pull(const std::string& pool) { pulls_.Add({{"pool", pool}}).Increment(); }
  void leases_granted(const std::string& pool, double n) { granted_.Add({{"pool", pool}}).Increment(n); }
  void lease_conflicts(const std::string& pool, double n) { conflicts_.Add({{"pool", pool}}).Increment(n); }
  void shed(const std::string& pool, double n) { shed_.Add({{"pool", pool}}).Increment(n); }
  void reclaimed(const std::string& pool, double n) { reclaimed_.Add({{"pool", pool}}).Increment(n); }
  void orphans_released(const std::string& pool) { orphans_.Add({{"pool", pool}}).Increment(); }
  void purged(const std::string& pool, double n) { purged_.Add({{"pool", pool}}).Increment(n); }
  // Leader-only gauges: the leader computes them from the committed state; a replica that loses the leadership
  // drops them (forget_leader_gauges), so a sum or max across replicas never mixes in a former leader's numbers.
  void workflows(const std::string& pool, double live, double finished) {
    set_leader_gauge(workflows_, {{"pool", pool}, {"state", "live"}}, live);
    set_leader_gauge(workflows_, {{"pool", pool}, {"state", "finished"}}, finished);
  }
  void workflows_by_status(const std::string& pool, const std::string& status, double n) {
    set_leader_gauge(by_status_, {{"pool", pool}, {"status", status}}, n);
  }
  // Wake entries due now and the age of the oldest one: the wake lag still outstanding (the histogram only sees
  // workflows once leased, so it is blind to work nobody pulls).
  void due(const std::string& pool, double n, double oldest_age_seconds) {
    set_leader_gauge(due_, {{"pool", pool}}, n);
    set_leader_gauge(oldest_due_, {{"pool", pool}}, oldest_age_seconds);
  }
  void forget_leader_gauges();
  void rpc_error(const std::string& code) { rpc_errors_.Add({{"code", code}}).Increment(); }
  // op is one of the kv's ops or "other" (authz::metric_op), reason one of authz's few labels.
  void denied(const std::string& op, const std::string& reason) {
    denied_.Add({{"op", op}, {"reason", reason}}).Increment();
  }
  // result: authenticated, refused, error or cached (kv/auth/token_review.h).
  void token_review(const std::string& result) { token_reviews_.Add({{"result", result}}).Increment(); }
  void bumps(double n) { bumps_.Add({}).Increment(n); }
  void active_workers(const std::string& pool, double n) { active_.Add({{"pool", pool}}).Set(n); }
  void wake_lag(const std::string& pool, double seconds);
  void committed(size_t commands);
  void command(const std::string& type, const std::string& result) {
    commands_.Add({{"type", type}, {"result", result}}).Increment();
  }
  void applied_index(double index) { applied_.Add({}).Set(index); }
  // reason is one of the transport's bounded set (kv/raft/transport.h), never a peer address.
  void raft_handshake_refused(const std::string& reason) { handshakes_refused_.Add({{"reason", reason}}).Increment(); }
  // This replica's view of the Raft cluster. A kv without Raft (one replica, local log) reports itself its leader.
  void raft_state(uint64_t term, bool has_leader, bool is_leader, bool leader_changed);
  void raft_commit_latency(double seconds);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& pulls_;
  prometheus::Family<prometheus::Counter>& granted_;
  prometheus::Family<prometheus::Counter>& conflicts_;
  prometheus::Family<prometheus::Counter>& shed_;
  prometheus::Family<prometheus::Counter>& reclaimed_;
  prometheus::Family<prometheus::Counter>& orphans_;
  prometheus::Family<prometheus::Counter>& purged_;
  prometheus::Family<prometheus::Gauge>& workflows_;
  prometheus::Family<prometheus::Counter>& rpc_errors_;
  prometheus::Family<prometheus::Counter>& denied_;
  prometheus::Family<prometheus::Counter>& token_reviews_;
  prometheus::Family<prometheus::Counter>& bumps_;
  prometheus::Family<prometheus::Counter>& commands_;
  prometheus::Family<prometheus::Counter>& handshakes_refused_;
  prometheus::Family<prometheus::Gauge>& active_;
  prometheus::Family<prometheus::Gauge>& applied_;
  prometheus::Family<prometheus::Histogram>& wake_lag_;
  prometheus::Family<prometheus::Histogram>& entry_size_;
  prometheus::Family<prometheus::Gauge>& by_status_;
  prometheus::Family<prometheus::Gauge>& due_;
  prometheus::Family<prometheus::Gauge>& oldest_due_;
  prometheus::Gauge& raft_term_;
  prometheus::Gauge& raft_has_leader_;
  prometheus::Gauge& raft_is_leader_;
  prometheus::Counter& leader_changes_;
  prometheus::Family<prometheus::Histogram>& commit_seconds_;

  // Under the lock: forget_leader_gauges (the Raft loop thread) may remove the gauge a sweep is setting.
  void set_leader_gauge(prometheus::Family<prometheus::Gauge>& family, const std::map<std::string, std::string>& labels,
                        double value);
  std::mutex leader_gauges_mu_;
  std::set<std::pair<prometheus::Family<prometheus::Gauge>*, prometheus::Gauge*>> leader_gauges_;
};

}  // namespace gasoline::kv
