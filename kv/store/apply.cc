#include "kv/store/apply.h"

#include "kv/store/keys.h"

#include <xxhash.h>

#include <algorithm>
#include <limits>

namespace gasoline::store {

uint64_t lease_token(uint64_t index, size_t position) { return (index << 12) | (position & 0xfff); }

int64_t retry_backoff_ms(int64_t base_ms, int64_t max_ms, uint32_t attempt, std::string_view workflow_id,
                         uint64_t index) {
  base_ms = std::max<int64_t>(base_ms, 1);
  max_ms = std::max(max_ms, base_ms);
  int64_t delay = base_ms;
  for (uint32_t i = 0; i < attempt && delay < max_ms; ++i) delay = delay > max_ms / 2 ? max_ms : delay * 2;
  delay = std::min(delay, max_ms);
  std::string seed(workflow_id);
  for (int s = 0; s < 32; s += 8) seed.push_back(static_cast<char>((attempt >> s) & 0xff));
  for (int s = 0; s < 64; s += 8) seed.push_back(static_cast<char>((index >> s) & 0xff));
  uint64_t h = XXH64(seed.data(), seed.size(), 0x6261636b6f6666ULL /* "backoff" */);
  int64_t span = std::max<int64_t>(1, base_ms / 2);
  int64_t jitter = static_cast<int64_t>(h % static_cast<uint64_t>(span));
  return delay > std::numeric_limits<int64_t>::max() - jitter ? std::numeric_limits<int64_t>::max() : delay + jitter;
}

namespace {

Result ok(Json body = Json::object()) { return Result{Code::kOk, "", std::move(body)}; }
Result fail(Code code, std::string message) { return Result{code, std::move(message), Json::object()}; }

class Applier {
 public:
  Applier(const Reader& state, int64_t ts, uint64_t index, const Config& config, std::vector<Wake>& wakes)
      : txn_(state), ts_(ts), index_(index), config_(config), wakes_(wakes) {}

  Result apply(const Command& c, size_t position) {
    position_ = position;
    return std::visit([this](const auto& cmd) { return on(cmd); }, c);
  }

  Mutations take_mutations() { return txn_.take_mutations(); }

 private:
  // --- records -------------------------------------------------------------------------------------------
  std::optional<Workflow> load(std::string_view id) const {
    auto raw = txn_.get(keys::workflow(id));
    if (!raw) return std::nullopt;
    return decode_workflow(*raw);
  }

  // Writes the record and keeps the by-status index in step. `old_status` is empty for a new workflow.
  void save(Workflow& w, std::optional<Status> old_status) {
    w.updated_ts = ts_;
    if (old_status != w.status) {
      if (old_status) txn_.del(keys::by_status(w.pool, static_cast<uint8_t>(*old_status), w.id));
      txn_.put(keys::by_status(w.pool, static_cast<uint8_t>(w.status), w.id), "");
      // Finished workflows are found by when they finished, so retention reads only what expired. A finished
      // workflow never changes again, so its updated_ts stays this key's time.
      if (is_terminal(w.status) && !(old_status && is_terminal(*old_status))) txn_.put(keys::ended(w.pool, ts_, w.id), "");
    }
    txn_.put(keys::workflow(w.id), encode(w));
  }

  std::optional<Worker> load_worker(std::string_view pool, std::string_view id) const {
    auto raw = txn_.get(keys::worker(pool, id));
    if (!raw) return std::nullopt;
    return decode_worker(*raw);
  }

  // --- wake index ----------------------------------------------------------------------------------------
  void clear_wake(Workflow& w) {
    if (w.wake_ts >= 0) txn_.del(keys::wake(w.pool, w.wake_ts, w.id));
    w.wake_ts = -1;
  }

  void set_wake(Workflow& w, int64_t at, std::string reason) {
    clear_wake(w);
    w.wake_ts = at;
    w.wake_reason = reason;
    txn_.put(keys::wake(w.pool, at, w.id), w.name);
    wakes_.push_back(Wake{w.pool, w.id, w.name, at, std::move(reason)});
  }

  // The entry's time plus a relative duration (never the sender's clock), saturating instead of overflowing.
  int64_t after(int64_t ms) const {
    return ms > std::numeric_limits<int64_t>::max() - ts_ ? std::numeric_limits<int64_t>::max() : ts_ + ms;
  }

