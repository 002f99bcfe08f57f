#pragma once
// The app containers' CPU time, seen from the sidecar through the pod's shared PID namespace
// (shareProcessNamespace: true, which the operator renders). Load shedding must react to the CPU the HPA scales on,
// the app container's, not the sidecar's own; cgroup files cannot say it (inside a container only the container's
// own cgroup is mounted), but /proc/<pid>/stat of every process in the pod is readable by a non-root sidecar.
//
// A process belongs to the app when its /proc/<pid>/cgroup is neither the sidecar's nor the pod sandbox's (pid 1,
// the pause process). The total is the sum of utime + stime per process, tracked per (pid, start time): a new
// process adds all of its time, one that exited adds nothing more, so the total only grows. A process that lives
// shorter than one sample interval is missed: the reading suits long-running app processes (servers, workers).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace gasoline::worker {

class AppProcessCpu {
 public:
  // `proc_root` is /proc (tests pass a fixture directory with the same layout); `self_cgroup` is the text of the
  // sidecar's own /proc/self/cgroup.
  AppProcessCpu(std::string proc_root, std::string self_cgroup, long ticks_per_second);

  // Re-scans the processes and returns the app's cumulative CPU time in microseconds, or nullopt when the proc
  // root cannot be listed.
  std::optional<uint64_t> total_us();
  // After a scan: app processes seen, and whether pid 1 is another container's (false: no shared PID namespace,
  // so no app process can be seen at all).
  size_t processes() const { return processes_; }
  bool shared_namespace() const { return shared_; }

 private:
  std::string proc_root_;
  std::string self_cgroup_;
  long ticks_per_second_;
  std::map<std::pair<long, uint64_t>, uint64_t> last_ticks_;  // (pid, start time) → utime + stime
  uint64_t total_ticks_ = 0;
  size_t processes_ = 0;
  bool shared_ = false;
};

// Parses the CPU fields of a /proc/<pid>/stat line: (utime + stime, start time), in clock ticks. The command name
// (field 2, in parentheses) may itself contain spaces and parentheses, so fields are counted after the last ')'.
std::optional<std::pair<uint64_t, uint64_t>> parse_proc_stat(const std::string& line);

}  // namespace gasoline::worker
