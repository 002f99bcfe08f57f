// The DB record codec (kv/store/record_codec.cc over common/msgpack.h) against its reference, the nlohmann DOM path
// (encode(to_json(record)) and *_from_json(decode(bytes))): the same bytes for every record, the same record back
// from either encoding, and a clear DecodeError (never a crash or a silently wrong record) for bad bytes.
#include <gtest/gtest.h>

#include "common/msgpack.h"
#include "kv/store/model.h"

#include <cmath>
#include <limits>
#include <random>

namespace gasoline::store {
namespace {

using msgpack::DecodeError;

std::string dom_bytes(const Json& j) { return encode(j); }

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// --- the writer picks nlohmann's encodings ---------------------------------------------------------------

TEST(Msgpack, IntegersMatchNlohmannAtEveryBoundary) {
  const int64_t ints[] = {0,     1,      127,    128,    255,    256,    65535, 65536, 4294967295LL, 4294967296LL,
                          -1,    -32,    -33,    -128,   -129,   -32768, -32769, std::numeric_limits<int32_t>::min(),
                          std::numeric_limits<int32_t>::min() - 1LL, std::numeric_limits<int64_t>::min(),
                          std::numeric_limits<int64_t>::max()};
  for (int64_t v : ints) {
    std::string ours;
    msgpack::Writer(ours).integer(v);
    EXPECT_EQ(hex(ours), hex(dom_bytes(Json(v)))) << v;
    msgpack::Reader r(ours, "test");
    EXPECT_EQ(r.integer(), v);
    EXPECT_TRUE(r.done());
  }
  const uint64_t uints[] = {0, 127, 128, 255, 256, 65535, 65536, 4294967295ULL, 4294967296ULL,
                            std::numeric_limits<uint64_t>::max()};
  for (uint64_t v : uints) {
    std::string ours;
    msgpack::Writer(ours).unsigned_integer(v);
    EXPECT_EQ(hex(ours), hex(dom_bytes(Json(v)))) << v;
    msgpack::Reader r(ours, "test");
    EXPECT_EQ(r.unsigned_integer(), v);
  }
}

TEST(Msgpack, FloatsMatchNlohmannIncludingFloat32Compaction) {
  const double values[] = {0.0,  -0.0, 0.5, 0.1, 1e300, -1e-300, 3.4028234663852886e38, 1e39,
                           std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()};
  for (double v : values) {
    std::string ours;
    msgpack::Writer(ours).floating(v);
    EXPECT_EQ(hex(ours), hex(dom_bytes(Json(v)))) << v;
    msgpack::Reader r(ours, "test");
    double back = r.floating();
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(back));
    } else {
      EXPECT_EQ(back, v);
    }
  }
}

TEST(Msgpack, StringsArraysAndMapsMatchNlohmannAtEveryLengthClass) {
  for (size_t n : {0, 1, 31, 32, 255, 256, 65535, 65536}) {
    std::string s(n, 'x');
    std::string ours;
    msgpack::Writer(ours).string(s);
    EXPECT_EQ(hex(ours), hex(dom_bytes(Json(s)))) << n;
    msgpack::Reader r(ours, "test");
    EXPECT_EQ(r.string(), s);
  }
  for (size_t n : {0, 15, 16, 65535, 65536}) {
    Json arr = Json::array();
    for (size_t i = 0; i < n; ++i) arr.push_back(nullptr);
    std::string ours;
    msgpack::Writer w(ours);
    w.array_header(n);
    for (size_t i = 0; i < n; ++i) w.nil();
    EXPECT_EQ(ours, dom_bytes(arr)) << n;
    msgpack::Reader r(ours, "test");
    EXPECT_EQ(r.array_header(), n);
  }
  for (size_t n : {0, 15, 16, 300}) {
    Json obj = Json::object();
    for (size_t i = 0; i < n; ++i) obj[std::to_string(1000 + i)] = true;
    std::string ours;
    msgpack::Writer w(ours);
    w.map_header(n);
    for (const auto& [k, v] : obj.items()) {
      w.string(k);
      w.boolean(true);
    }
    EXPECT_EQ(ours, dom_bytes(obj)) << n;
  }
}

TEST(Msgpack, ReaderRefusesMalformedInputWithTheOffset) {
  struct Case {
    std::string bytes;
    std::string expect;  // a part of the message
  };
  const Case cases[] = {
      {"", "truncated at byte 0"},
      {"\xcd\x01", "truncated"},
      {"\xa5" "abc", "truncated"},
      {"\xc1", "invalid type byte 0xc1 at byte 0"},
      {"\x91\xc1", "invalid type byte 0xc1 at byte 1"},
      {std::string("\xdd\xff\xff\xff\xff", 5), "truncated"},  // 4 billion elements promised, none present
  };
  for (const auto& c : cases) {
    msgpack::Reader r(c.bytes, "test value");
    try {
      r.skip();
      ADD_FAILURE() << "accepted " << hex(c.bytes);
    } catch (const DecodeError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("test value: ", 0), 0u) << e.what();
    }
  }
}