  // --- leases --------------------------------------------------------------------------------------------
  // Drops the lease; a live workflow is due again at once, at the time its run first became due: work that a
  // lost worker or a lost answer held keeps its place in the queue instead of waiting behind a backlog.
  void release(Workflow& w, const std::string& reason) {
    if (!w.lease_worker.empty()) txn_.del(keys::owner(w.lease_worker, w.id));
    w.lease_worker.clear();
    w.lease_token = 0;
    if (!is_terminal(w.status)) {
      auto old = w.status;
      w.status = Status::kPending;
      set_wake(w, w.due_ts > 0 ? std::min(w.due_ts, ts_) : ts_, reason);
      save(w, old);
    }
  }

  // Releases every lease a worker holds in a pool. Returns the workflow ids. The owner index is keyed by worker id
  // alone, and worker ids are only unique within a pool (a worker is (pool, id)), so other pools' leases stay.
  std::vector<std::string> release_all(std::string_view pool, std::string_view worker_id, const std::string& reason) {
    std::vector<std::string> ids;
    auto prefix = keys::owner_prefix(worker_id);
    txn_.scan(prefix, [&](std::string_view key, std::string_view) {
      ids.emplace_back(key.substr(prefix.size()));
      return true;
    });
    std::vector<std::string> released;
    for (const auto& id : ids) {
      auto w = load(id);
      if (!w || w->lease_worker != worker_id) {
        txn_.del(keys::owner(worker_id, id));  // a stale index entry; the record is the truth
        continue;
      }
      if (w->pool != pool) continue;
      release(*w, reason);
      released.push_back(id);
    }
    return released;
  }

  // --- signals -------------------------------------------------------------------------------------------
  Result deliver(const SignalSpec& s) {
    if (auto e = validate_name("workflow id", s.workflow_id)) return fail(Code::kInvalid, *e);
    if (s.name.empty()) return fail(Code::kInvalid, "signal name must not be empty");
    auto w = load(s.workflow_id);
    if (!w) return fail(Code::kNotFound, "workflow '" + s.workflow_id + "' not found");
    if (is_terminal(w->status))
      return fail(Code::kFailedPrecondition,
                  "workflow '" + s.workflow_id + "' is " + std::string(to_string(w->status)) + "; signal dropped");
    if (!s.signal_id.empty()) {
      if (auto seq = txn_.get(keys::signal_id(w->id, s.signal_id)))
        return ok(Json{{"seq", keys::get_u64(*seq)}, {"duplicate", true}});
    }
    Signal sig{w->id, w->next_signal_seq++, s.name, s.body, ts_};
    txn_.put(keys::signal(w->id, sig.seq), encode(sig));
    if (!s.signal_id.empty()) {
      std::string seq;
      keys::put_u64(seq, sig.seq);
      txn_.put(keys::signal_id(w->id, s.signal_id), seq);
    }
    auto old = w->status;
    if (w->status == Status::kWaiting && waits_for(*w, s.name) && (w->wake_ts < 0 || w->wake_ts > ts_)) {
      set_wake(*w, ts_, "signal");
    }
    save(*w, old);
    return ok(Json{{"seq", sig.seq}, {"duplicate", false}});
  }

  static bool waits_for(const Workflow& w, std::string_view name) {
    return std::find(w.wait_signals.begin(), w.wait_signals.end(), name) != w.wait_signals.end();
  }

  bool has_pending_signal(const Workflow& w, const std::vector<std::string>& names) const {
    bool found = false;
    txn_.scan(keys::signal_prefix(w.id), [&](std::string_view, std::string_view value) {
      auto sig = decode_signal(value);
      if (sig.seq > w.consumed_signal_seq && std::find(names.begin(), names.end(), sig.name) != names.end()) {
        found = true;
        return false;
      }
      return true;
    });
    return found;
  }

  void notify_parent(const Workflow& child) {
    if (!child.notify_parent || child.parent_id.empty()) return;
    SignalSpec s{child.parent_id, std::string(kChildCompletedSignal),
                 Json{{"id", child.id},
                      {"name", child.name},
                      {"status", to_string(child.status)},
                      {"output", child.output},
                      {"error", child.error}},
                 "child:" + child.id};
    deliver(s);  // a parent that already ended simply doesn't get it
  }

