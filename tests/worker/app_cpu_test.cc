// The app containers' CPU seen through a shared PID namespace (worker/app_cpu.h). A pod's shared PID namespace
// cannot be made on a plain host, so these tests feed a directory laid out like /proc (the boundary the real thing
// cannot reach here); the real namespace is exercised by the `real` label's pods. Table-driven over scans: each
// scan sets the processes (pid, cgroup, ticks, start time) and the expected cumulative CPU time.
#include "tests/support/process.h"
#include "worker/app_cpu.h"
#include "worker/cpu.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace gasoline::worker {
namespace {

namespace fs = std::filesystem;

const std::string kSelf = "12:cpu,cpuacct:/kubepods/pod1/sidecar\n0::/kubepods/pod1/sidecar\n";
const std::string kSandbox = "12:cpu,cpuacct:/kubepods/pod1/pause\n0::/kubepods/pod1/pause\n";
const std::string kApp = "12:cpu,cpuacct:/kubepods/pod1/app\n0::/kubepods/pod1/app\n";

struct Proc {
  int pid;
  std::string cgroup;
  uint64_t utime;
  uint64_t stime;
  uint64_t start;
  std::string comm = "app";
};

std::string stat_line(const Proc& p) {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
  // priority nice threads itrealvalue starttime ...
  return std::to_string(p.pid) + " (" + p.comm + ") S 1 1 1 0 -1 4194560 100 0 0 0 " + std::to_string(p.utime) +
         " " + std::to_string(p.stime) + " 7 7 20 0 1 0 " + std::to_string(p.start) + " 1000 200 18446744073709551615\n";
}

void lay_out(const std::string& root, const std::vector<Proc>& procs) {
  fs::remove_all(root);
  fs::create_directories(root);
  for (const auto& p : procs) {
    auto dir = root + "/" + std::to_string(p.pid);
    fs::create_directories(dir);
    std::ofstream(dir + "/cgroup") << p.cgroup;
    std::ofstream(dir + "/stat") << stat_line(p);
  }
  fs::create_directories(root + "/self");  // not a pid: skipped
}

struct Scan {
  std::vector<Proc> procs;
  uint64_t total_ticks;  // expected cumulative app ticks (100 per second)
  size_t app_processes;
};

struct Case {
  const char* name;
  std::vector<Scan> scans;
  bool shared = true;
};

class AppCpuTable : public ::testing::TestWithParam<Case> {};

TEST_P(AppCpuTable, SumsTheAppsProcessesOnly) {
  const auto& c = GetParam();
  testing::TempDir dir("app-cpu");
  AppProcessCpu reader(dir.path() + "/proc", kSelf, 100);
  for (size_t i = 0; i < c.scans.size(); ++i) {
    lay_out(dir.path() + "/proc", c.scans[i].procs);
    auto total = reader.total_us();
    ASSERT_TRUE(total) << c.name << ", scan " << i;
    EXPECT_EQ(*total, c.scans[i].total_ticks * 10000) << c.name << ", scan " << i;
    EXPECT_EQ(reader.processes(), c.scans[i].app_processes) << c.name << ", scan " << i;
    EXPECT_EQ(reader.shared_namespace(), c.shared) << c.name;
  }
}

const Proc pause1{1, kSandbox, 1, 1, 5};
const Proc sidecar{7, kSelf, 500, 500, 10};

INSTANTIATE_TEST_SUITE_P(
    Cases, AppCpuTable,
    ::testing::Values(
        Case{"the sidecar's and the sandbox's time never count",
             {{{pause1, sidecar}, 0, 0}, {{pause1, {7, kSelf, 900, 900, 10}}, 0, 0}}},
        Case{"every app process adds its time, and only what it used since the last scan",
             {{{pause1, sidecar, {20, kApp, 30, 10, 50}, {21, kApp, 5, 5, 60}}, 50, 2},
              {{pause1, sidecar, {20, kApp, 60, 20, 50}, {21, kApp, 5, 5, 60}}, 90, 2}}},
        Case{"an exited process keeps what it used; a new one adds all of its time",
             {{{pause1, sidecar, {20, kApp, 30, 10, 50}, {21, kApp, 5, 5, 60}}, 50, 2},
              {{pause1, sidecar, {20, kApp, 40, 10, 50}, {22, kApp, 3, 2, 90}}, 65, 2}}},
        Case{"a reused pid with another start time is another process",
             {{{pause1, sidecar, {20, kApp, 100, 0, 50}}, 100, 1}, {{pause1, sidecar, {20, kApp, 4, 0, 99}}, 104, 1}}},
        Case{"a command with spaces and parentheses parses",
             {{{pause1, sidecar, {20, kApp, 8, 2, 50, "my (odd) app"}}, 10, 1}}},
        Case{"without a shared PID namespace pid 1 is the sidecar's own container: nothing to see",
             {{{{1, kSelf, 500, 500, 5}, {7, kSelf, 1, 1, 9}}, 0, 0}},
             false}),
    [](const ::testing::TestParamInfo<Case>& info) { return "case" + std::to_string(info.index); });

TEST(AppCpu, ParsesThisProcessesOwnStat) {
  std::ifstream in("/proc/self/stat");
  std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto cpu = parse_proc_stat(line);
  ASSERT_TRUE(cpu) << line;
  EXPECT_GT(cpu->second, 0u) << "start time";
  EXPECT_FALSE(parse_proc_stat("garbage"));
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2"));
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0 0 20 0 1 0 9"));
}

// Through CpuReader: the fraction is the app's usage over the app's CPU request, which is what the HPA's
// utilisation is relative to (not the sidecar's own limit).
TEST(AppCpu, ReaderReportsUsageAgainstTheAppsRequest) {
  testing::TempDir dir("app-cpu-reader");
  const std::string proc = dir.path() + "/proc";
  CpuReaderOptions o;
  o.self_cgroup = kSelf;
  o.cores = 2;
  o.smoothing_ms = 0;
  o.app_processes = true;
  o.proc_root = proc;
  o.app_cpu_request_cores = 0.5;
  CpuReader reader(o);
  EXPECT_EQ(reader.source(), CpuSource::kAppProcesses);
  EXPECT_DOUBLE_EQ(reader.limit_cores(), 0.5);
  long hz = ::sysconf(_SC_CLK_TCK);
  lay_out(proc, {pause1, sidecar, {20, kApp, 0, 0, 50}});
  EXPECT_FALSE(reader.sample(1'000'000));  // primes
  // In one second the app used 0.2 s (and the sidecar a whole core, which must not count): 0.2 / 0.5 = 40 %.
  lay_out(proc, {pause1, {7, kSelf, 500 + static_cast<uint64_t>(hz), 500, 10},
                 {20, kApp, static_cast<uint64_t>(hz) / 5, 0, 50}});
  auto v = reader.sample(2'000'000);
  ASSERT_TRUE(v);
  EXPECT_NEAR(*v, 0.4, 0.02);
  // No request: the available cores are the allowance.
  o.app_cpu_request_cores = 0;
  EXPECT_DOUBLE_EQ(CpuReader(o).limit_cores(), 2.0);
}

}  // namespace
}  // namespace gasoline::worker