TEST(Msgpack, NestingIsBoundedSoHostileBytesCannotExhaustTheStack) {
  std::string deep(100000, static_cast<char>(0x91));  // [[[[...
  deep.push_back(static_cast<char>(0xc0));
  msgpack::Reader r(deep, "test");
  EXPECT_THROW(r.skip(), DecodeError);
  msgpack::Reader r2(deep, "test");
  EXPECT_THROW(r2.json(), DecodeError);
  std::string ok(msgpack::kMaxDepth, static_cast<char>(0x91));
  ok.push_back(static_cast<char>(0xc0));
  msgpack::Reader r3(ok, "test");
  EXPECT_NO_THROW(r3.json());
}

TEST(Msgpack, IntegerReadsAreRangeChecked) {
  std::string neg;
  msgpack::Writer(neg).integer(-5);
  EXPECT_THROW(msgpack::Reader(neg, "t").unsigned_integer(), DecodeError);
  std::string huge;
  msgpack::Writer(huge).unsigned_integer(std::numeric_limits<uint64_t>::max());
  EXPECT_THROW(msgpack::Reader(huge, "t").integer(), DecodeError);
  std::string str;
  msgpack::Writer(str).string("7");
  EXPECT_THROW(msgpack::Reader(str, "t").integer(), DecodeError);
  EXPECT_THROW(msgpack::Reader(str, "t").floating(), DecodeError);
}

// --- records: the codec against the DOM path ------------------------------------------------------------

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}

  int64_t i64() {
    switch (pick(6)) {
      case 0: return 0;
      case 1: return -1;
      case 2: return std::numeric_limits<int64_t>::min();
      case 3: return std::numeric_limits<int64_t>::max();
      case 4: return static_cast<int64_t>(rng_()) - (1LL << 31);
      default: return 1'700'000'000'000 + pick(1'000'000);
    }
  }
  uint64_t u64() {
    switch (pick(5)) {
      case 0: return 0;
      case 1: return std::numeric_limits<uint64_t>::max();
      case 2: return pick(200);
      default: return (static_cast<uint64_t>(rng_()) << 32) | rng_();
    }
  }
  uint32_t u32() { return pick(2) ? static_cast<uint32_t>(pick(300)) : static_cast<uint32_t>(rng_()); }
  std::string str() {
    static const char* samples[] = {"", "a", "workflow-0001", "pool/with:odd.chars_-", "ünïcödé",
                                    "a string that is longer than thirty-one bytes, so it needs str8"};
    if (pick(64) == 0) return std::string(pick(70000), 'z');
    return samples[pick(std::size(samples))];
  }
  std::vector<std::string> strs() {
    std::vector<std::string> v(pick(20));
    for (auto& s : v) s = str();
    return v;
  }
  Json json(int depth = 0) {
    switch (depth > 3 ? pick(5) : pick(8)) {
      case 0: return nullptr;
      case 1: return pick(2) == 1;
      case 2: return i64();
      case 3: return u64();
      case 4: return str();
      case 5: return std::ldexp(static_cast<double>(rng_()), static_cast<int>(pick(200)) - 100);
      case 6: {
        Json a = Json::array();
        for (size_t i = 0, n = pick(5); i < n; ++i) a.push_back(json(depth + 1));
        return a;
      }
      default: {
        Json o = Json::object();
        for (size_t i = 0, n = pick(5); i < n; ++i) o["key" + std::to_string(pick(1000))] = json(depth + 1);
        return o;
      }
    }
  }

  Workflow workflow() {
    Workflow w;
    w.id = str();
    w.pool = str();
    w.name = str();
    w.tags = Json::object();  // the model reads a nil tags field as an empty map
    if (pick(3) == 0) w.tags["team"] = json();
    w.input = json();
    w.state = json();
    w.output = json();
    w.error = str();
    w.status = static_cast<Status>(pick(7));
    w.attempt = u32();
    w.max_attempts = u32();
    w.created_ts = i64();
    w.updated_ts = i64();
    w.parent_id = str();
    w.notify_parent = pick(2) == 1;
    w.wake_ts = i64();
    w.wake_reason = str();
    w.wait_signals = strs();
    w.lease_worker = str();
    w.lease_token = u64();
    w.last_commit_worker = str();
    w.last_commit_token = u64();
    w.next_signal_seq = u64();
    w.consumed_signal_seq = u64();
    w.steps = u64();
    return w;
  }
  Worker worker() {
    Worker w;
    w.pool = str();
    w.id = str();
    w.pod = str();
    w.version = str();
    w.state = static_cast<WorkerState>(pick(2));
    w.last_ping_ts = i64();
    const double cpus[] = {0.0, 0.5, 0.37, 1.0, 2.75, 1e-9};
    w.cpu = cpus[pick(std::size(cpus))];
    w.free_slots = u32();
    w.workflows = strs();
    return w;
  }
  Signal signal() { return Signal{str(), u64(), str(), json(), i64()}; }

 private:
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  std::mt19937 rng_;
};