  // --- commands ------------------------------------------------------------------------------------------
  Result on(const PingBatch& b) {
    size_t accepted = 0;
    for (const auto& p : b.pings) {
      if (validate_name("pool", p.pool) || validate_name("worker id", p.worker_id)) continue;
      auto existing = load_worker(p.pool, p.worker_id);
      Worker w = existing.value_or(Worker{});
      w.pool = p.pool;
      w.id = p.worker_id;
      w.pod = p.pod;
      w.version = p.version;
      w.workflows = p.workflows;
      w.cpu = p.cpu;
      w.free_slots = p.free_slots;
      w.last_ping_ts = ts_;  // leader time, not the pod's clock
      txn_.put(keys::worker(w.pool, w.id), encode(w));
      ++accepted;
    }
    return ok(Json{{"accepted", accepted}});
  }

  Result on(const Drain& d) {
    auto w = load_worker(d.pool, d.worker_id);
    if (!w) return fail(Code::kNotFound, "worker '" + d.worker_id + "' is not a member of pool '" + d.pool + "'");
    w->state = WorkerState::kDraining;
    w->last_ping_ts = ts_;
    txn_.put(keys::worker(d.pool, d.worker_id), encode(*w));
    return ok();
  }

  Result on(const Undrain& u) {
    auto w = load_worker(u.pool, u.worker_id);
    if (!w) return fail(Code::kNotFound, "worker '" + u.worker_id + "' is not a member of pool '" + u.pool + "'");
    bool was_draining = w->state == WorkerState::kDraining;
    w->state = WorkerState::kActive;
    w->last_ping_ts = ts_;
    txn_.put(keys::worker(u.pool, u.worker_id), encode(*w));
    return ok(Json{{"was_draining", was_draining}});
  }

  Result on(const Leave& l) {
    auto released = release_all(l.pool, l.worker_id, "handover");
    txn_.del(keys::worker(l.pool, l.worker_id));
    return ok(Json{{"released", released}});
  }

  Result on(const Dispatch& d) { return dispatch(d.spec); }

  Result dispatch(const DispatchSpec& s) {
    if (auto e = validate_name("workflow id", s.id)) return fail(Code::kInvalid, *e);
    if (auto e = validate_name("pool", s.pool)) return fail(Code::kInvalid, *e);
    if (auto e = validate_name("workflow name", s.name)) return fail(Code::kInvalid, *e);
    if (!s.tags.is_object()) return fail(Code::kInvalid, "tags must be a map");
    if (s.delay_ms < 0) return fail(Code::kInvalid, "delay_ms must not be negative");
    if (s.delay_ms > 0 && s.run_at > 0) return fail(Code::kInvalid, "give run_at or delay_ms, not both");
    if (!s.idempotency_key.empty()) {
      if (auto existing = txn_.get(keys::idempotency(s.pool, s.idempotency_key)))
        return ok(Json{{"id", *existing}, {"existing", true}});
    }
    if (auto existing = load(s.id)) {
      if (existing->pool == s.pool && existing->name == s.name) return ok(Json{{"id", s.id}, {"existing", true}});
      return fail(Code::kConflict, "workflow id '" + s.id + "' is already used by another workflow");
    }
    Workflow w;
    w.id = s.id;
    w.pool = s.pool;
    w.name = s.name;
    w.tags = s.tags;
    w.input = s.input;
    w.max_attempts = s.max_attempts;
    w.created_ts = ts_;
    w.parent_id = s.parent_id;
    w.notify_parent = s.notify_parent && !s.parent_id.empty();
    w.idempotency_key = s.idempotency_key;
    w.status = Status::kPending;
    set_wake(w, s.delay_ms > 0 ? after(s.delay_ms) : std::max(s.run_at, ts_), "dispatch");
    save(w, std::nullopt);
    if (!s.idempotency_key.empty()) txn_.put(keys::idempotency(s.pool, s.idempotency_key), s.id);
    return ok(Json{{"id", s.id}, {"existing", false}});
  }

  Result on(const SendSignal& s) { return deliver(s.spec); }

