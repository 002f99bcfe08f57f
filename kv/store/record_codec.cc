// The DB's record codec (declared in model.h). Each record's schema is one table of fields in key order: encoding
// walks it, and decoding expects the keys in that order (what we write), falling back to a search for maps written
// in another order or by an older or newer version.
#include "kv/store/model.h"

#include "common/msgpack.h"

#include <limits>

namespace gasoline::store {
namespace {

using msgpack::Reader;
using msgpack::Writer;

template <typename Record>
struct Field {
  std::string_view name;
  void (*write)(Writer&, const Record&);
  void (*read)(Reader&, Record&);  // never called for nil: a nil field keeps its default
};

template <typename T>
T read_unsigned(Reader& r) {
  return static_cast<T>(r.unsigned_integer(std::numeric_limits<T>::max()));
}

template <typename Record, size_t N>
std::string encode_with(const Field<Record> (&fields)[N], const Record& record) {
  std::string out;
  out.reserve(256);
  Writer w(out);
  w.map_header(N);
  for (const auto& f : fields) {
    w.string(f.name);
    f.write(w, record);
  }
  return out;
}

template <typename Record, size_t N>
void decode_with(const Field<Record> (&fields)[N], std::string_view bytes, const char* what, Record& record) {
  Reader r(bytes, what);
  size_t n = r.map_header();
  size_t next = 0;  // where the key is expected when the map is in our order
  for (size_t i = 0; i < n; ++i) {
    auto key = r.string();
    const Field<Record>* field = nullptr;
    if (next < N && fields[next].name == key) {
      field = &fields[next++];
    } else {
      for (size_t k = 0; k < N; ++k) {
        if (fields[k].name == key) {
          field = &fields[k];
          next = k + 1;
          break;
        }
      }
    }
    if (!field) {
      r.skip();  // a field this version does not know
      continue;
    }
    if (r.nil()) continue;
    try {
      field->read(r, record);
    } catch (const msgpack::DecodeError& e) {
      throw msgpack::DecodeError(std::string(e.what()) + " (field '" + std::string(key) + "')");
    }
  }
  if (!r.done()) r.fail("trailing bytes after the record");
}

Status read_status(Reader& r) { return static_cast<Status>(r.unsigned_integer(static_cast<uint64_t>(Status::kCancelled))); }

// Keys in sorted order: the order nlohmann writes a map in, so the bytes equal encode(to_json(w)).
const Field<Workflow> kWorkflowFields[] = {
    {"attempt", [](Writer& w, const Workflow& x) { w.unsigned_integer(x.attempt); },
     [](Reader& r, Workflow& x) { x.attempt = read_unsigned<uint32_t>(r); }},
    {"consumed_signal_seq", [](Writer& w, const Workflow& x) { w.unsigned_integer(x.consumed_signal_seq); },
     [](Reader& r, Workflow& x) { x.consumed_signal_seq = r.unsigned_integer(); }},
    {"created_ts", [](Writer& w, const Workflow& x) { w.integer(x.created_ts); },
     [](Reader& r, Workflow& x) { x.created_ts = r.integer(); }},
    {"due_ts", [](Writer& w, const Workflow& x) { w.integer(x.due_ts); },
     [](Reader& r, Workflow& x) { x.due_ts = r.integer(); }},
    {"error", [](Writer& w, const Workflow& x) { w.string(x.error); },
     [](Reader& r, Workflow& x) { x.error = r.string(); }},
    {"id", [](Writer& w, const Workflow& x) { w.string(x.id); }, [](Reader& r, Workflow& x) { x.id = r.string(); }},
    {"idempotency_key", [](Writer& w, const Workflow& x) { w.string(x.idempotency_key); },
     [](Reader& r, Workflow& x) { x.idempotency_key = r.string(); }},
    {"input", [](Writer& w, const Workflow& x) { w.json(x.input); },
     [](Reader& r, Workflow& x) { x.input = r.json(); }},
    {"last_commit_token", [](Writer& w, const Workflow& x) { w.unsigned_integer(x.last_commit_token); },
     [](Reader& r, Workflow& x) { x.last_commit_token = r.unsigned_integer(); }},
    {"last_commit_worker", [](Writer& w, const Workflow& x) { w.string(x.last_commit_worker); },
     [](Reader& r, Workflow& x) { x.last_commit_worker = r.string(); }},
    {"lease_token", [](Writer& w, const Workflow& x) { w.unsigned_integer(x.lease_token); },
     [](Reader& r, Workflow& x) { x.lease_token = r.unsigned_integer(); }},
    {"lease_worker", [](Writer& w, const Workflow& x) { w.string(x.lease_worker); },
     [](Reader& r, Workflow& x) { x.lease_worker = r.string(); }},
    {"max_attempts", [](Writer& w, const Workflow& x) { w.unsigned_integer(x.max_attempts); },
     [](Reader& r, Workflow& x) { x.max_attempts = read_unsigned<uint32_t>(r); }},
    {"name", [](Writer& w, const Workflow& x) { w.string(x.name); },
     [](Reader& r, Workflow& x) { x.name = r.string(); }},
    {"next_signal_seq", [](Writer& w, const Workflow& x) { w.unsigned_integer(x.next_signal_seq); },
     [](Reader& r, Workflow& x) { x.next_signal_seq = r.unsigned_integer(); }},
    {"notify_parent", [](Writer& w, const Workflow& x) { w.boolean(x.notify_parent); },
     [](Reader& r, Workflow& x) { x.notify_parent = r.boolean(); }},
    {"output", [](Writer& w, const Workflow& x) { w.json(x.output); },
     [](Reader& r, Workflow& x) { x.output = r.json(); }},
    {"parent_id", [](Writer& w, const Workflow& x) { w.string(x.parent_id); },
     [](Reader& r, Workflow& x) { x.parent_id = r.string(); }},
    {"pool", [](Writer& w, const Workflow& x) { w.string(x.pool); },
     [](Reader& r, Workflow& x) { x.pool = r.string(); }},
    {"state", [](Writer& w, const Workflow& x) { w.json(x.state); },
     [](Reader& r, Workflow& x) { x.state = r.json(); }},
    {"status", [](Writer& w, const Workflow& x) { w.unsigned_integer(static_cast<uint8_t>(x.status)); },
     [](Reader& r, Workflow& x) { x.status = read_status(r); }},
    {"steps", [](Writer& w, const Workflow& x) { w.unsigned_integer(x.steps); },
     [](Reader& r, Workflow& x) { x.steps = r.unsigned_integer(); }},
    {"tags", [](Writer& w, const Workflow& x) { w.json(x.tags); },
     [](Reader& r, Workflow& x) { x.tags = r.json(); }},
    {"updated_ts", [](Writer& w, const Workflow& x) { w.integer(x.updated_ts); },
     [](Reader& r, Workflow& x) { x.updated_ts = r.integer(); }},
    {"wait_signals", [](Writer& w, const Workflow& x) { w.strings(x.wait_signals); },
     [](Reader& r, Workflow& x) { x.wait_signals = r.strings(); }},
    {"wake_reason", [](Writer& w, const Workflow& x) { w.string(x.wake_reason); },
     [](Reader& r, Workflow& x) { x.wake_reason = r.string(); }},
    {"wake_ts", [](Writer& w, const Workflow& x) { w.integer(x.wake_ts); },
     [](Reader& r, Workflow& x) { x.wake_ts = r.integer(); }},
};

const Field<Worker> kWorkerFields[] = {
    {"cpu", [](Writer& w, const Worker& x) { w.floating(x.cpu); }, [](Reader& r, Worker& x) { x.cpu = r.floating(); }},
    {"free_slots", [](Writer& w, const Worker& x) { w.unsigned_integer(x.free_slots); },
     [](Reader& r, Worker& x) { x.free_slots = read_unsigned<uint32_t>(r); }},
    {"id", [](Writer& w, const Worker& x) { w.string(x.id); }, [](Reader& r, Worker& x) { x.id = r.string(); }},
    {"last_ping_ts", [](Writer& w, const Worker& x) { w.integer(x.last_ping_ts); },
     [](Reader& r, Worker& x) { x.last_ping_ts = r.integer(); }},
    {"pod", [](Writer& w, const Worker& x) { w.string(x.pod); }, [](Reader& r, Worker& x) { x.pod = r.string(); }},
    {"pool", [](Writer& w, const Worker& x) { w.string(x.pool); }, [](Reader& r, Worker& x) { x.pool = r.string(); }},
    {"state", [](Writer& w, const Worker& x) { w.unsigned_integer(static_cast<uint8_t>(x.state)); },
     [](Reader& r, Worker& x) {
       x.state = static_cast<WorkerState>(r.unsigned_integer(static_cast<uint64_t>(WorkerState::kDraining)));
     }},
    {"version", [](Writer& w, const Worker& x) { w.string(x.version); },
     [](Reader& r, Worker& x) { x.version = r.string(); }},
    {"workflows", [](Writer& w, const Worker& x) { w.strings(x.workflows); },
     [](Reader& r, Worker& x) { x.workflows = r.strings(); }},
};

const Field<Signal> kSignalFields[] = {
    {"body", [](Writer& w, const Signal& x) { w.json(x.body); }, [](Reader& r, Signal& x) { x.body = r.json(); }},
    {"name", [](Writer& w, const Signal& x) { w.string(x.name); }, [](Reader& r, Signal& x) { x.name = r.string(); }},
    {"seq", [](Writer& w, const Signal& x) { w.unsigned_integer(x.seq); },
     [](Reader& r, Signal& x) { x.seq = r.unsigned_integer(); }},
    {"ts", [](Writer& w, const Signal& x) { w.integer(x.ts); }, [](Reader& r, Signal& x) { x.ts = r.integer(); }},
    {"workflow_id", [](Writer& w, const Signal& x) { w.string(x.workflow_id); },
     [](Reader& r, Signal& x) { x.workflow_id = r.string(); }},
};

}  // namespace

std::string encode(const Workflow& w) { return encode_with(kWorkflowFields, w); }
std::string encode(const Worker& w) { return encode_with(kWorkerFields, w); }
std::string encode(const Signal& s) { return encode_with(kSignalFields, s); }

Workflow decode_workflow(std::string_view bytes) {
  Workflow w;
  decode_with(kWorkflowFields, bytes, "workflow record", w);
  if (w.tags.is_null()) w.tags = Json::object();
  return w;
}

Worker decode_worker(std::string_view bytes) {
  Worker w;
  decode_with(kWorkerFields, bytes, "worker record", w);
  return w;
}

Signal decode_signal(std::string_view bytes) {
  Signal s;
  decode_with(kSignalFields, bytes, "signal record", s);
  return s;
}

}  // namespace gasoline::store
