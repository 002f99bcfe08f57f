#include "operator/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace gasoline::op {

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("gasoline_operator_api_requests_total")
                    .Help("Requests to the Kubernetes API server by method and status code (0 = no answer)")
                    .Register(*registry_)),
      reconciles_(prometheus::BuildCounter()
                      .Name("gasoline_operator_reconciles_total")
                      .Help("Pool reconciles by result (ok, error, invalid)")
                      .Register(*registry_)),
      writes_(prometheus::BuildCounter()
                  .Name("gasoline_operator_writes_total")
                  .Help("Writes to the API server by kind and action (apply, delete, status, event)")
                  .Register(*registry_)),
      reconcile_seconds_(prometheus::BuildHistogram()
                             .Name("gasoline_operator_reconcile_duration_seconds")
                             .Help("Time to reconcile one pool")
                             .Register(*registry_)),
      leader_(prometheus::BuildGauge()
                  .Name("gasoline_operator_leader")
                  .Help("1 while this replica holds the leader lease")
                  .Register(*registry_)
                  .Add({})),
      pools_(prometheus::BuildGauge()
                 .Name("gasoline_operator_pools")
                 .Help("GasolineWorkerPools in the cache")
                 .Register(*registry_)
                 .Add({})),
      queue_depth_(prometheus::BuildGauge()
                       .Name("gasoline_operator_workqueue_depth")
                       .Help("Pool keys waiting to be reconciled")
                       .Register(*registry_)
                       .Add({})),
      kv_reachable_(prometheus::BuildGauge()
                        .Name("gasoline_operator_kv_reachable")
                        .Help("1 when the last status read from the default kv succeeded")
                        .Register(*registry_)
                        .Add({})) {
  // Every result at 0 from the start: a rate() or an alert on errors then has a series to work with before the
  // first error, instead of "no data".
  for (const char* result : {"ok", "error", "invalid"}) reconciles_.Add({{"result", result}});
}

void Metrics::api_request(std::string_view method, int status) {
  requests_.Add({{"method", std::string(method)}, {"code", std::to_string(status)}}).Increment();
}

void Metrics::reconcile(const std::string& result, double seconds) {
  reconciles_.Add({{"result", result}}).Increment();
  reconcile_seconds_
      .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10})
      .Observe(seconds);
}

std::string Metrics::text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace gasoline::op
