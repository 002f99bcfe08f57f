#include "kv/rpc/protocol.h"
#include "worker/task_table.h"

#include <algorithm>

namespace gasoline::worker {

std::string_view to_string(TaskState state) {
  switch (state) {
    case TaskState::kQueued: return "queued";
    case TaskState::kDelivered: return "delivered";
    case TaskState::kCommitting: return "committing";
    case TaskState::kBuffered: return "buffered";
    case TaskState::kReleasing: return "releasing";
    case TaskState::kReleaseBuffered: return "release_buffered";
  }
  return "unknown";
}

namespace {

bool in_flight(TaskState s) { return s == TaskState::kCommitting || s == TaskState::kReleasing; }
bool waiting_retry(TaskState s) { return s == TaskState::kBuffered || s == TaskState::kReleaseBuffered; }
bool releasing(TaskState s) { return s == TaskState::kReleasing || s == TaskState::kReleaseBuffered; }
bool has_call(TaskState s) { return in_flight(s) || waiting_retry(s); }

}  // namespace

TaskTable::TaskTable(std::string worker, TaskLimits limits) : worker_(std::move(worker)), limits_(limits) {}

TaskTable::Granted TaskTable::grant(const Json& granted, bool draining, int64_t now) {
  Task t;
  t.lease = granted.value("token", uint64_t{0});
  t.workflow_id = granted.value("workflow_id", "");
  t.key = api::make_token(t.lease, t.workflow_id).text();
  t.pulled_mono = now;
  for (const auto& s : granted.value("signals", Json::array()))
    t.max_signal_seq = std::max(t.max_signal_seq, s.value("seq", uint64_t{0}));
  if (t.lease == 0 || t.workflow_id.empty() || tasks_.count(t.key))
    return {Granted::Kind::kRejected, t.key, t.workflow_id, std::nullopt};
  t.task = granted;
  t.task["token"] = t.key;
  t.task["worker"] = worker_;
  auto key = t.key;
  auto workflow_id = t.workflow_id;
  auto& task = tasks_.emplace(key, std::move(t)).first->second;
  if (draining) {
    // Granted by a pull that was in flight when the drain started: nobody will poll for it.
    return {Granted::Kind::kGivenBack, key, workflow_id, release(task, "granted after the drain started", now)};
  }
  queue_.push_back(key);
  return {Granted::Kind::kQueued, key, workflow_id, std::nullopt};
}

Json TaskTable::take(size_t max, int64_t now) {
  Json out = Json::array();
  while (!queue_.empty() && out.size() < max) {
    auto it = tasks_.find(queue_.front());
    queue_.pop_front();
    if (it == tasks_.end() || it->second.state != TaskState::kQueued) continue;
    it->second.state = TaskState::kDelivered;
    it->second.delivered_mono = now;
    out.push_back(it->second.task);
  }
  return out;
}

std::vector<KvSend> TaskTable::drain(int64_t now) {
  std::vector<KvSend> out;
  for (const auto& key : queue_) {
    auto it = tasks_.find(key);
    if (it != tasks_.end() && it->second.state == TaskState::kQueued) out.push_back(release(it->second, "draining", now));
  }
  queue_.clear();
  return out;
}

TaskTable::Submitted TaskTable::submit(const std::string& key, const api::ParsedResult& r, Done done, int64_t now) {
  Submitted out{};
  if (auto rec = recent_.find(key); rec != recent_.end()) {
    out.kind = Submitted::Kind::kDuplicate;
    out.body = rec->second;
    out.body["duplicate"] = true;
    out.done = std::move(done);
    return out;
  }
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    out.kind = Submitted::Kind::kNotHeld;
    out.done = std::move(done);
    return out;
  }
  Task& t = it->second;
  out.workflow_id = t.workflow_id;
  if (!r.workflow_id.empty() && r.workflow_id != t.workflow_id) {
    out.kind = Submitted::Kind::kWrongWorkflow;
    out.done = std::move(done);
    return out;
  }
  switch (t.state) {
    case TaskState::kReleasing:
    case TaskState::kReleaseBuffered:
      out.kind = Submitted::Kind::kReleasing;
      out.done = std::move(done);
      return out;
    case TaskState::kBuffered:
      out.kind = Submitted::Kind::kBuffered;
      out.done = std::move(done);
      return out;
    case TaskState::kCommitting:
      out.kind = Submitted::Kind::kJoined;
      t.waiters.push_back(std::move(done));
      return out;
    case TaskState::kQueued:
    case TaskState::kDelivered:
      break;
  }
  t.call = Json{{"workflow_id", t.workflow_id},
                {"worker", worker_},
                {"token", t.lease},
                {"step", r.step},
                {"consumed_signal_seq", r.consumed_signal_seq.value_or(t.max_signal_seq)}};
  if (!r.children.empty()) t.call["children"] = r.children;
  if (!r.signals.empty()) t.call["signals"] = r.signals;
  if (t.state == TaskState::kQueued) unqueue(key);  // its token was known without a poll: it is the app's now
  if (t.delivered_mono) out.held_ms = now - *t.delivered_mono;
  t.state = TaskState::kCommitting;
  t.waiters.push_back(std::move(done));
  out.kind = Submitted::Kind::kSend;
  out.send = send(t, now);
  return out;
}

