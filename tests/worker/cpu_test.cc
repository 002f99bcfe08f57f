// The cgroup CPU reader against fixture directories (docs/design.md, "CPU measurement"): v2, v1, hybrid and none; quota
// and no quota; the process's own cgroup below the mount; the EMA; counter resets and garbage. Table-driven: each case
// is a tree of files and a sequence of (usage, time) samples with the expected smoothed value.
#include "tests/support/process.h"
#include "worker/cpu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

namespace gasoline::worker {
namespace {

namespace fs = std::filesystem;

void write(const std::string& root, const std::string& rel, const std::string& content) {
  fs::path p = fs::path(root) / rel;
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

struct Sample {
  uint64_t usage_us;
  int64_t now_us;
  std::optional<double> expected;  // nullopt: the sample primes (or fails) and returns nothing
};

struct Case {
  std::string name;
  std::map<std::string, std::string> files;
  std::string usage_file;  // where each sample's usage is written; "" = nowhere (no cgroup)
  bool v1_format;          // cpuacct.usage in ns vs cpu.stat usage_usec
  std::string self_cgroup;
  double cores;
  double smoothing_ms;
  CpuSource source;
  double limit;
  std::vector<Sample> samples;
};

std::string usage_text(uint64_t us, bool v1) {
  if (v1) return std::to_string(us * 1000) + "\n";
  return "usage_usec " + std::to_string(us) + "\nuser_usec " + std::to_string(us / 2) + "\nsystem_usec 0\n";
}

constexpr int64_t kSec = 1'000'000;

std::vector<Case> cases() {
  return {
      {"v2 with a quota of half a core",
       {{"cgroup.controllers", "cpu io memory\n"}, {"cpu.max", "50000 100000\n"}},
       "cpu.stat", false, "", 4, 0, CpuSource::kV2, 0.5,
       {{1'000'000, 10 * kSec, std::nullopt}, {1'250'000, 11 * kSec, 0.5}, {1'750'000, 12 * kSec, 1.0}}},
      {"v2 without a quota uses the cores",
       {{"cgroup.controllers", "cpu\n"}, {"cpu.max", "max 100000\n"}},
       "cpu.stat", false, "", 4, 0, CpuSource::kV2, 4,
       {{0, kSec, std::nullopt}, {2 * kSec, 2 * kSec, 0.5}, {2 * kSec, 3 * kSec, 0.0}}},
      {"v2 root cgroup without cpu.max uses the cores",
       {{"cgroup.controllers", "cpu\n"}},
       "cpu.stat", false, "", 2, 0, CpuSource::kV2, 2,
       {{0, kSec, std::nullopt}, {kSec, 2 * kSec, 0.5}}},
      {"v2 finds the process's own cgroup below the mount",
       {{"cgroup.controllers", "cpu\n"}, {"cpu.stat", "usage_usec 999999999\n"},
        {"kubepods/pod1/cpu.max", "200000 100000\n"}},
       "kubepods/pod1/cpu.stat", false, "0::/kubepods/pod1\n", 8, 0, CpuSource::kV2, 2,
       {{0, kSec, std::nullopt}, {kSec, 2 * kSec, 0.5}}},
      {"v1 with a quota of two cores",
       {{"cpu/cpu.cfs_quota_us", "200000\n"}, {"cpu/cpu.cfs_period_us", "100000\n"}},
       "cpuacct/cpuacct.usage", true, "", 8, 0, CpuSource::kV1, 2,
       {{5 * kSec, kSec, std::nullopt}, {6 * kSec, 2 * kSec, 0.5}, {8 * kSec, 3 * kSec, 1.0}}},
      {"v1 without a quota (-1) uses the cores",
       {{"cpu/cpu.cfs_quota_us", "-1\n"}, {"cpu/cpu.cfs_period_us", "100000\n"}},
       "cpuacct/cpuacct.usage", true, "", 2, 0, CpuSource::kV1, 2,
       {{0, kSec, std::nullopt}, {kSec / 2, 2 * kSec, 0.25}}},
      {"v1 with the combined cpu,cpuacct mount",
       {{"cpu,cpuacct/cpu.cfs_quota_us", "100000\n"}, {"cpu,cpuacct/cpu.cfs_period_us", "100000\n"}},
       "cpu,cpuacct/cpuacct.usage", true, "", 4, 0, CpuSource::kV1, 1,
       {{0, kSec, std::nullopt}, {kSec / 4, 2 * kSec, 0.25}}},
      {"v1 finds the process's own cgroup below the mount",
       {{"cpuacct/cpuacct.usage", "777\n"}, {"cpu/docker/abc/cpu.cfs_quota_us", "50000\n"},
        {"cpu/docker/abc/cpu.cfs_period_us", "100000\n"}},
       "cpuacct/docker/abc/cpuacct.usage", true, "3:cpu:/docker/abc\n2:cpuacct:/docker/abc\n0::/\n", 4, 0,
       CpuSource::kV1, 0.5,
       {{0, kSec, std::nullopt}, {kSec / 4, 2 * kSec, 0.5}}},
      {"hybrid: v2 usage from the unified mount, the quota from v1",
       {{"cpu/cpu.cfs_quota_us", "100000\n"}, {"cpu/cpu.cfs_period_us", "100000\n"}},
       "unified/cpu.stat", false, "", 4, 0, CpuSource::kHybridV2, 1,
       {{0, kSec, std::nullopt}, {kSec / 2, 2 * kSec, 0.5}}},
      {"hybrid like this machine: no quota anywhere",
       {{"cpu/cpu.cfs_quota_us", "-1\n"}, {"cpu/cpu.cfs_period_us", "100000\n"},
        {"unified/cgroup.procs", ""}},
       "cpuacct/cpuacct.usage", true, "2:cpuacct:/\n1:cpu:/\n0::/\n", 2, 0, CpuSource::kV1, 2,
       {{0, kSec, std::nullopt}, {kSec, 2 * kSec, 0.5}}},
      {"no cgroup at all: nothing is read and the value stays 0",
       {{"unrelated", "x\n"}},
       "", false, "", 2, 0, CpuSource::kNone, 2,
       {{0, kSec, std::nullopt}, {kSec, 2 * kSec, std::nullopt}}},
      {"usage above the allowance is clamped to 1",
       {{"cgroup.controllers", "cpu\n"}, {"cpu.max", "100000 100000\n"}},
       "cpu.stat", false, "", 4, 0, CpuSource::kV2, 1,
       {{0, kSec, std::nullopt}, {3 * kSec, 2 * kSec, 1.0}}},
      {"a counter going backwards (new cgroup) primes again",
       {{"cgroup.controllers", "cpu\n"}, {"cpu.max", "100000 100000\n"}},
       "cpu.stat", false, "", 4, 0, CpuSource::kV2, 1,
       {{5 * kSec, kSec, std::nullopt}, {kSec, 2 * kSec, std::nullopt}, {kSec + kSec / 2, 3 * kSec, 0.5}}},
      {"no time passed: the sample is skipped",
       {{"cgroup.controllers", "cpu\n"}, {"cpu.max", "100000 100000\n"}},
       "cpu.stat", false, "", 4, 0, CpuSource::kV2, 1,
       {{0, kSec, std::nullopt}, {kSec, kSec, std::nullopt}, {kSec + kSec / 2, 2 * kSec, 0.5}}},
      {"EMA with a 1 s time constant: 1.0 then idle for 1 s gives e^-1",
       {{"cgroup.controllers", "cpu\n"}, {"cpu.max", "100000 100000\n"}},
       "cpu.stat", false, "", 4, 1000, CpuSource::kV2, 1,
       {{0, kSec, std::nullopt},
        {kSec, 2 * kSec, 1.0},                   // the first value is taken as is
        {kSec, 3 * kSec, std::exp(-1.0)},        // raw 0 after 1 s: 1 + (1 - e^-1)(0 - 1)
        {kSec, 3 * kSec + kSec / 2, std::exp(-1.5)}}},
      {"EMA converges towards a steady load",
       {{"cgroup.controllers", "cpu\n"}, {"cpu.max", "100000 100000\n"}},
       "cpu.stat", false, "", 4, 500, CpuSource::kV2, 1,
       {{0, 0, std::nullopt},
        {0, kSec, 0.0},
        {kSec / 2, 2 * kSec, 0.5 * (1 - std::exp(-2.0))},
        {kSec, 3 * kSec, 0.5 * (1 - std::exp(-2.0)) + (1 - std::exp(-2.0)) * (0.5 - 0.5 * (1 - std::exp(-2.0)))}}},
  };
}

TEST(CpuReader, Table) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    testing::TempDir dir("gasoline-cpu");
    for (const auto& [rel, content] : c.files) write(dir.path(), rel, content);
    if (!c.usage_file.empty()) write(dir.path(), c.usage_file, usage_text(c.samples.front().usage_us, c.v1_format));
    CpuReader reader(CpuReaderOptions{dir.path(), c.self_cgroup, c.cores, c.smoothing_ms});
    EXPECT_EQ(reader.source(), c.source) << to_string(reader.source());
    if (!c.usage_file.empty()) {
      EXPECT_EQ(reader.usage_path(), dir.path() + "/" + c.usage_file);
    }
    EXPECT_DOUBLE_EQ(reader.limit_cores(), c.limit);
    for (size_t i = 0; i < c.samples.size(); ++i) {
      const auto& s = c.samples[i];
      SCOPED_TRACE("sample " + std::to_string(i));
      if (!c.usage_file.empty()) write(dir.path(), c.usage_file, usage_text(s.usage_us, c.v1_format));
      auto got = reader.sample(s.now_us);
      ASSERT_EQ(got.has_value(), s.expected.has_value());
      if (s.expected) {
        EXPECT_NEAR(*got, *s.expected, 1e-9);
        EXPECT_NEAR(reader.value(), *s.expected, 1e-9);
      }
    }
    if (c.source == CpuSource::kNone) {
      EXPECT_EQ(reader.value(), 0.0);
    }
  }
}

TEST(CpuReader, QuotaChangesInPlace) {
  testing::TempDir dir("gasoline-cpu");
  write(dir.path(), "cgroup.controllers", "cpu\n");
  write(dir.path(), "cpu.max", "100000 100000\n");
  write(dir.path(), "cpu.stat", usage_text(0, false));
  CpuReader reader(CpuReaderOptions{dir.path(), "", 4, 0});
  EXPECT_FALSE(reader.sample(kSec));
  write(dir.path(), "cpu.stat", usage_text(kSec / 2, false));
  EXPECT_NEAR(*reader.sample(2 * kSec), 0.5, 1e-9);
  write(dir.path(), "cpu.max", "200000 100000\n");  // the pod was resized to two cores
  write(dir.path(), "cpu.stat", usage_text(kSec, false));
  EXPECT_NEAR(*reader.sample(3 * kSec), 0.25, 1e-9);
  write(dir.path(), "cpu.max", "max 100000\n");
  EXPECT_DOUBLE_EQ(reader.limit_cores(), 4);
}

TEST(CpuReader, GarbageKeepsThePreviousValue) {
  testing::TempDir dir("gasoline-cpu");
  write(dir.path(), "cpuacct/cpuacct.usage", "0\n");
  CpuReader reader(CpuReaderOptions{dir.path(), "", 1, 0});
  EXPECT_EQ(reader.source(), CpuSource::kV1);
  EXPECT_FALSE(reader.sample(kSec));
  write(dir.path(), "cpuacct/cpuacct.usage", std::to_string(kSec / 4 * 1000) + "\n");
  EXPECT_NEAR(*reader.sample(2 * kSec), 0.25, 1e-9);
  write(dir.path(), "cpuacct/cpuacct.usage", "not a number\n");
  EXPECT_FALSE(reader.sample(3 * kSec));
  EXPECT_NEAR(reader.value(), 0.25, 1e-9);
  fs::remove(dir.path() + "/cpuacct/cpuacct.usage");
  EXPECT_FALSE(reader.sample(4 * kSec));
  EXPECT_NEAR(reader.value(), 0.25, 1e-9);
  // Garbage in cpu.cfs_quota_us falls back to the cores.
  write(dir.path(), "cpu/cpu.cfs_quota_us", "lots\n");
  write(dir.path(), "cpu/cpu.cfs_period_us", "100000\n");
  write(dir.path(), "cpuacct/cpuacct.usage", "0\n");
  CpuReader again(CpuReaderOptions{dir.path(), "", 3, 0});
  EXPECT_EQ(again.source(), CpuSource::kV1);
  EXPECT_DOUBLE_EQ(again.limit_cores(), 3);
}

TEST(CpuReader, ThisMachineReadsSomething) {
  // Whatever this host is (our CI is cgroup v1 with a hybrid unified mount), the reader must not throw and must
  // report a fraction in [0, 1] once primed.
  CpuReader reader(CpuReaderOptions{"/sys/fs/cgroup", read_self_cgroup(), 0, 0});
  std::cout << "this machine: " << to_string(reader.source()) << " usage=" << reader.usage_path()
            << " limit_cores=" << reader.limit_cores() << "\n";
  reader.sample(1);
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i) sink = sink + i;  // burn a little CPU so the second sample sees usage
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch());
  if (auto v = reader.sample(std::max<int64_t>(2, now.count()))) {
    EXPECT_GE(*v, 0.0);
    EXPECT_LE(*v, 1.0);
  }
}

}  // namespace
}  // namespace gasoline::worker
