#pragma once
// The kv's Prometheus metrics. Names follow Prometheus conventions: gasoline_kv_ prefix, _total for counters,
// base units (seconds). Labels are bounded: pool and error code, never a workflow or worker id.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace gasoline::kv {

class Metrics {
 public:
  Metrics();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void pull(const std::string& pool) { pulls_.Add({{"pool", pool}}).Increment(); }
  void leases_granted(const std::string& pool, double n) { granted_.Add({{"pool", pool}}).Increment(n); }
  void lease_conflicts(const std::string& pool, double n) { conflicts_.Add({{"pool", pool}}).Increment(n); }
  void shed(const std::string& pool, double n) { shed_.Add({{"pool", pool}}).Increment(n); }
  void reclaimed(const std::string& pool, double n) { reclaimed_.Add({{"pool", pool}}).Increment(n); }
  void orphans_released(const std::string& pool) { orphans_.Add({{"pool", pool}}).Increment(); }
  void purged(const std::string& pool, double n) { purged_.Add({{"pool", pool}}).Increment(n); }
  void workflows(const std::string& pool, double live, double finished) {
    workflows_.Add({{"pool", pool}, {"state", "live"}}).Set(live);
    workflows_.Add({{"pool", pool}, {"state", "finished"}}).Set(finished);
  }
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
};

}  // namespace gasoline::kv