TaskTable::Replied TaskTable::reply(const std::string& key, KvAnswer answer, const Json& result, int64_t now) {
  Replied out{};
  auto it = tasks_.find(key);
  if (it == tasks_.end() || !has_call(it->second.state)) {
    out.kind = Replied::Kind::kStale;
    return out;
  }
  Task& t = it->second;
  out.release = releasing(t.state);
  out.workflow_id = t.workflow_id;
  // A release the kv refuses for another reason than a lost lease is retried like an unreachable kv: only a
  // result can be corrected by the app.
  if (answer == KvAnswer::kRefused && out.release) answer = KvAnswer::kTransient;
  switch (answer) {
    case KvAnswer::kOk: {
      out.kind = out.release ? Replied::Kind::kReleased : Replied::Kind::kCommitted;
      out.body = Json{{"status", result.value("status", "")},
                      {"duplicate", result.value("duplicate", false)},
                      {"workflow_id", t.workflow_id},
                      {"token", key}};
      if (result.contains("children")) out.body["children"] = result["children"];
      if (result.contains("undelivered") && !result["undelivered"].empty())
        out.body["undelivered"] = result["undelivered"];
      if (t.buffered_since) out.buffered_ms = now - t.buffered_since;
      if (!out.release) remember(key, out.body);
      out.waiters = std::move(t.waiters);
      tasks_.erase(it);
      return out;
    }
    case KvAnswer::kLeaseLost:
      out.kind = Replied::Kind::kLeaseLost;
      out.waiters = std::move(t.waiters);
      tasks_.erase(it);
      return out;
    case KvAnswer::kRefused:
      out.kind = Replied::Kind::kRefused;
      out.waiters = std::move(t.waiters);
      t.waiters.clear();
      t.call = Json();
      // Back to whoever holds it: the app when it was delivered, else the queue it was never taken from.
      if (t.delivered_mono) {
        t.state = TaskState::kDelivered;
      } else {
        t.state = TaskState::kQueued;
        queue_.push_back(key);
      }
      return out;
    case KvAnswer::kTransient:
      out.kind = Replied::Kind::kBuffered;
      out.first_buffered = t.buffered_since == 0;
      out.waiters = std::move(t.waiters);
      t.waiters.clear();
      buffer(t, now, now + limits_.first_retry_ms);
      return out;
  }
  return out;
}

void TaskTable::reply_unusable(const std::string& key, int64_t now) {
  auto it = tasks_.find(key);
  if (it == tasks_.end() || !has_call(it->second.state)) return;
  buffer(it->second, now, now + limits_.retry_ms);
}

