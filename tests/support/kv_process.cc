#include "tests/support/kv_process.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gasoline::testing {
namespace fs = std::filesystem;

namespace {
std::string tail(const std::string& path, size_t bytes = 2000) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}
}  // namespace

KvProcess::KvProcess(const std::string& dir, KvOptions options) : dir_(dir), options_(std::move(options)) {
  fs::create_directories(dir_);
  token_ = "test-token-" + std::to_string(::getpid());
  std::ofstream(dir_ + "/token") << token_ << "\n";
  log_ = dir_ + "/kv.log";
  start();
}

KvProcess::~KvProcess() { stop(); }

void KvProcess::start() {
  std::string port_file = dir_ + "/port";
  fs::remove(port_file);
  std::vector<std::string> argv{binary_path("gasoline-kv"),
                                "--data-dir", dir_ + "/db",
                                "--token-file", dir_ + "/token",
                                "--listen", "127.0.0.1:" + std::to_string(port_),
                                "--metrics-listen", options_.metrics_listen,
                                "--port-file", port_file,
                                "--strategy", options_.strategy,
                                "--ping-interval-ms", std::to_string(options_.ping_interval_ms),
                                "--lost-after-ms", std::to_string(options_.lost_after_ms),
                                "--backup-grace-ms", std::to_string(options_.backup_grace_ms)};
  if (!options_.fsync) argv.push_back("--no-fsync");
  for (const auto& a : options_.extra_args) argv.push_back(a);
  process_ = std::make_unique<Process>(argv, log_);
  bool up = wait_until([&] { return fs::exists(port_file) || !process_->running(); }, std::chrono::seconds(20));
  if (!up || !fs::exists(port_file)) throw std::runtime_error("gasoline-kv did not start; log:\n" + tail(log_));
  std::ifstream(port_file) >> port_;
  address_ = "127.0.0.1:" + std::to_string(port_);
}

std::unique_ptr<rpc::Client> KvProcess::client(const std::string& name) const {
  rpc::ClientOptions o;
  o.endpoints = {address_};
  o.token = token_;
  o.name = name;
  o.call_timeout = std::chrono::seconds(20);
  return std::make_unique<rpc::Client>(o);
}

void KvProcess::restart(bool kill9) {
  if (kill9) {
    process_->kill9();
  } else {
    process_->signal(SIGTERM);
    process_->wait(std::chrono::seconds(20));
  }
  start();
}

void KvProcess::stop() {
  if (process_ && process_->running()) {
    process_->signal(SIGTERM);
    if (process_->wait(std::chrono::seconds(10)) < 0) process_->kill9();
  }
}

}  // namespace gasoline::testing
