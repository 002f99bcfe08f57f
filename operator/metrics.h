#pragma once
// The operator's Prometheus metrics (gasoline_operator_ prefix). Labels are bounded: kinds, verbs, results and
// status classes, never a pool name (a cluster may hold thousands of pools).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <string_view>

namespace gasoline::op {

class Metrics {
 public:
  Metrics();
  std::string text() const;

  void api_request(std::string_view method, int status);
  void reconcile(const std::string& result, double seconds);
  // kind: Deployment, Service, ...; action: apply, delete, status, event
  void write(const std::string& kind, const std::string& action) {
    writes_.Add({{"kind", kind}, {"action", action}}).Increment();
  }
  void set_leader(bool leading) { leader_.Set(leading ? 1 : 0); }
  void set_pools(double n) { pools_.Set(n); }
  void set_queue_depth(double n) { queue_depth_.Set(n); }
  void set_kv_reachable(bool ok) { kv_reachable_.Set(ok ? 1 : 0); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& reconciles_;
  prometheus::Family<prometheus::Counter>& writes_;
  prometheus::Family<prometheus::Histogram>& reconcile_seconds_;
  prometheus::Gauge& leader_;
  prometheus::Gauge& pools_;
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& kv_reachable_;
};

}  // namespace gasoline::op
