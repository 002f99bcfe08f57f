#include "kv/assign/shedding.h"

#include <cmath>

#include "kv/assign/hash.h"

namespace gasoline::assign {
namespace {

constexpr uint32_t kFull = 1000;

// Knees like 0.7 and 0.9 are not exact in binary, so an exact midpoint can land a hair below an
// integer (524.9999999) and floor would be off by one. Values this close to an integer are noise.
constexpr double kRoundingSlack = 1e-6;

}  // namespace

std::optional<std::string> validate(const ShedCurve& c) {
  if (!std::isfinite(c.start_knee) || !std::isfinite(c.end_knee)) return "shed curve: knees must be finite numbers";
  if (c.start_knee < 0.0 || c.start_knee > 1.0 || c.end_knee < 0.0 || c.end_knee > 1.0)
    return "shed curve: knees must lie in [0, 1]";
  if (!(c.start_knee < c.end_knee)) return "shed curve: start_knee must be below end_knee";
  if (c.min_ratio > kFull) return "shed curve: min_ratio must be at most 1000";
  return std::nullopt;
}

uint32_t pull_ratio(const ShedCurve& c, double cpu) {
  const uint32_t floor_ratio = c.min_ratio < kFull ? c.min_ratio : kFull;
  if (std::isnan(cpu)) cpu = 0.0;
  if (cpu <= c.start_knee) return kFull;
  if (cpu >= c.end_knee) return floor_ratio;
  // Only reached with start < cpu < end, so the span is positive; the checks below also absorb NaN
  // knees (every comparison above is false) by falling back to no shedding.
  double frac = (cpu - c.start_knee) / (c.end_knee - c.start_knee);
  if (!(frac >= 0.0)) frac = 0.0;
  if (frac > 1.0) frac = 1.0;
  const double r = std::floor(kFull - frac * (kFull - floor_ratio) + kRoundingSlack);
  if (r <= floor_ratio) return floor_ratio;
  if (r >= kFull) return kFull;
  return static_cast<uint32_t>(r);
}

bool keep(uint32_t ratio, std::string_view workflow_id, int64_t wake_ts) {
  if (ratio >= kFull) return true;
  return shed_point(workflow_id, wake_ts) < ratio;
}

}  // namespace gasoline::assign
