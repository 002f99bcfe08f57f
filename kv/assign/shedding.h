#pragma once
// Load shedding: a busy worker pulls only part of the work assigned to it; what it skips reaches the
// backup after the grace. Replaces the original calc_pull_ratio, which never shed (max instead of min)
// and, once that was fixed, shed everything on an idle worker (wrong intercept, pull ratio used as a
// shed ratio). See docs/design.md, "The pull algorithm" and "The original and what we changed".
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gasoline::assign {

// CPU is a fraction of the worker's allowance (1.0 = its whole quota), so the curve does not depend on
// how many cores the pod is given. Knees are fractions too; min_ratio is per-mille.
struct ShedCurve {
  double start_knee = 0.50;
  double end_knee = 0.80;
  uint32_t min_ratio = 100;
};

// Error text for a curve that must not be configured (knees not finite or outside [0, 1],
// start >= end, min_ratio > 1000); nullopt when it is fine.
std::optional<std::string> validate(const ShedCurve&);

// Pull ratio in per-mille: 1000 at or below start_knee, min_ratio at or above end_knee, linear in
// between (rounded down), clamped to [min_ratio, 1000]. A broken CPU reading must not stop a worker from
// pulling, so NaN and -inf count as 0 and +inf as fully loaded. Total even for curves validate()
// rejects: no division by zero, no overflow, result always in [0, 1000].
uint32_t pull_ratio(const ShedCurve&, double cpu);

// Pull an entry only if shed_point(workflow_id, wake_ts) < ratio; ratio >= 1000 keeps everything.
bool keep(uint32_t ratio, std::string_view workflow_id, int64_t wake_ts);

}  // namespace gasoline::assign
