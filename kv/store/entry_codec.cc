// The Raft log's entry codec (encode_entry / decode_entry, declared in command.h), written and read field by field
// like the DB records: every replica decodes every entry, so this is on each follower's hottest path. The bytes
// equal encode(Json{{"ts", ...}, {"cmds", [to_json(command)...]}}): maps with their keys in sorted order.
#include "kv/store/command.h"

#include "common/msgpack.h"

#include <algorithm>
#include <limits>

namespace gasoline::store {
namespace {

using msgpack::Reader;
using msgpack::Writer;

constexpr const char* kWhat = "raft entry";

// --- writing -----------------------------------------------------------------------------------------------

void write_dispatch(Writer& w, const DispatchSpec& d) {
  w.map_header(10 + (d.delay_ms != 0));
  if (d.delay_ms) {
    w.string("delay_ms");
    w.integer(d.delay_ms);
  }
  w.string("id");
  w.string(d.id);
  w.string("idempotency_key");
  w.string(d.idempotency_key);
  w.string("input");
  w.json(d.input);
  w.string("max_attempts");
  w.unsigned_integer(d.max_attempts);
  w.string("name");
  w.string(d.name);
  w.string("notify_parent");
  w.boolean(d.notify_parent);
  w.string("parent_id");
  w.string(d.parent_id);
  w.string("pool");
  w.string(d.pool);
  w.string("run_at");
  w.integer(d.run_at);
  w.string("tags");
  w.json(d.tags);
}

void write_signal(Writer& w, const SignalSpec& s) {
  w.map_header(4);
  w.string("body");
  w.json(s.body);
  w.string("name");
  w.string(s.name);
  w.string("signal_id");
  w.string(s.signal_id);
  w.string("workflow_id");
  w.string(s.workflow_id);
}

// The fields to_json(StepResult) writes for the step's kind, in key order.
void write_step(Writer& w, const StepResult& s) {
  const bool retry = s.kind == StepKind::kRetry;
  const bool base = retry && s.backoff_base_ms;
  const bool max = retry && s.backoff_max_ms;
  const bool error = retry || s.kind == StepKind::kFail;
  const bool output = s.kind == StepKind::kComplete;
  const bool signals = s.kind == StepKind::kWait;
  const bool sleep = s.kind == StepKind::kSleep, wait = s.kind == StepKind::kWait;
  const bool until = (sleep && (s.until || !s.for_ms)) || (wait && s.until);
  const bool for_ms = sleep && s.for_ms;
  const bool timeout = wait && s.timeout_ms;
  w.map_header(1 + base + max + error + for_ms + output + signals + s.state.has_value() + timeout + until);
  if (base) {
    w.string("backoff_base_ms");
    w.integer(s.backoff_base_ms);
  }
  if (max) {
    w.string("backoff_max_ms");
    w.integer(s.backoff_max_ms);
  }
  if (error) {
    w.string("error");
    w.string(s.error);
  }
  if (for_ms) {
    w.string("for_ms");
    w.integer(s.for_ms);
  }
  w.string("kind");
  w.string(to_string(s.kind));
  if (output) {
    w.string("output");
    w.json(s.output);
  }
  if (signals) {
    w.string("signals");
    w.strings(s.signals);
  }
  if (s.state) {
    w.string("state");
    w.json(*s.state);
  }
  if (timeout) {
    w.string("timeout_ms");
    w.integer(s.timeout_ms);
  }
  if (until) {
    w.string("until");
    w.integer(s.until);
  }
}

void write_pool_worker(Writer& w, std::string_view type, const std::string& pool, const std::string& worker) {
  w.map_header(3);
  w.string("pool");
  w.string(pool);
  w.string("t");
  w.string(type);
  w.string("worker");
  w.string(worker);
}

void write_command(Writer& w, const Command& command) {
  if (const auto* b = std::get_if<PingBatch>(&command)) {
    w.map_header(2);
    w.string("pings");
    w.array_header(b->pings.size());
    for (const auto& p : b->pings) {
      w.map_header(7);
      w.string("cpu");
      w.floating(p.cpu);
      w.string("free_slots");
      w.unsigned_integer(p.free_slots);
      w.string("pod");
      w.string(p.pod);
      w.string("pool");
      w.string(p.pool);
      w.string("version");
      w.string(p.version);
      w.string("worker");
      w.string(p.worker_id);
      w.string("workflows");
      w.strings(p.workflows);
    }
    w.string("t");
    w.string("ping");
  } else if (const auto* d = std::get_if<Drain>(&command)) {
    write_pool_worker(w, "drain", d->pool, d->worker_id);
  } else if (const auto* l = std::get_if<Leave>(&command)) {
    write_pool_worker(w, "leave", l->pool, l->worker_id);
  } else if (const auto* u = std::get_if<Undrain>(&command)) {
    write_pool_worker(w, "undrain", u->pool, u->worker_id);
  } else if (const auto* dispatch = std::get_if<Dispatch>(&command)) {
    w.map_header(2);
    w.string("spec");
    write_dispatch(w, dispatch->spec);
    w.string("t");
    w.string("dispatch");
  } else if (const auto* signal = std::get_if<SendSignal>(&command)) {
    w.map_header(2);
    w.string("spec");
    write_signal(w, signal->spec);
    w.string("t");
    w.string("signal");
  } else if (const auto* c = std::get_if<Cancel>(&command)) {
    w.map_header(3);
    w.string("id");
    w.string(c->workflow_id);
    w.string("reason");
    w.string(c->reason);
    w.string("t");
    w.string("cancel");
  } else if (const auto* lease = std::get_if<LeaseBatch>(&command)) {
    w.map_header(4);
    w.string("items");
    w.array_header(lease->items.size());
    for (const auto& i : lease->items) {
      w.array_header(2);
      w.string(i.workflow_id);
      w.integer(i.wake_ts);
    }
    w.string("pool");
    w.string(lease->pool);
    w.string("t");
    w.string("lease");
    w.string("worker");
    w.string(lease->worker_id);
  } else if (const auto* commit = std::get_if<CommitStep>(&command)) {
    w.map_header(8);
    w.string("children");
    w.array_header(commit->children.size());
    for (const auto& child : commit->children) write_dispatch(w, child);
    w.string("consumed");
    w.unsigned_integer(commit->consumed_signal_seq);
    w.string("id");
    w.string(commit->workflow_id);
    w.string("signals");
    w.array_header(commit->signals.size());
    for (const auto& s : commit->signals) write_signal(w, s);
    w.string("step");
    write_step(w, commit->step);
    w.string("t");
    w.string("commit");
    w.string("token");
    w.unsigned_integer(commit->token);
    w.string("worker");
    w.string(commit->worker_id);
  } else if (const auto* release = std::get_if<Release>(&command)) {
    w.map_header(5);
    w.string("id");
    w.string(release->workflow_id);
    w.string("reason");
    w.string(release->reason);
    w.string("t");
    w.string("release");
    w.string("token");
    w.unsigned_integer(release->token);
    w.string("worker");
    w.string(release->worker_id);
  } else if (const auto* purge = std::get_if<Purge>(&command)) {
    w.map_header(4);
    w.string("ids");
    w.strings(purge->ids);
    w.string("pool");
    w.string(purge->pool);
    w.string("retention");
    w.integer(purge->retention_ms);
    w.string("t");
    w.string("purge");
  } else if (const auto* config = std::get_if<ConfigurePool>(&command)) {
    w.map_header(3);
    w.string("pool");
    w.string(config->pool);
    w.string("retention");
    w.integer(config->retention_ms);
    w.string("t");
    w.string("pool");
  } else if (const auto* reclaim = std::get_if<Reclaim>(&command)) {
    w.map_header(4);
    w.string("lost_after");
    w.integer(reclaim->lost_after_ms);
    w.string("pool");
    w.string(reclaim->pool);
    w.string("t");
    w.string("reclaim");
    w.string("worker");
    w.string(reclaim->worker_id);
  }
}

// --- reading -----------------------------------------------------------------------------------------------

// One map's fields as encoded slices, read in any order: a command's type ("t") sorts after most of its fields.
// A nil field reads as absent, like the JSON path's optional fields.
class Fields {
 public:
  explicit Fields(Reader& r) {
    size_t n = r.map_header();
    // The count comes from the bytes (up to 2^32 - 1 in a corrupt entry): reserve no more than a real map has; a
    // hostile count then fails at the end of the input instead of asking for gigabytes first.
    fields_.reserve(std::min<size_t>(n, 32));
    for (size_t i = 0; i < n; ++i) {
      Field f;
      f.key = r.string();
      f.bytes = r.raw(&f.offset);
      fields_.push_back(f);
    }
  }

