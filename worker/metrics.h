#pragma once
// The sidecar's Prometheus metrics (gasoline_worker_ prefix). Labels are bounded: result kinds, routes and status
// classes, never a workflow or worker id (the original's worker_id label had unbounded cardinality).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace gasoline::worker {

class Metrics {
 public:
  Metrics();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // Prometheus text exposition of everything registered.
  std::string text() const;

  void pulled(double n) { pulled_.Increment(n); }
  void pull(const std::string& result) { pulls_.Add({{"result", result}}).Increment(); }
  void shed(double n) { shed_.Increment(n); }
  void bump() { bumps_.Increment(); }
  void ping(const std::string& result) { pings_.Add({{"result", result}}).Increment(); }
  // ok, duplicate, conflict, invalid, buffered, dropped, released
  void result(const std::string& outcome) { results_.Add({{"outcome", outcome}}).Increment(); }
  void http(const std::string& route, int status) {
    http_.Add({{"route", route}, {"code", std::to_string(status / 100) + "xx"}}).Increment();
  }
  void wake_lag(double seconds) { wake_lag_->Observe(seconds); }
  void task_duration(double seconds) { task_duration_->Observe(seconds); }
  void set_leased(double n) { leased_.Set(n); }
  void set_queued(double n) { queued_.Set(n); }
  void set_free_slots(double n) { free_slots_.Set(n); }
  void set_buffered(double n) { buffered_.Set(n); }
  void set_waiting_polls(double n) { polls_.Set(n); }
  void set_cpu(double ratio) { cpu_.Set(ratio); }
  void set_connected(bool c) { connected_.Set(c ? 1 : 0); }
  void set_ready(bool r) { ready_.Set(r ? 1 : 0); }
  void set_draining(bool d) { draining_.Set(d ? 1 : 0); }
  void undrained() { undrains_.Increment(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter& pulled_;
  prometheus::Family<prometheus::Counter>& pulls_;
  prometheus::Counter& shed_;
  prometheus::Counter& bumps_;
  prometheus::Family<prometheus::Counter>& pings_;
  prometheus::Family<prometheus::Counter>& results_;
  prometheus::Family<prometheus::Counter>& http_;
  prometheus::Histogram* wake_lag_;
  prometheus::Histogram* task_duration_;
  prometheus::Gauge& leased_;
  prometheus::Gauge& queued_;
  prometheus::Gauge& free_slots_;
  prometheus::Gauge& buffered_;
  prometheus::Gauge& polls_;
  prometheus::Gauge& cpu_;
  prometheus::Gauge& connected_;
  prometheus::Gauge& ready_;
  prometheus::Gauge& draining_;
  prometheus::Counter& undrains_;
};

}  // namespace gasoline::worker
