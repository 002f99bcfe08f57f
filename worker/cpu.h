#pragma once
// The container's CPU load as a fraction of its allowance, read from the cgroup filesystem (docs/design.md, "CPU
// measurement"). The original measured the whole host (docs/design.md, "The original and what we changed"); this
// reads the container's own usage and limit:
//   cgroup v2: cpu.stat usage_usec over the interval, against cpu.max "quota period" (or the cores when "max");
//   cgroup v1: cpuacct.usage (ns) against cpu.cfs_quota_us / cpu.cfs_period_us (or the cores when -1);
//   hybrid (v1 controllers plus a v2 "unified" mount, like our test machines): v1 first, then unified/cpu.stat.
// The root is a parameter, so tests feed fixture directories. Time comes in as an argument: no clock inside.
#include "worker/app_cpu.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace gasoline::worker {

enum class CpuSource { kV2, kV1, kHybridV2, kAppProcesses, kNone };
const char* to_string(CpuSource);

struct CpuReaderOptions {
  std::string root = "/sys/fs/cgroup";
  // Contents of /proc/self/cgroup: locates this process's cgroup below the mounts when the container does not
  // have its own cgroup namespace. Empty = use the mount roots themselves.
  std::string self_cgroup;
  double cores = 0;               // CPUs available without a quota; 0 = ask the OS (affinity mask)
  double smoothing_ms = 2000;     // EMA time constant; 0 = no smoothing
  // Measure the app containers instead of this one (worker/app_cpu.h): their processes' CPU time through the pod's
  // shared PID namespace, against the app's CPU request (what the HPA's utilization is relative to; 0 = no request,
  // then the available cores).
  bool app_processes = false;
  std::string proc_root = "/proc";
  double app_cpu_request_cores = 0;
};

class CpuReader {
 public:
  explicit CpuReader(CpuReaderOptions options);

  CpuSource source() const { return source_; }
  // The app reader with CpuSource::kAppProcesses (after a sample: processes seen, shared namespace), else null.
  const AppProcessCpu* app() const { return app_.get(); }
  const std::string& usage_path() const { return usage_path_; }
  // The allowance in cores: quota / period, or the available cores when there is no quota. Re-read on every
  // sample because a pod's limit can change in place.
  double limit_cores() const;

  // Reads usage at `now_us` (a monotonic clock). The first call only primes the counters and returns nullopt;
  // later calls return the smoothed fraction of the allowance used since the previous call, clamped to [0, 1].
  // A failed read (file gone, garbage) returns nullopt and keeps the previous smoothed value.
  std::optional<double> sample(int64_t now_us);
  // The latest smoothed value (0 before the second sample, and always 0 without a cgroup).
  double value() const { return smoothed_; }
  // The unsmoothed fraction of the last interval.
  double last_raw() const { return last_raw_; }

 private:
  std::optional<uint64_t> read_usage_us();

  CpuReaderOptions options_;
  CpuSource source_ = CpuSource::kNone;
  std::shared_ptr<AppProcessCpu> app_;  // with app_processes (shared: the reader is copied into the sidecar)
  std::string usage_path_;  // cpu.stat (v2) or cpuacct.usage (v1)
  std::string max_path_;    // cpu.max (v2), empty when absent
  std::string quota_path_;  // cpu.cfs_quota_us (v1), empty when absent
  std::string period_path_;
  std::optional<uint64_t> prev_usage_us_;
  int64_t prev_now_us_ = 0;
  bool have_value_ = false;
  double smoothed_ = 0;
  double last_raw_ = 0;
};

// Number of CPUs this process may run on (sched_getaffinity), at least 1.
double available_cores();
// Reads /proc/self/cgroup ("" when unreadable).
std::string read_self_cgroup();

}  // namespace gasoline::worker