  // A reader over the field's value; nullopt when it is absent or nil.
  std::optional<Reader> get(std::string_view key) const {
    for (const auto& f : fields_) {
      if (f.key != key) continue;
      if (f.bytes.size() == 1 && static_cast<uint8_t>(f.bytes[0]) == 0xc0) return std::nullopt;
      return Reader(f.bytes, kWhat, f.offset);
    }
    return std::nullopt;
  }
  Reader need(std::string_view key) const {
    auto r = get(key);
    if (!r) throw msgpack::DecodeError(std::string(kWhat) + ": missing '" + std::string(key) + "'");
    return *r;
  }
  bool has(std::string_view key) const {
    for (const auto& f : fields_)
      if (f.key == key) return true;
    return false;
  }

  std::string str(std::string_view key) const {
    auto r = get(key);
    return r ? std::string(r->string()) : std::string();
  }
  int64_t i64(std::string_view key) const {
    auto r = get(key);
    return r ? r->integer() : 0;
  }
  uint64_t u64(std::string_view key, uint64_t max = std::numeric_limits<uint64_t>::max()) const {
    auto r = get(key);
    return r ? r->unsigned_integer(max) : 0;
  }
  bool flag(std::string_view key) const {
    auto r = get(key);
    return r ? r->boolean() : false;
  }
  Json json(std::string_view key) const {
    auto r = get(key);
    return r ? r->json() : Json();
  }
  std::vector<std::string> strings(std::string_view key) const {
    auto r = get(key);
    return r ? r->strings() : std::vector<std::string>();
  }

