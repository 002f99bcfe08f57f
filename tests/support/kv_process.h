#pragma once
// A real gasoline-kv process on loopback with its own data dir, token and an OS-chosen port.
#include "kv/rpc/client.h"
#include "tests/support/process.h"

#include <memory>

namespace gasoline::testing {

struct KvOptions {
  std::string strategy = "rendezvous";
  int64_t ping_interval_ms = 100;
  int64_t lost_after_ms = 400;
  int64_t backup_grace_ms = 200;
  bool fsync = true;
  std::string metrics_listen;  // "" = no /metrics endpoint
  std::vector<std::string> extra_args;
};

class KvProcess {
 public:
  // Starts the kv in `dir` (its data survives restart()). Throws with the log's tail if it doesn't come up.
  KvProcess(const std::string& dir, KvOptions options = {});
  ~KvProcess();

  const std::string& address() const { return address_; }
  const std::string& token() const { return token_; }
  const std::string& log_path() const { return log_; }
  Process& process() { return *process_; }

  // A connected client with the right token.
  std::unique_ptr<rpc::Client> client(const std::string& name = "test") const;
  // kill -9, then start again on the same data dir (and the same port when possible).
  void restart(bool kill9 = true);
  void stop();

 private:
  void start();

  std::string dir_;
  KvOptions options_;
  std::string token_;
  std::string log_;
  std::string address_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace gasoline::testing
