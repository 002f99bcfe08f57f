#pragma once
// The gateway's Prometheus metrics (gasoline_gateway_ prefix). Labels are bounded: routes and status codes, never a
// pool, workflow or credential.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace gasoline::gateway {

class Metrics {
 public:
  Metrics();
  // Prometheus text exposition of everything registered.
  std::string text() const;

  void request(const std::string& route, int status, double seconds);
  void retried() { retries_.Increment(); }
  void set_inflight(double n) { inflight_.Set(n); }
  void set_kv_clients(double n) { kv_clients_.Set(n); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Counter& retries_;
  prometheus::Gauge& inflight_;
  prometheus::Gauge& kv_clients_;
};

}  // namespace gasoline::gateway
