#pragma once
// The single-replica log: a group-commit thread takes every command queued since the last round, stamps the
// entry with max(now, last applied ts), and applies it as one fsynced RocksDB WriteBatch.
#include "kv/service/log.h"
#include "kv/store/state_machine.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace gasoline::kv {

class LocalLog : public Log {
 public:
  using Committed = std::function<void(size_t commands)>;

  LocalLog(store::StateMachine& sm, std::string address, AppliedFn on_applied, Committed on_committed = {});
  ~LocalLog() override;

  void propose(store::Command command, Done done) override;
  void barrier(Done done) override;
  bool is_leader() const override { return true; }
  std::string leader_address() const override { return address_; }
  void stop();

 private:
  void run();

  store::StateMachine& sm_;
  std::string address_;
  AppliedFn on_applied_;
  Committed on_committed_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<store::Command, Done>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gasoline::kv
