#pragma once
// Real child processes for tests and benchmarks: spawn, signal, wait, always reaped by pid.
#include <chrono>
#include <functional>
#include <string>
#include <vector>
#include <sys/types.h>

namespace gasoline::testing {

class Process {
 public:
  // Starts argv[0] with the arguments; stdout and stderr go to `log_path` (appended).
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();  // SIGKILLs and reaps the process if it still runs
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // SIGSTOP, then waits until every thread of the process has stopped: kill() returns before a thread running on
  // another core stops, and that thread could still answer a request sent meanwhile. Throws after `timeout`.
  void freeze(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits for exit; returns the exit code (128+signal when killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  void kill9();

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// Polls `condition` every few milliseconds until it is true or the deadline passes. Returns whether it held.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A fresh directory under $TMPDIR, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "gasoline-test");
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Path of a binary built next to the test (build/bin).
std::string binary_path(const std::string& name);

}  // namespace gasoline::testing
