#include "worker/metrics.h"

#include <prometheus/text_serializer.h>

namespace gasoline::worker {
using namespace prometheus;

namespace {
Gauge& gauge(Registry& r, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}
Counter& counter(Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}
const Histogram::BucketBoundaries kLatency{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,    1,     2.5,  5,     10,   30, 120};
}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<Registry>()),
      pulled_(counter(*registry_, "gasoline_worker_tasks_pulled_total", "Tasks leased from the kv")),
      pulls_(BuildCounter()
                 .Name("gasoline_worker_pulls_total")
                 .Help("Pull requests to the kv, by result (tasks, empty, error)")
                 .Register(*registry_)),
      shed_(counter(*registry_, "gasoline_worker_shed_total",
                    "Due workflows the kv left to the backup because of this worker's CPU shedding curve")),
      bumps_(counter(*registry_, "gasoline_worker_bumps_total", "Bumps received from the kv")),
      pings_(BuildCounter()
                 .Name("gasoline_worker_pings_total")
                 .Help("Membership pings, by result")
                 .Register(*registry_)),
      results_(BuildCounter()
                   .Name("gasoline_worker_results_total")
                   .Help("Step results by outcome: ok, duplicate (a retried commit), conflict (lease lost: 409), "
                         "invalid, buffered (kv unreachable), dropped (buffer bound hit), released (lease given back)")
                   .Register(*registry_)),
      http_(BuildCounter()
                .Name("gasoline_worker_http_requests_total")
                .Help("App API requests by route and status class")
                .Register(*registry_)),
      wake_lag_(&BuildHistogram()
                     .Name("gasoline_worker_wake_lag_seconds")
                     .Help("From a workflow's wake-up to the moment this sidecar handed it to the app")
                     .Register(*registry_)
                     .Add({}, kLatency)),
      task_duration_(&BuildHistogram()
                          .Name("gasoline_worker_task_duration_seconds")
                          .Help("From handing a task to the app until its result arrived")
                          .Register(*registry_)
                          .Add({}, kLatency)),
      leased_(gauge(*registry_, "gasoline_worker_leased_tasks", "Tasks this sidecar holds a lease on")),
      queued_(gauge(*registry_, "gasoline_worker_queued_tasks", "Leased tasks not yet handed to the app")),
      free_slots_(gauge(*registry_, "gasoline_worker_free_slots", "Concurrency minus leased tasks")),
      buffered_(gauge(*registry_, "gasoline_worker_buffered_results", "Results waiting for the kv to come back")),
      polls_(gauge(*registry_, "gasoline_worker_waiting_polls", "App long polls waiting for tasks")),
      cpu_(gauge(*registry_, "gasoline_worker_cpu_ratio", "Smoothed container CPU as a fraction of its allowance")),
      connected_(gauge(*registry_, "gasoline_worker_kv_connected", "1 while the kv connection is up")),
      ready_(gauge(*registry_, "gasoline_worker_ready", "1 while connected and pinged (/readyz)")),
      draining_(gauge(*registry_, "gasoline_worker_draining",
                      "1 while draining (GET /drain, POST /v1/drain or SIGTERM) until the worker leaves or is undrained")),
      undrains_(counter(*registry_, "gasoline_worker_undrains_total",
                        "Drains undone because no SIGTERM followed within --undrain-after (a stuck or stray preStop "
                        "hook, or an app that asked to drain and restarted)")) {}

std::string Metrics::text() const { return TextSerializer().Serialize(registry_->Collect()); }

}  // namespace gasoline::worker