  Result on(const Cancel& c) {
    auto w = load(c.workflow_id);
    if (!w) return fail(Code::kNotFound, "workflow '" + c.workflow_id + "' not found");
    if (is_terminal(w->status)) return ok(Json{{"already", true}, {"status", to_string(w->status)}});
    auto old = w->status;
    clear_wake(*w);
    if (!w->lease_worker.empty()) txn_.del(keys::owner(w->lease_worker, w->id));
    w->lease_worker.clear();
    w->lease_token = 0;
    w->status = Status::kCancelled;
    w->error = c.reason.empty() ? "cancelled" : c.reason;
    save(*w, old);
    notify_parent(*w);
    return ok(Json{{"already", false}, {"status", "cancelled"}});
  }

  Result on(const LeaseBatch& b) {
    Json granted = Json::array();
    size_t conflicts = 0;
    auto worker = load_worker(b.pool, b.worker_id);
    if (!worker || worker->state != WorkerState::kActive) {
      return ok(Json{{"granted", granted},
                     {"conflicts", 0},
                     {"rejected", "worker '" + b.worker_id + "' is not an active member of pool '" + b.pool + "'"}});
    }
    uint64_t token = lease_token(index_, position_);
    for (const auto& item : b.items) {
      auto w = load(item.workflow_id);
      bool free = w && w->pool == b.pool && w->lease_worker.empty() && !is_terminal(w->status) &&
                  w->wake_ts >= 0 && w->wake_ts == item.wake_ts && w->wake_ts <= ts_;
      if (!free) {
        ++conflicts;
        continue;
      }
      auto old = w->status;
      // The grant carries what a task needs, so the leader answers the pull without reading the record again.
      Json task{{"id", w->id},
                {"token", token},
                {"wake_ts", w->wake_ts},
                {"wake_reason", w->wake_reason},
                {"name", w->name},
                {"pool", w->pool},
                {"tags", w->tags},
                {"input", w->input},
                {"state", w->state},
                {"attempt", w->attempt},
                {"parent_id", w->parent_id},
                {"created_ts", w->created_ts},
                {"steps", w->steps},
                {"consumed_signal_seq", w->consumed_signal_seq},
                {"signals_pending", w->next_signal_seq - 1 > w->consumed_signal_seq}};
      w->due_ts = w->wake_ts;
      clear_wake(*w);
      w->lease_worker = b.worker_id;
      w->lease_token = token;
      w->status = Status::kRunning;
      txn_.put(keys::owner(b.worker_id, w->id), keys::owner_value(token, w->pool));
      save(*w, old);
      granted.push_back(std::move(task));
    }
    return ok(Json{{"granted", std::move(granted)}, {"conflicts", conflicts}});
  }

  static std::optional<std::string> validate_step(const StepResult& s) {
    switch (s.kind) {
      case StepKind::kSleep:
        if (s.for_ms < 0) return "sleep 'for_ms' must not be negative";
        if (s.until > 0 && s.for_ms > 0) return "sleep takes 'until' or 'for_ms', not both";
        if (s.until <= 0 && s.for_ms <= 0) return "sleep needs 'until' (unix ms) or 'for_ms'";
        break;
      case StepKind::kWait:
        if (s.timeout_ms < 0) return "wait 'timeout_ms' must not be negative";
        if (s.until > 0 && s.timeout_ms > 0) return "wait takes 'until' or 'timeout_ms', not both";
        if (s.signals.empty() && s.until <= 0 && s.timeout_ms <= 0) return "wait needs 'signals' or a deadline";
        for (const auto& n : s.signals)
          if (n.empty()) return "wait has an empty signal name";
        break;
      case StepKind::kFail:
        if (s.error.empty()) return "fail needs 'error'";
        break;
      default: break;
    }
    return std::nullopt;
  }

