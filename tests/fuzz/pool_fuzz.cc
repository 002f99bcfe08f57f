// libFuzzer target for the operator's pool core (operator/pool): parse_spec, render, kv_pool_name,
// selector_string, compute_status, semantic_subset and needs_apply on arbitrary JSON.
//
// The input is one JSON text (anything else is skipped). It is used as the pool as a whole; when it is an array of
// at least two values, [0] is also used as a pool with [1] as its live Deployment, and the two are compared both
// ways with semantic_subset and needs_apply.
//
// Contracts checked (operator/pool/*.h): the only exception allowed out of parse_spec, render, kv_pool_name and
// selector_string is SpecError; compute_status, semantic_subset and needs_apply never throw. Anything else thrown,
// any crash or sanitizer report is a finding. Beyond that, a few properties the reconciler relies on:
//   - render is deterministic (same pool, same children);
//   - every value is a semantic subset of itself, and a rendered child never needs an apply against itself;
//   - what the controller writes can be serialised: the rendered children, and the status computed with the
//     SpecError's message as the reconcile error (that message ends up in the Degraded condition and an Event).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "operator/pool/applied_fields.h"
#include "operator/pool/compare.h"
#include "operator/pool/render.h"
#include "operator/pool/spec.h"
#include "operator/pool/status.h"

namespace {

using nlohmann::json;
using namespace gasoline::op::pool;

constexpr const char* kManager = "gasoline-operator";
const std::string kNow = "2026-01-01T00:00:00Z";

const Defaults& defaults() {
  static const Defaults d{"registry.example/gasoline/gasoline-worker:0.1.0", "gasoline-kv.gasoline-system.svc:7400",
                          15};
  return d;
}

[[noreturn]] void finding(const char* where, const std::string& what) {
  std::fprintf(stderr, "FINDING in %s: %s\n", where, what.c_str());
  std::abort();
}

// Runs f; a SpecError is the documented failure (its message is handed to on_spec_error), anything else a finding.
template <class F, class G>
void spec_error_only(const char* where, F&& f, G&& on_spec_error) {
  try {
    f();
  } catch (const SpecError& e) {
    on_spec_error(e);
  } catch (const std::exception& e) {
    finding(where, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    finding(where, "unexpected non-std exception");
  }
}

template <class F>
void spec_error_only(const char* where, F&& f) {
  spec_error_only(where, std::forward<F>(f), [](const SpecError&) {});
}

template <class F>
void never_throws(const char* where, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    finding(where, std::string("must not throw, threw: ") + e.what());
  } catch (...) {
    finding(where, "must not throw, threw a non-std exception");
  }
}

// The controller sends these with dump() (strict UTF-8); a throw here would fail the apply, not just a check.
void serialisable(const char* where, const json& value) { never_throws(where, [&] { (void)value.dump(); }); }

void check_child(const char* where, const json& child, const json* live) {
  serialisable(where, child);
  never_throws(where, [&] {
    if (!semantic_subset(child, child)) finding(where, "a rendered child is not a semantic subset of itself");
    if (needs_apply(child, child, kManager)) finding(where, "a rendered child needs an apply against itself");
    if (live) (void)needs_apply(child, *live, kManager);
  });
}

void status_checks(const json& pool, const json* deployment, const std::string* reconcile_error) {
  for (int variant = 0; variant < 2; ++variant) {
    Observed observed;
    observed.deployment = deployment;
    observed.paused = variant == 1;
    if (variant == 1) observed.active_workers = 3;
    if (reconcile_error) observed.reconcile_error = *reconcile_error;
    never_throws("compute_status", [&] {
      const json status = compute_status(pool, observed, kNow);
      serialisable("compute_status (dump)", status);
      // The controller reads its own Degraded condition back this way to decide whether to send an Event.
      for (const auto& c : status.at("conditions")) (void)(c.value("type", "") + c.value("message", ""));
    });
  }
}

void pool_checks(const json& pool, const json* deployment) {
  std::string error;
  bool failed = false;
  spec_error_only(
      "parse_spec/render",
      [&] {
        const Spec spec = parse_spec(pool, defaults());
        const Children children = render(spec);
        const Children again = render(pool, defaults());
        if (children.deployment != again.deployment || children.service != again.service ||
            children.hpa != again.hpa || children.pdb != again.pdb)
          finding("render", "two renders of the same pool differ");
        check_child("render (deployment)", children.deployment, deployment);
        check_child("render (service)", children.service, nullptr);
        if (children.hpa) check_child("render (hpa)", *children.hpa, nullptr);
        if (children.pdb) check_child("render (pdb)", *children.pdb, nullptr);
        (void)replica_ceiling(spec);
      },
      [&](const SpecError& e) {
        failed = true;
        error = e.what();
      });
  spec_error_only("kv_pool_name", [&] { (void)kv_pool_name(pool); });
  spec_error_only("selector_string", [&] { (void)selector_string(pool); });
  status_checks(pool, nullptr, nullptr);
  if (deployment) status_checks(pool, deployment, nullptr);
  // As the controller does: a pool that fails to parse gets the SpecError's message as its reconcile error.
  if (failed) status_checks(pool, deployment, &error);
}

void compare_checks(const json& a, const json& b) {
  never_throws("semantic_subset", [&] {
    (void)semantic_subset(a, b);
    if (!semantic_subset(a, a)) finding("semantic_subset", "a value is not a semantic subset of itself");
  });
  never_throws("needs_apply", [&] { (void)needs_apply(a, b, kManager); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json input = json::parse(data, data + size, nullptr, false);
  if (input.is_discarded()) return 0;
  pool_checks(input, nullptr);
  compare_checks(input, input);
  if (input.is_array() && input.size() >= 2) {
    pool_checks(input[0], &input[1]);
    compare_checks(input[0], input[1]);
    compare_checks(input[1], input[0]);
  }
  return 0;
}
