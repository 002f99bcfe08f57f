#pragma once
// Leader election on a coordination.k8s.io/v1 Lease, with controller-runtime's timings: a lease lasts 15 s, the
// leader renews every 2 s and gives up if it could not renew for 10 s; candidates retry every 2 s. Expiry is
// judged on this process's monotonic clock from when the holder's record last changed (as client-go does), never by
// comparing our clock with the timestamps another process wrote.
#include "operator/kube/client.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

namespace gasoline::kube {

struct ElectionOptions {
  std::string ns;
  std::string name = "gasoline-operator";
  std::string identity;
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

class LeaderElector {
 public:
  LeaderElector(Client& client, ElectionOptions options);

  // Blocks: campaigns until leading, calls on_lead (which must not block: renewal starts right after it), renews;
  // returns when leadership is lost (false) or stop() was called (true). A process that loses leadership must stop
  // acting at once: the caller exits. The Client's request timeout must be well below renew_deadline, so one slow
  // request cannot hold a leader past its lease.
  bool run(const std::function<void()>& on_lead);
  void stop();
  bool leading() const { return leading_; }
  // Whether the last read or write of the lease reached the API server (a standby's readiness).
  bool api_reachable() const { return reachable_; }
  // Gives the lease up (graceful shutdown) so a standby takes over without waiting for expiry.
  void release();

 private:
  // One attempt to take or renew. Returns true when we hold the lease afterwards.
  bool try_acquire_or_renew();

  Client& client_;
  ElectionOptions options_;
  std::atomic<bool> leading_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> reachable_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  Json observed_spec_;  // the holder's record as last seen
  std::chrono::steady_clock::time_point observed_at_{};
};

// RFC 3339 with microseconds (metav1.MicroTime), UTC.
std::string micro_time_now();
// RFC 3339 with seconds (metav1.Time), UTC.
std::string time_now();

}  // namespace gasoline::kube
