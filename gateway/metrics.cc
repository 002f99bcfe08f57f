#include "gateway/metrics.h"

#include <prometheus/text_serializer.h>

namespace gasoline::gateway {
using namespace prometheus;

namespace {
const Histogram::BucketBoundaries kLatency{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<Registry>()),
      requests_(BuildCounter()
                    .Name("gasoline_gateway_requests_total")
                    .Help("HTTP requests by route and status code")
                    .Register(*registry_)),
      durations_(BuildHistogram()
                     .Name("gasoline_gateway_request_duration_seconds")
                     .Help("From a request's arrival to its answer, kv calls included, by route")
                     .Register(*registry_)),
      retries_(BuildCounter()
                   .Name("gasoline_gateway_kv_retries_total")
                   .Help("kv calls sent again because the kv was unavailable (a leader election, a replica away)")
                   .Register(*registry_)
                   .Add({})),
      inflight_(BuildGauge()
                    .Name("gasoline_gateway_inflight_requests")
                    .Help("Requests being answered (beyond --max-inflight: 429)")
                    .Register(*registry_)
                    .Add({})),
      kv_clients_(BuildGauge()
                      .Name("gasoline_gateway_kv_connections")
                      .Help("kv connections open, one per distinct caller credential")
                      .Register(*registry_)
                      .Add({})) {}

void Metrics::request(const std::string& route, int status, double seconds) {
  requests_.Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
  durations_.Add({{"route", route}}, kLatency).Observe(seconds);
}

std::string Metrics::text() const { return TextSerializer().Serialize(registry_->Collect()); }

}  // namespace gasoline::gateway
