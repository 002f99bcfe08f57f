#include "worker/cpu.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace gasoline::worker {
namespace fs = std::filesystem;

const char* to_string(CpuSource s) {
  switch (s) {
    case CpuSource::kV2: return "cgroup-v2";
    case CpuSource::kV1: return "cgroup-v1";
    case CpuSource::kHybridV2: return "cgroup-v2-unified";
    case CpuSource::kAppProcesses: return "app-processes";
    case CpuSource::kNone: return "none";
  }
  return "none";
}

double available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string read_self_cgroup() {
  std::ifstream in("/proc/self/cgroup");
  if (!in) return "";
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// The paths /proc/self/cgroup gives: the v2 path ("0::/x") and, for v1, the path per controller.
struct SelfPaths {
  std::string v2;
  std::string cpu;
  std::string cpuacct;
};

SelfPaths parse_self(const std::string& text) {
  SelfPaths out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':');
    auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      out.v2 = path;
      continue;
    }
    std::istringstream names(controllers);
    std::string name;
    while (std::getline(names, name, ',')) {
      if (name == "cpu") out.cpu = path;
      if (name == "cpuacct") out.cpuacct = path;
    }
  }
  return out;
}

// The process's own cgroup below a mount first (a host, or a container without a cgroup namespace whose mount
// shows the whole tree), then the mount itself (a container whose runtime mounted its own cgroup there).
std::vector<std::string> candidate_dirs(const std::string& mount, const std::string& self_path) {
  std::vector<std::string> dirs;
  if (!self_path.empty() && self_path != "/") dirs.push_back(mount + self_path);
  dirs.push_back(mount);
  return dirs;
}

std::optional<std::string> find_file(const std::vector<std::string>& mounts, const std::string& self_path,
                                     const std::string& file) {
  for (const auto& m : mounts)
    for (const auto& dir : candidate_dirs(m, self_path))
      if (is_file(dir + "/" + file)) return dir + "/" + file;
  return std::nullopt;
}

std::optional<int64_t> parse_int(const std::string& text) {
  std::istringstream in(text);
  int64_t v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

}  // namespace

CpuReader::CpuReader(CpuReaderOptions options) : options_(std::move(options)) {
  if (options_.cores <= 0) options_.cores = available_cores();
  if (options_.app_processes) {
    source_ = CpuSource::kAppProcesses;
    app_ = std::make_shared<AppProcessCpu>(options_.proc_root, options_.self_cgroup, ::sysconf(_SC_CLK_TCK));
    return;
  }
  const auto& root = options_.root;
  auto self = parse_self(options_.self_cgroup);
  const std::vector<std::string> v1_acct{root + "/cpuacct", root + "/cpu,cpuacct", root + "/cpuacct,cpu"};
  const std::vector<std::string> v1_cpu{root + "/cpu", root + "/cpu,cpuacct", root + "/cpuacct,cpu"};

  auto v1_quota = [&] {
    auto quota = find_file(v1_cpu, self.cpu, "cpu.cfs_quota_us");
    if (!quota) return;
    auto period = quota->substr(0, quota->size() - std::string("cpu.cfs_quota_us").size()) + "cpu.cfs_period_us";
    if (!is_file(period)) return;
    quota_path_ = *quota;
    period_path_ = period;
  };

  if (is_file(root + "/cgroup.controllers")) {
    // Pure cgroup v2: the root is a cgroup2 mount.
    if (auto stat = find_file({root}, self.v2, "cpu.stat")) {
      source_ = CpuSource::kV2;
      usage_path_ = *stat;
      auto dir = stat->substr(0, stat->size() - std::string("cpu.stat").size());
      if (is_file(dir + "cpu.max")) max_path_ = dir + "cpu.max";
      return;
    }
  }
  if (auto usage = find_file(v1_acct, self.cpuacct, "cpuacct.usage")) {
    source_ = CpuSource::kV1;
    usage_path_ = *usage;
    v1_quota();
    return;
  }
  if (auto stat = find_file({root + "/unified"}, self.v2, "cpu.stat")) {
    source_ = CpuSource::kHybridV2;
    usage_path_ = *stat;
    auto dir = stat->substr(0, stat->size() - std::string("cpu.stat").size());
    if (is_file(dir + "cpu.max")) {
      max_path_ = dir + "cpu.max";
    } else {
      v1_quota();
    }
    return;
  }
  source_ = CpuSource::kNone;
}

double CpuReader::limit_cores() const {
  if (source_ == CpuSource::kAppProcesses)
    return options_.app_cpu_request_cores > 0 ? options_.app_cpu_request_cores : options_.cores;
  if (!max_path_.empty()) {
    if (auto text = read_file(max_path_)) {
      std::istringstream in(*text);
      std::string quota;
      int64_t period = 0;
      if (in >> quota >> period && quota != "max" && period > 0) {
        if (auto q = parse_int(quota); q && *q > 0) return static_cast<double>(*q) / static_cast<double>(period);
      }
    }
    return options_.cores;
  }
  if (!quota_path_.empty()) {
    auto quota = read_file(quota_path_);
    auto period = read_file(period_path_);
    if (quota && period) {
      auto q = parse_int(*quota);
      auto p = parse_int(*period);
      if (q && p && *q > 0 && *p > 0) return static_cast<double>(*q) / static_cast<double>(*p);
    }
  }
  return options_.cores;
}

std::optional<uint64_t> CpuReader::read_usage_us() {
  if (source_ == CpuSource::kNone) return std::nullopt;
  if (source_ == CpuSource::kAppProcesses) return app_->total_us();
  auto text = read_file(usage_path_);
  if (!text) return std::nullopt;
  if (source_ == CpuSource::kV1) {
    auto ns = parse_int(*text);
    if (!ns || *ns < 0) return std::nullopt;
    return static_cast<uint64_t>(*ns) / 1000;
  }
  std::istringstream in(*text);
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == "usage_usec") return value < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(value));
  }
  return std::nullopt;
}

std::optional<double> CpuReader::sample(int64_t now_us) {
  auto usage = read_usage_us();
  if (!usage) return std::nullopt;
  if (!prev_usage_us_ || *usage < *prev_usage_us_ || now_us <= prev_now_us_) {
    // First reading, a counter that went backwards (a new cgroup), or no time passed: start over from here.
    prev_usage_us_ = usage;
    prev_now_us_ = now_us;
    return std::nullopt;
  }
  double elapsed_us = static_cast<double>(now_us - prev_now_us_);
  double used_us = static_cast<double>(*usage - *prev_usage_us_);
  prev_usage_us_ = usage;
  prev_now_us_ = now_us;
  double limit = std::max(limit_cores(), 1e-6);
  double raw = std::clamp(used_us / (elapsed_us * limit), 0.0, 1.0);
  last_raw_ = raw;
  if (!have_value_ || options_.smoothing_ms <= 0) {
    smoothed_ = raw;
    have_value_ = true;
  } else {
    double alpha = 1.0 - std::exp(-(elapsed_us / 1000.0) / options_.smoothing_ms);
    smoothed_ += alpha * (raw - smoothed_);
  }
  return smoothed_;
}

}  // namespace gasoline::worker
