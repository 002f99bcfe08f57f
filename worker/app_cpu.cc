#include "worker/app_cpu.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace gasoline::worker {
namespace fs = std::filesystem;

namespace {

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::optional<std::pair<uint64_t, uint64_t>> parse_proc_stat(const std::string& line) {
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(line.substr(close + 1));
  // Fields 3.. follow the command: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue starttime(22).
  std::vector<std::string> fields;
  std::string f;
  while (fields.size() < 20 && in >> f) fields.push_back(f);
  if (fields.size() < 20) return std::nullopt;
  try {
    uint64_t utime = std::stoull(fields[11]);
    uint64_t stime = std::stoull(fields[12]);
    uint64_t start = std::stoull(fields[19]);
    return std::make_pair(utime + stime, start);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

AppProcessCpu::AppProcessCpu(std::string proc_root, std::string self_cgroup, long ticks_per_second)
    : proc_root_(std::move(proc_root)),
      self_cgroup_(std::move(self_cgroup)),
      ticks_per_second_(ticks_per_second > 0 ? ticks_per_second : 100) {}

std::optional<uint64_t> AppProcessCpu::total_us() {
  std::error_code ec;
  fs::directory_iterator it(proc_root_, ec);
  if (ec) return std::nullopt;
  auto sandbox = slurp(proc_root_ + "/1/cgroup");
  shared_ = sandbox && *sandbox != self_cgroup_;
  std::map<std::pair<long, uint64_t>, uint64_t> seen;
  size_t processes = 0;
  for (const auto& entry : it) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos || name == "1") continue;
    auto cgroup = slurp(entry.path().string() + "/cgroup");
    if (!cgroup || *cgroup == self_cgroup_ || (sandbox && *cgroup == *sandbox)) continue;
    auto stat = slurp(entry.path().string() + "/stat");
    if (!stat) continue;  // exited between the listing and the read
    auto cpu = parse_proc_stat(*stat);
    if (!cpu) continue;
    auto key = std::make_pair(std::stol(name), cpu->second);
    auto before = last_ticks_.find(key);
    uint64_t previous = before == last_ticks_.end() ? 0 : before->second;
    if (cpu->first > previous) total_ticks_ += cpu->first - previous;
    seen[key] = std::max(cpu->first, previous);
    ++processes;
  }
  last_ticks_.swap(seen);
  processes_ = processes;
  return total_ticks_ * 1000000 / static_cast<uint64_t>(ticks_per_second_);
}

}  // namespace gasoline::worker
