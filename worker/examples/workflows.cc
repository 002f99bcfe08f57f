#include "worker/examples/workflows.h"

#include "worker/sdk/client.h"

#include <algorithm>

namespace gasoline::example {
namespace step = sdk::step;

namespace {

Json object_or_empty(const Json& task, const char* key) {
  return task.contains(key) && task[key].is_object() ? task[key] : Json::object();
}

template <typename T>
T input_or(const Json& input, const char* key, T fallback) {
  auto it = input.find(key);
  if (it == input.end() || !it->is_number()) return fallback;
  return it->get<T>();
}

// Who ran this step, kept in the state (the last 32 steps) so benchmarks can see assignment move on scaling.
Json record_worker(Json state, const Json& task, int64_t now) {
  Json by = state.contains("by") && state["by"].is_array() ? state["by"] : Json::array();
  by.push_back(Json::array({task.value("worker", ""), now}));
  if (by.size() > 32) by.erase(by.begin());
  state["by"] = std::move(by);
  return state;
}

Json order(const Json& task, int64_t now, const Defaults& d) {
  const std::string id = task.value("workflow_id", "");
  Json input = object_or_empty(task, "input");
  Json state = object_or_empty(task, "state");
  const std::string stage = state.value("stage", "");
  // Every step counts itself in the state, so the output says how many steps were committed (tests compare it
  // with the kv's count: a step committed twice would show up as a difference).
  state["n"] = state.value("n", 0) + 1;
  // A step's result consumes the signals its task carried, so a payment that arrives before the order waits for
  // it is kept in the state rather than lost.
  if (!state.value("paid", false)) {
    auto payments = sdk::signals_named(task, "payment");
    if (!payments.empty()) {
      state["paid"] = true;
      state["payment"] = payments.front().value("body", Json());
    }
  }

  if (stage.empty()) {
    // Reserve the items, then let the reservation settle briefly (a durable timer, not an in-process sleep).
    state["stage"] = "reserved";
    state["reservation"] = "RSV-" + id;
    return step::sleep_for(input_or<int64_t>(input, "hold_ms", d.reserve_hold_ms), state);
  }
  if (stage == "reserved" || stage == "awaiting_payment") {
    if (state.value("paid", false)) {
      state["stage"] = "charging";
      return step::next(state);
    }
    if (stage == "reserved") {
      int64_t timeout = input_or<int64_t>(input, "payment_timeout_ms", d.payment_timeout_ms);
      state["stage"] = "awaiting_payment";
      state["payment_deadline"] = now + timeout;
      return step::wait({"payment"}, timeout, state);
    }
    int64_t deadline = state.value("payment_deadline", int64_t{0});
    // The kv's deadline timer decides (its clock, not this pod's); the local clock only covers other wake-ups.
    if (task.value("wake_reason", "") == "deadline" || now >= deadline)
      return step::fail("payment not received before the deadline (" + std::to_string(deadline) + ")");
    // Woken for another reason (a handover): keep waiting for what is left of the deadline.
    return step::wait({"payment"}, deadline - now, state);
  }
  if (stage == "charging") {
    int failures = input_or<int>(input, "flaky_failures", d.flaky_failures);
    if (task.value("attempt", 0) < failures)
      return step::retry(
          "card processor timed out (simulated, attempt " + std::to_string(task.value("attempt", 0)) + ")", state,
          input_or<int64_t>(input, "backoff_ms", d.retry_backoff_ms));
    state["stage"] = "shipping";
    state["charged_at"] = now;
    state["charge_attempts"] = task.value("attempt", 0) + 1;
    Json result = step::wait({sdk::kChildCompleted}, std::nullopt, state);
    step::add_child(result, step::child("ship", Json{{"order", id}}, true, id + ".ship"));
    return result;
  }
  if (stage == "shipping") {
    auto done = sdk::signals_named(task, sdk::kChildCompleted);
    if (done.empty()) return step::wait({sdk::kChildCompleted}, std::nullopt, state);
    const Json& child = done.front()["body"];
    if (child.value("status", "") != "complete")
      return step::fail("shipping failed: " + child.value("error", std::string("unknown")));
    return step::complete(Json{{"order", id},
                               {"reservation", state.value("reservation", "")},
                               {"payment", state.value("payment", Json())},
                               {"charge_attempts", state.value("charge_attempts", 0)},
                               {"steps", state["n"]},
                               {"shipment", child.value("output", Json())}});
  }
  return step::fail("order in an unknown stage '" + stage + "'");
}

}  // namespace

Json run_step(const Json& task, int64_t now, const Defaults& d) {
  const std::string name = task.value("name", "");
  if (name == "noop")
    return step::complete(Json{{"lag_ms", now - task.value("wake_ts", now)}, {"worker", task.value("worker", "")}});
  if (name == "sleep") {
    Json input = object_or_empty(task, "input");
    Json state = record_worker(object_or_empty(task, "state"), task, now);
    int64_t ms = input_or<int64_t>(input, "ms", 100);
    int times = input_or<int>(input, "times", 1);
    int n = state.value("n", 0);
    if (n < times) {
      // A duration, not now + ms: the kv starts it on its own clock, so this pod's clock cannot skew it.
      state["n"] = n + 1;
      return step::sleep_for(ms, state);
    }
    // The timer fired at the kv's wake time; lag is how late this step ran after it.
    int64_t until = task.value("wake_ts", now);
    return step::complete(Json{{"until", until}, {"ran_at", now}, {"lag_ms", now - until}, {"by", state["by"]}});
  }
  if (name == "burn") {
    Json input = object_or_empty(task, "input");
    Json state = record_worker(object_or_empty(task, "state"), task, now);
    int steps = input_or<int>(input, "steps", 1);
    int n = state.value("n", 0) + 1;
    state["n"] = n;
    if (n < steps) return step::next(state);
    return step::complete(Json{{"steps", n}, {"by", state["by"]}});
  }
  if (name == "order") return order(task, now, d);
  if (name == "ship") return step::complete(Json{{"tracking", "TRK-" + task.value("workflow_id", "")}});
  return step::fail("the example app has no workflow named '" + name + "'");
}

int64_t cpu_ms_of(const Json& task) {
  if (task.value("name", "") != "burn") return 0;
  return std::clamp<int64_t>(input_or<int64_t>(object_or_empty(task, "input"), "cpu_ms", 50), 0, 10'000);
}

int64_t work_ms_of(const Json& task) {
  return std::clamp<int64_t>(input_or<int64_t>(object_or_empty(task, "input"), "work_ms", 0), 0, 60'000);
}

}  // namespace gasoline::example