 private:
  struct Field {
    std::string_view key;
    std::string_view bytes;
    size_t offset = 0;
  };
  std::vector<Field> fields_;
};

DispatchSpec read_dispatch(Reader& r) {
  Fields f(r);
  DispatchSpec d;
  d.id = f.str("id");
  d.pool = f.str("pool");
  d.name = f.str("name");
  d.tags = f.json("tags");
  if (d.tags.is_null()) d.tags = Json::object();
  d.input = f.json("input");
  d.idempotency_key = f.str("idempotency_key");
  d.parent_id = f.str("parent_id");
  d.notify_parent = f.flag("notify_parent");
  d.max_attempts = static_cast<uint32_t>(f.u64("max_attempts", std::numeric_limits<uint32_t>::max()));
  d.run_at = f.i64("run_at");
  d.delay_ms = f.i64("delay_ms");
  return d;
}

SignalSpec read_signal(Reader& r) {
  Fields f(r);
  return SignalSpec{f.str("workflow_id"), f.str("name"), f.json("body"), f.str("signal_id")};
}

StepResult read_step(Reader& r) {
  if (r.peek() != msgpack::Type::kMap) r.fail("step must be a map");
  Fields f(r);
  StepResult s;
  auto kind_name = f.str("kind");
  auto kind = parse_step_kind(kind_name);
  if (!kind) throw msgpack::DecodeError(std::string(kWhat) + ": unknown step kind '" + kind_name + "'");
  s.kind = *kind;
  s.output = f.json("output");
  if (f.has("state")) s.state = f.json("state");  // present but nil means "set the state to null"
  s.until = f.i64("until");
  s.for_ms = f.i64("for_ms");
  s.timeout_ms = f.i64("timeout_ms");
  s.signals = f.strings("signals");
  s.error = f.str("error");
  s.backoff_base_ms = f.i64("backoff_base_ms");
  s.backoff_max_ms = f.i64("backoff_max_ms");
  return s;
}

template <typename T>
std::vector<T> read_array(std::optional<Reader> r, T (*read_one)(Reader&)) {
  std::vector<T> out;
  if (!r) return out;
  size_t n = r->array_header();
  for (size_t i = 0; i < n; ++i) out.push_back(read_one(*r));
  return out;
}

Ping read_ping(Reader& r) {
  Fields f(r);
  Ping p;
  p.pool = f.str("pool");
  p.worker_id = f.str("worker");
  p.pod = f.str("pod");
  p.version = f.str("version");
  p.workflows = f.strings("workflows");
  auto cpu = f.get("cpu");
  p.cpu = cpu ? cpu->floating() : 0.0;
  p.free_slots = static_cast<uint32_t>(f.u64("free_slots", std::numeric_limits<uint32_t>::max()));
  return p;
}

LeaseItem read_lease_item(Reader& r) {
  size_t n = r.array_header();
  if (n < 2) r.fail("a lease item is [workflow id, wake ts]");
  LeaseItem item{std::string(r.string()), r.integer()};
  for (size_t i = 2; i < n; ++i) r.skip();
  return item;
}

Command read_command(Reader& r) {
  if (r.peek() != msgpack::Type::kMap) r.fail("command must be a map");
  Fields f(r);
  auto t = f.str("t");
  if (t == "ping") {
    auto pings = f.need("pings");
    return PingBatch{read_array<Ping>(pings, read_ping)};
  }
  if (t == "drain") return Drain{f.str("pool"), f.str("worker")};
  if (t == "leave") return Leave{f.str("pool"), f.str("worker")};
  if (t == "undrain") return Undrain{f.str("pool"), f.str("worker")};
  if (t == "dispatch") {
    auto spec = f.need("spec");
    return Dispatch{read_dispatch(spec)};
  }
  if (t == "signal") {
    auto spec = f.need("spec");
    return SendSignal{read_signal(spec)};
  }
  if (t == "cancel") return Cancel{f.str("id"), f.str("reason")};
  if (t == "lease") {
    auto items = f.need("items");
    return LeaseBatch{f.str("pool"), f.str("worker"), read_array<LeaseItem>(items, read_lease_item)};
  }
  if (t == "commit") {
    CommitStep c;
    c.workflow_id = f.str("id");
    c.worker_id = f.str("worker");
    c.token = f.u64("token");
    auto step = f.need("step");
    c.step = read_step(step);
    c.consumed_signal_seq = f.u64("consumed");
    c.children = read_array<DispatchSpec>(f.get("children"), read_dispatch);
    c.signals = read_array<SignalSpec>(f.get("signals"), read_signal);
    return c;
  }
  if (t == "release") return Release{f.str("id"), f.str("worker"), f.u64("token"), f.str("reason")};
  if (t == "reclaim") return Reclaim{f.str("pool"), f.str("worker"), f.i64("lost_after")};
  if (t == "purge") return Purge{f.str("pool"), f.i64("retention"), f.strings("ids")};
  if (t == "pool") return ConfigurePool{f.str("pool"), f.has("retention") ? f.i64("retention") : -1};
  throw msgpack::DecodeError(std::string(kWhat) + ": unknown command type '" + t + "'");
}

}  // namespace

std::string encode_entry(const Entry& e) {
  std::string out;
  out.reserve(64 + 192 * e.commands.size());
  Writer w(out);
  w.map_header(2);
  w.string("cmds");
  w.array_header(e.commands.size());
  for (const auto& c : e.commands) write_command(w, c);
  w.string("ts");
  w.integer(e.ts);
  return out;
}

Entry decode_entry(std::string_view bytes) {
  Reader r(bytes, kWhat);
  Fields f(r);
  if (!r.done()) r.fail("trailing bytes after the entry");
  Entry e;
  e.ts = f.need("ts").integer();
  e.commands = read_array<Command>(f.need("cmds"), read_command);
  return e;
}

}  // namespace gasoline::store