TEST(RecordCodec, WorkflowsEncodeToTheDomBytesAndDecodeBack) {
  Gen gen(20261128);
  for (int i = 0; i < 1500; ++i) {
    Workflow w = gen.workflow();
    std::string bytes = encode(w);
    ASSERT_EQ(hex(bytes), hex(encode(to_json(w)))) << "iteration " << i;
    EXPECT_EQ(to_json(decode_workflow(bytes)), to_json(w)) << "iteration " << i;
    EXPECT_EQ(to_json(workflow_from_json(decode(bytes))), to_json(w)) << "iteration " << i;
  }
}

TEST(RecordCodec, WorkersAndSignalsEncodeToTheDomBytesAndDecodeBack) {
  Gen gen(7);
  for (int i = 0; i < 1000; ++i) {
    Worker w = gen.worker();
    ASSERT_EQ(encode(w), encode(to_json(w))) << "iteration " << i;
    EXPECT_EQ(to_json(decode_worker(encode(w))), to_json(w)) << "iteration " << i;
    Signal s = gen.signal();
    ASSERT_EQ(encode(s), encode(to_json(s))) << "iteration " << i;
    EXPECT_EQ(to_json(decode_signal(encode(s))), to_json(s)) << "iteration " << i;
  }
}

TEST(RecordCodec, MissingNilAndUnknownFieldsReadAsTheDefaultsInAnyKeyOrder) {
  // A record an older version wrote (few fields), with an unknown field from a newer one and nils.
  Json old = Json::object();
  old["zz_future"] = Json{{"nested", Json::array({1, 2, Json{{"x", nullptr}}})}};
  old["id"] = "wf-1";
  old["pool"] = "p";
  old["tags"] = nullptr;
  old["state"] = nullptr;
  old["error"] = nullptr;
  old["status"] = 3;
  // Keys out of order on purpose: nlohmann sorts, so build the map by hand.
  std::string bytes;
  msgpack::Writer w(bytes);
  w.map_header(old.size());
  for (const char* key : {"zz_future", "status", "id", "tags", "pool", "state", "error"}) {
    w.string(key);
    w.json(old[key]);
  }
  Workflow got = decode_workflow(bytes);
  EXPECT_EQ(got.id, "wf-1");
  EXPECT_EQ(got.pool, "p");
  EXPECT_EQ(got.status, Status::kWaiting);
  EXPECT_EQ(got.tags, Json::object());
  EXPECT_TRUE(got.state.is_null());
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.wake_ts, -1);
  EXPECT_EQ(got.next_signal_seq, 1u);
  EXPECT_EQ(to_json(got), to_json(workflow_from_json(decode(bytes))));
}

TEST(RecordCodec, BadRecordsThrowDecodeErrorNamingTheField) {
  struct Case {
    std::string name;
    Json record;
    std::string expect;
  };
  const Case cases[] = {
      {"attempt above uint32", Json{{"attempt", 1ULL << 32}}, "4294967296 is out of range (at most 4294967295) at byte 9 (field 'attempt')"},
      {"negative steps", Json{{"steps", -1}}, "expected a non-negative integer at byte 7 (field 'steps')"},
      {"unknown status", Json{{"status", 7}}, "7 is out of range (at most 6) at byte 8 (field 'status')"},
      {"id not a string", Json{{"id", 5}}, "expected a string at byte 4 (field 'id')"},
      {"wait_signals not strings", Json{{"wait_signals", Json::array({"a", 1})}}, "(field 'wait_signals')"},
      {"not a map", Json::array({1}), "workflow record: expected a map at byte 0"},
  };
  for (const auto& c : cases) {
    try {
      decode_workflow(encode(c.record));
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const DecodeError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << c.name << ": " << e.what();
    }
  }
  Worker w;
  std::string bytes = encode(w);
  EXPECT_THROW(decode_worker(bytes + "x"), DecodeError);  // trailing bytes
  Json bad_state = to_json(w);
  bad_state["state"] = 2;
  EXPECT_THROW(decode_worker(encode(bad_state)), DecodeError);
}

TEST(RecordCodec, EveryTruncationOfARecordIsRefused) {
  Workflow w;
  w.id = "wf-1";
  w.pool = "pool-a";
  w.input = Json{{"k", Json::array({1, "two", 3.5})}};
  w.wait_signals = {"go", "stop"};
  w.lease_token = 1ULL << 40;
  w.wake_ts = 1'700'000'000'000;
  std::string bytes = encode(w);
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_THROW(decode_workflow(std::string_view(bytes).substr(0, n)), DecodeError) << "prefix of " << n;
}

}  // namespace
}  // namespace gasoline::store
