#include "kv/cli/bulk_dispatch.h"
#include "kv/rpc/protocol.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <iomanip>
#include <mutex>
#include <thread>

namespace gasoline::cli {

using Clock = std::chrono::steady_clock;

BulkResult dispatch_many(rpc::Client& client, size_t count, const std::function<rpc::Json(size_t)>& make,
                         const BulkOptions& options) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    size_t in_flight = 0;
    size_t answered = 0;
    struct Retry {
      size_t index;
      int attempts;  // so far
      Clock::time_point not_before;
    };
    std::deque<Retry> retry;  // taken from the front once its time has come (roughly in not_before order)
    BulkResult result;
  };
  auto st = std::make_shared<State>();
  const auto start = Clock::now();
  auto last_progress = start;
  size_t next = 0;
  const size_t window = std::max<size_t>(1, options.window);
  auto send = [&](size_t i, int attempt) {
    auto args = make(i);
    auto id = args.value("id", "");
    client.call_async(rpc::op::kDispatch, args, [st, i, attempt, id, max = options.attempts](std::exception_ptr e, rpc::Json r) {
      std::lock_guard lock(st->mu);
      --st->in_flight;
      if (!e) {
        ++st->answered;
        (r.value("existing", false) ? st->result.existing : st->result.created) += 1;
      } else {
        std::string code = "unknown", message;
        try {
          std::rethrow_exception(e);
        } catch (const rpc::KvError& err) {
          code = err.code();
          message = err.what();
        } catch (const std::exception& err) {
          message = err.what();
        }
        bool unknown_outcome = code == rpc::code::kUnavailable || code == rpc::code::kNotLeader;
        if (unknown_outcome && attempt + 1 < max) {
          // The same id: safe to send again. Backing off rides through a leader change (an election, or a rolling
          // update handing the leadership on three times in a row) instead of spending every attempt at once.
          auto backoff = std::chrono::milliseconds(std::min<int64_t>(1000, int64_t{50} << std::min(attempt, 5)));
          st->retry.push_back({i, attempt + 1, Clock::now() + backoff});
        } else {
          ++st->answered;
          st->result.failures.push_back(id + ": " + code + ": " + message);
        }
      }
      st->cv.notify_all();
    });
  };
  std::unique_lock lock(st->mu);
  while (st->answered < count) {
    // Pacing: dispatch i is not sent before start + i / rate.
    bool paced_out = false;
    if (options.rate > 0 && next < count) {
      auto due = start + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(static_cast<double>(next) / options.rate));
      paced_out = Clock::now() < due;
    }
    const bool retry_due = !st->retry.empty() && st->retry.front().not_before <= Clock::now();
    if (st->in_flight < window && (retry_due || (next < count && !paced_out))) {
      size_t i;
      int attempt = 0;
      if (retry_due) {
        i = st->retry.front().index;
        attempt = st->retry.front().attempts;
        st->retry.pop_front();
      } else {
        i = next++;
      }
      ++st->in_flight;
      lock.unlock();
      send(i, attempt);
      lock.lock();
      continue;
    }
    st->cv.wait_for(lock, std::chrono::milliseconds(paced_out || !st->retry.empty() ? 2 : 100));
    if (options.progress && Clock::now() - last_progress >= std::chrono::seconds(1)) {
      last_progress = Clock::now();
      double secs = std::chrono::duration<double>(last_progress - start).count();
      *options.progress << "\rdispatched " << st->answered << "/" << count << " (" << std::fixed
                        << std::setprecision(0) << static_cast<double>(st->answered) / secs << "/s, "
                        << st->result.failures.size() << " failed)" << std::flush;
    }
  }
  st->result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (options.progress) *options.progress << "\r" << std::string(60, ' ') << "\r" << std::flush;
  return st->result;
}

}  // namespace gasoline::cli