  Result on(const CommitStep& c) {
    auto w = load(c.workflow_id);
    if (!w) return fail(Code::kNotFound, "workflow '" + c.workflow_id + "' not found");
    if (w->lease_worker != c.worker_id || w->lease_token != c.token || c.token == 0) {
      if (c.token != 0 && w->last_commit_worker == c.worker_id && w->last_commit_token == c.token)
        return ok(Json{{"duplicate", true}, {"status", to_string(w->status)}});
      return fail(Code::kConflict, "lease lost: workflow '" + c.workflow_id + "' is no longer leased to '" +
                                       c.worker_id + "' with token " + std::to_string(c.token));
    }
    if (auto e = validate_step(c.step)) return fail(Code::kInvalid, *e);
    for (const auto& child : c.children) {
      // Everything dispatch() could refuse is checked here, so the children are created with the step or not at all.
      if (auto e = validate_name("child workflow id", child.id)) return fail(Code::kInvalid, *e);
      if (auto e = validate_name("child workflow name", child.name)) return fail(Code::kInvalid, *e);
      const std::string& pool = child.pool.empty() ? w->pool : child.pool;
      if (auto e = validate_name("child pool", pool)) return fail(Code::kInvalid, *e);
      if (!child.tags.is_object()) return fail(Code::kInvalid, "child tags must be a map");
      if (child.delay_ms < 0 || (child.delay_ms > 0 && child.run_at > 0))
        return fail(Code::kInvalid, "child '" + child.id + "': give run_at or a non-negative delay_ms, not both");
      if (!child.idempotency_key.empty() && txn_.get(keys::idempotency(pool, child.idempotency_key))) continue;
      if (auto existing = load(child.id); existing && (existing->pool != pool || existing->name != child.name))
        return fail(Code::kInvalid, "child workflow id '" + child.id + "' is already used by another workflow");
    }

    auto old = w->status;
    txn_.del(keys::owner(w->lease_worker, w->id));
    w->lease_worker.clear();
    w->lease_token = 0;
    w->last_commit_worker = c.worker_id;
    w->last_commit_token = c.token;
    ++w->steps;

    // Signals the task saw are consumed by this commit; later ones stay pending.
    uint64_t consumed = std::min(c.consumed_signal_seq, w->next_signal_seq - 1);
    for (uint64_t seq = w->consumed_signal_seq + 1; seq <= consumed; ++seq) txn_.del(keys::signal(w->id, seq));
    w->consumed_signal_seq = std::max(w->consumed_signal_seq, consumed);

    const auto& s = c.step;
    if (s.state) w->state = *s.state;
    w->wait_signals.clear();
    clear_wake(*w);
    switch (s.kind) {
      case StepKind::kComplete:
        w->status = Status::kComplete;
        w->output = s.output;
        w->attempt = 0;
        break;
      case StepKind::kFail:
        w->status = Status::kFailed;
        w->error = s.error;
        break;
      case StepKind::kSleep:
        w->status = Status::kSleeping;
        w->attempt = 0;
        set_wake(*w, s.for_ms > 0 ? after(s.for_ms) : std::max(s.until, ts_), "timer");
        break;
      case StepKind::kWait:
        w->status = Status::kWaiting;
        w->attempt = 0;
        w->wait_signals = s.signals;
        if (has_pending_signal(*w, s.signals)) {
          set_wake(*w, ts_, "signal");
        } else if (s.until > 0 || s.timeout_ms > 0) {
          set_wake(*w, s.timeout_ms > 0 ? after(s.timeout_ms) : std::max(s.until, ts_), "deadline");
        }
        break;
      case StepKind::kRetry: {
        w->error = s.error;
        uint32_t max_attempts = w->max_attempts ? w->max_attempts : config_.default_max_attempts;
        ++w->attempt;
        if (w->attempt >= max_attempts) {
          w->status = Status::kFailed;
          w->error = "max attempts (" + std::to_string(max_attempts) + ") reached: " + s.error;
        } else {
          w->status = Status::kSleeping;
          int64_t base = s.backoff_base_ms > 0 ? s.backoff_base_ms : config_.retry_base_ms;
          int64_t max = s.backoff_max_ms > 0 ? s.backoff_max_ms : config_.retry_max_ms;
          int64_t backoff = retry_backoff_ms(base, max, w->attempt - 1, w->id, index_);
          int64_t limit = std::numeric_limits<int64_t>::max();
          set_wake(*w, backoff > limit - ts_ ? limit : ts_ + backoff, "retry");
        }
        break;
      }
      case StepKind::kContinue:
        w->status = Status::kPending;
        w->attempt = 0;
        set_wake(*w, ts_, "continue");
        break;
    }
    save(*w, old);

    Json children = Json::array();
    for (auto child : c.children) {
      if (child.pool.empty()) child.pool = w->pool;
      child.parent_id = w->id;
      auto r = dispatch(child);
      children.push_back(r.ok() ? r.body.value("id", child.id) : child.id);
    }
    Json undelivered = Json::array();
    for (const auto& sig : c.signals) {
      auto r = deliver(sig);
      if (!r.ok()) undelivered.push_back(Json{{"workflow_id", sig.workflow_id}, {"error", r.message}});
    }
    if (is_terminal(w->status)) notify_parent(*w);
    return ok(Json{{"duplicate", false},
                   {"status", to_string(w->status)},
                   {"children", std::move(children)},
                   {"undelivered", std::move(undelivered)}});
  }