TaskTable::Due TaskTable::due(int64_t now) {
  Due out;
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    Task& t = it->second;
    switch (t.state) {
      case TaskState::kQueued:
        if (now - t.pulled_mono > limits_.queued_ttl_ms) {
          unqueue(t.key);
          out.released.push_back(release(t, "no app poll took it", now));
        }
        break;
      case TaskState::kDelivered:
        if (now - *t.delivered_mono > limits_.task_timeout_ms) {
          out.released.push_back(release(t, "the app sent no result within --task-timeout", now));
        }
        break;
      case TaskState::kCommitting:
      case TaskState::kReleasing:
        if (now - t.sent_mono > limits_.commit_stuck_ms) {
          // No answer at all (a kv that accepts but does not respond): let the app go, and send again next
          // time round; a commit that did land meanwhile comes back as duplicate.
          if (!t.waiters.empty()) out.stuck.emplace_back(t.key, std::move(t.waiters));
          t.waiters.clear();
          buffer(t, now, now);
        }
        break;
      case TaskState::kBuffered:
      case TaskState::kReleaseBuffered:
        if (now - t.buffered_since > limits_.buffer_ttl_ms) {
          out.dropped.push_back(Dropped{t.key, t.workflow_id, now - t.buffered_since, std::move(t.waiters)});
          it = tasks_.erase(it);
          continue;
        }
        if (now >= t.next_try) out.resent.push_back(send(t, now));
        break;
    }
    ++it;
  }
  return out;
}

std::vector<Done> TaskTable::take_waiters() {
  std::vector<Done> out;
  for (auto& [key, t] : tasks_) {
    for (auto& w : t.waiters) out.push_back(std::move(w));
    t.waiters.clear();
  }
  return out;
}

size_t TaskTable::running() const {
  return std::count_if(tasks_.begin(), tasks_.end(), [](const auto& kv) { return !has_call(kv.second.state); });
}

size_t TaskTable::buffered() const {
  return std::count_if(tasks_.begin(), tasks_.end(), [](const auto& kv) { return kv.second.buffered_since != 0; });
}

std::vector<uint64_t> TaskTable::leases() const {
  std::vector<uint64_t> out;
  out.reserve(tasks_.size());
  for (const auto& [key, t] : tasks_) out.push_back(t.lease);
  return out;
}

std::optional<TaskState> TaskTable::state(const std::string& key) const {
  auto it = tasks_.find(key);
  if (it == tasks_.end()) return std::nullopt;
  return it->second.state;
}

// Gives a lease back without recording a step (the kv's `release`): the workflow keeps its state and signals and
// is due again at once, for another worker when this one drains. Only from queued or delivered.
KvSend TaskTable::release(Task& t, const std::string& why, int64_t now) {
  t.state = TaskState::kReleasing;
  t.call = Json{{"workflow_id", t.workflow_id}, {"worker", worker_}, {"token", t.lease}, {"reason", why}};
  return send(t, now);
}

// The commit or release goes (again) to the kv.
KvSend TaskTable::send(Task& t, int64_t now) {
  t.state = releasing(t.state) ? TaskState::kReleasing : TaskState::kCommitting;
  t.sent_mono = now;
  return KvSend{t.key, t.state == TaskState::kReleasing ? rpc::op::kRelease : rpc::op::kCommit, t.call};
}

void TaskTable::buffer(Task& t, int64_t now, int64_t next_try) {
  t.state = releasing(t.state) ? TaskState::kReleaseBuffered : TaskState::kBuffered;
  if (!t.buffered_since) t.buffered_since = now;
  t.next_try = next_try;
}

void TaskTable::unqueue(const std::string& key) {
  auto it = std::find(queue_.begin(), queue_.end(), key);
  if (it != queue_.end()) queue_.erase(it);
}

void TaskTable::remember(const std::string& key, const Json& body) {
  recent_[key] = body;
  recent_order_.push_back(key);
  while (recent_order_.size() > limits_.recent_outcomes) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

}  // namespace gasoline::worker
