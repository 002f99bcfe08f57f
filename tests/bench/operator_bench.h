#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace gasoline::bench {

struct OperatorBenchOptions {
  int pools = 500;
  std::vector<int> workers{1, 4};  // reconcile workers: one scenario each, side by side
  std::string kubeconfig;          // default: $KUBECONFIG
  std::string crd;                 // default: the repo's crds/ file
  int create_threads = 8;
  int timeout_s = 600;
};

// --quick (100 pools) is applied by the command's callback.
CLI::App* add_operator_command(CLI::App& app, OperatorBenchOptions& options);
int run_operator(const OperatorBenchOptions& options);

}  // namespace gasoline::bench