  Result on(const Release& r) {
    auto w = load(r.workflow_id);
    if (!w) return fail(Code::kNotFound, "workflow '" + r.workflow_id + "' not found");
    if (r.token == 0 || w->lease_worker != r.worker_id || w->lease_token != r.token)
      return fail(Code::kConflict, "lease lost: workflow '" + r.workflow_id + "' is no longer leased to '" +
                                       r.worker_id + "' with token " + std::to_string(r.token));
    release(*w, r.reason.empty() ? "released" : r.reason);
    return ok(Json{{"released", true}, {"status", to_string(w->status)}});
  }

  Result on(const Purge& p) {
    if (auto e = validate_name("pool", p.pool)) return fail(Code::kInvalid, *e);
    if (p.retention_ms <= 0) return fail(Code::kInvalid, "purge needs a positive retention");
    Json purged = Json::array();
    for (const auto& id : p.ids) {
      auto w = load(id);
      // Re-checked here: the leader chose the ids from an older state.
      if (!w || w->pool != p.pool || !is_terminal(w->status) || w->updated_ts > ts_ - p.retention_ms) continue;
      txn_.del(keys::workflow(id));
      txn_.del(keys::by_status(w->pool, static_cast<uint8_t>(w->status), id));
      txn_.del(keys::ended(w->pool, w->updated_ts, id));
      for (const auto& prefix : {keys::signal_prefix(id), keys::signal_id_prefix(id)}) {
        std::vector<std::string> doomed;
        txn_.scan(prefix, [&](std::string_view key, std::string_view) {
          doomed.emplace_back(key);
          return true;
        });
        for (const auto& key : doomed) txn_.del(key);
      }
      if (!w->idempotency_key.empty()) {
        auto key = keys::idempotency(w->pool, w->idempotency_key);
        if (auto owner = txn_.get(key); owner && *owner == id) txn_.del(key);
      }
      purged.push_back(id);
    }
    return ok(Json{{"purged", std::move(purged)}});
  }

  Result on(const ConfigurePool& c) {
    if (auto e = validate_name("pool", c.pool)) return fail(Code::kInvalid, *e);
    if (c.retention_ms < 0) {
      txn_.del(keys::pool_config(c.pool));
    } else {
      txn_.put(keys::pool_config(c.pool), encode(Json{{"retention_ms", c.retention_ms}}));
    }
    return ok(Json{{"pool", c.pool}, {"retention_ms", c.retention_ms}});
  }

  Result on(const Reclaim& r) {
    auto w = load_worker(r.pool, r.worker_id);
    if (w && w->last_ping_ts >= ts_ - r.lost_after_ms) return ok(Json{{"alive", true}, {"released", Json::array()}});
    auto released = release_all(r.pool, r.worker_id, "reclaim");
    txn_.del(keys::worker(r.pool, r.worker_id));  // GC: a lost worker's record does not leak
    return ok(Json{{"alive", false}, {"released", released}});
  }

  Txn txn_;
  int64_t ts_;
  uint64_t index_;
  const Config& config_;
  std::vector<Wake>& wakes_;
  size_t position_ = 0;
};

}  // namespace

Applied apply_entry(const Reader& state, const Entry& entry, uint64_t index, const Config& config) {
  Applied out;
  Applier applier(state, entry.ts, index, config, out.wakes);
  out.results.reserve(entry.commands.size());
  for (size_t i = 0; i < entry.commands.size(); ++i) {
    if (i >= kMaxCommandsPerEntry) {
      out.results.push_back(fail(Code::kInvalid, "entry has more than 4096 commands"));
      continue;
    }
    out.results.push_back(applier.apply(entry.commands[i], i));
  }
  out.mutations = applier.take_mutations();
  return out;
}

}  // namespace gasoline::store
