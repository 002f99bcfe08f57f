#pragma once
// Prints the tail of every replica's log, and of any other log files named, when the running gtest test has
// failed. Declare it right after the cluster, so it runs before the cluster's destructor kills the replicas.
#include "tests/support/kv_cluster.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace gasoline::testing {

struct LogsOnFailure {
  KvCluster& cluster;
  std::vector<std::string> other_logs = {};

  ~LogsOnFailure() {
    if (!::testing::Test::HasFailure()) return;
    for (size_t i = 0; i < cluster.size(); ++i)
      print("replica " + std::to_string(cluster.raft_id(i)) + " log (tail)", cluster.log_text(i));
    for (const auto& path : other_logs) {
      std::ifstream in(path);
      print(path + " (tail)", std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
    }
  }

 private:
  static void print(const std::string& title, const std::string& text) {
    std::cout << "---- " << title << " ----\n" << (text.size() > 6000 ? text.substr(text.size() - 6000) : text) << "\n";
  }
};

}  // namespace gasoline::testing
