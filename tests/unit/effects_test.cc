// The effects entry codec (kv/store/effects.h): what the Raft log carries since the leader computes entries.
#include "common/msgpack.h"
#include "kv/store/command.h"
#include "kv/store/effects.h"

#include <gtest/gtest.h>

namespace gasoline::store {
namespace {

Mutations sample() {
  Mutations m;
  m[std::string("f\0wf-1", 6)] = std::string(300, 'r');                 // bin16 value, a key with a NUL
  m["p\xff\x01pool"] = std::string();                                      // an empty value is not a delete
  m["x-wake"] = std::nullopt;                                              // a delete
  m[std::string(1, 'z') + std::string(70000, 'k')] = std::string("v");    // bin32 key
  return m;
}

// A payload that must be refused, and a piece of the message that names why.
struct BadPayload {
  const char* name;
  std::string bytes;
  const char* message;
};

void expect_refused(const std::vector<BadPayload>& cases) {
  std::string scratch;
  for (const auto& c : cases) {
    try {
      decode_effects(c.bytes, scratch);
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const msgpack::DecodeError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.name << ": " << e.what();
    }
  }
}

TEST(Effects, RoundTripKeepsEveryFieldAndMutation) {
  std::string scratch;
  auto m = sample();
  auto bytes = encode_effects(42, -5, 3, m);
  ASSERT_TRUE(is_effects(bytes));
  auto e = decode_effects(bytes, scratch);
  EXPECT_EQ(e.index, 42u);
  EXPECT_EQ(e.ts, -5);
  EXPECT_EQ(e.commands, 3u);
  ASSERT_EQ(e.mutations.size(), m.size());
  auto it = m.begin();
  for (const auto& [k, v] : e.mutations) {
    EXPECT_EQ(k, it->first);
    ASSERT_EQ(v.has_value(), it->second.has_value()) << it->first.substr(0, 10);
    if (v) {
      EXPECT_EQ(*v, *it->second);
    }
    ++it;
  }
  // No mutations at all (an entry whose commands all failed) is fine too.
  auto empty = decode_effects(encode_effects(7, 1, 1, {}), scratch);
  EXPECT_EQ(empty.index, 7u);
  EXPECT_TRUE(empty.mutations.empty());
}

TEST(Effects, CommandEntriesAreNotEffects) {
  std::string scratch;
  EXPECT_FALSE(is_effects(encode_entry(Entry{1, {PingBatch{}}})));
  EXPECT_FALSE(is_effects(""));
  EXPECT_FALSE(is_effects("\x95"));
  EXPECT_THROW(decode_effects(encode_entry(Entry{1, {PingBatch{}}}), scratch), msgpack::DecodeError);
}

// Versioning: every entry says its format, so a replica recognises one written by a newer version (a tag it does
// not know) instead of misreading it.
TEST(Effects, EntryFormatNamesWhatWroteTheEntry) {
  auto tagged = [](const char* tag) {
    std::string out;
    msgpack::Writer w(out);
    w.array_header(3);
    w.string(tag);
    w.unsigned_integer(9);
    w.string("payload");
    return out;
  };
  const struct {
    const char* name;
    std::string bytes;
    EntryFormat format;
    const char* tag;
  } cases[] = {
      {"effects", encode_effects(3, 1, 1, sample()), EntryFormat::kEffects, "fz"},  // sample() compresses
      {"small effects", encode_effects(3, 1, 1, {}), EntryFormat::kEffects, "fx"},
      {"command entry (older logs)", encode_entry(Entry{1, {PingBatch{}}}), EntryFormat::kCommands, ""},
      {"a newer format", tagged("fx2"), EntryFormat::kUnknown, "fx2"},
      {"a newer format with a long tag", tagged("effects-v3"), EntryFormat::kUnknown, "effects-v3"},
      {"an array without a tag", std::string("\x92\x01\x02"), EntryFormat::kUnknown, ""},
      {"garbage", std::string("\xc1\xc1"), EntryFormat::kUnknown, ""},
      {"empty", std::string(), EntryFormat::kUnknown, ""},
  };
  for (const auto& c : cases) {
    auto f = entry_format(c.bytes);
    EXPECT_EQ(f.format, c.format) << c.name;
    EXPECT_EQ(f.tag, c.tag) << c.name;
  }
}

TEST(Effects, EveryTruncationIsADecodeError) {
  std::string scratch;
  auto bytes = encode_effects(9, 1'700'000'000'000, 2, sample());
  for (size_t n = 0; n < bytes.size(); n += (n < 64 ? 1 : 997)) {
    EXPECT_THROW(decode_effects(std::string_view(bytes).substr(0, n), scratch), msgpack::DecodeError) << n;
  }
}

// Malformed payloads a buggy or hostile peer could send: each is refused with a message naming the problem.
TEST(Effects, MalformedPayloadsNameTheProblem) {
  auto build = [](auto&& body) {
    std::string out;
    msgpack::Writer w(out);
    body(w);
    return out;
  };
  expect_refused({
      {"odd item count", build([](msgpack::Writer& w) {
         w.array_header(5), w.string("fx"), w.unsigned_integer(1), w.integer(1), w.unsigned_integer(1);
         w.array_header(1), w.binary("k");
       }), "odd number"},
      {"keys out of order", build([](msgpack::Writer& w) {
         w.array_header(5), w.string("fx"), w.unsigned_integer(1), w.integer(1), w.unsigned_integer(1);
         w.array_header(4), w.binary("b"), w.nil(), w.binary("a"), w.nil();
       }), "out of order"},
      {"duplicate key", build([](msgpack::Writer& w) {
         w.array_header(5), w.string("fx"), w.unsigned_integer(1), w.integer(1), w.unsigned_integer(1);
         w.array_header(4), w.binary("a"), w.nil(), w.binary("a"), w.binary("v");
       }), "out of order"},
      {"empty key", build([](msgpack::Writer& w) {
         w.array_header(5), w.string("fx"), w.unsigned_integer(1), w.integer(1), w.unsigned_integer(1);
         w.array_header(2), w.binary(""), w.nil();
       }), "empty key"},
      {"huge count", build([](msgpack::Writer& w) {
         w.array_header(5), w.string("fx"), w.unsigned_integer(1), w.integer(1), w.unsigned_integer(1);
         w.array_header(0xfffffffe);
       }), "more mutations than bytes"},
      {"text value", build([](msgpack::Writer& w) {
         w.array_header(5), w.string("fx"), w.unsigned_integer(1), w.integer(1), w.unsigned_integer(1);
         w.array_header(2), w.binary("k"), w.string("v");
       }), "expected binary"},
      {"negative index", build([](msgpack::Writer& w) {
         w.array_header(5), w.string("fx"), w.integer(-1);
       }), "raft effects entry"},
      {"trailing bytes", encode_effects(1, 1, 1, {}) + "x", "trailing"},
  });
}

// Large effects (whole records, repeated field names) travel LZ4-compressed; small ones as they are.
TEST(Effects, LargePayloadsAreCompressedAndDecodeTheSame) {
  std::string scratch;
  Mutations small{{"f1", "v"}};
  auto s = encode_effects(1, 1, 1, small);
  EXPECT_EQ(static_cast<uint8_t>(s[0]), 0x95) << "a small payload should stay uncompressed";
  Mutations big;
  for (int i = 0; i < 200; ++i)
    big["f/wf-" + std::to_string(1000 + i)] = std::string("\x8a\xa2" "id\xa4" "wf-1\xa6" "status\x02\xa5" "steps\x03\xa4" "pool\xa4" "bench");
  auto b = encode_effects(2, 3, 4, big);
  ASSERT_TRUE(is_effects(b));
  EXPECT_EQ(static_cast<uint8_t>(b[0]), 0x93) << "a large payload should be compressed";
  size_t raw = 0;
  for (const auto& [k, v] : big) raw += k.size() + v->size();
  EXPECT_LT(b.size() * 3, raw) << "repeated field names compress well";
  auto e = decode_effects(b, scratch);
  EXPECT_EQ(e.index, 2u);
  EXPECT_EQ(e.ts, 3);
  EXPECT_EQ(e.commands, 4u);
  ASSERT_EQ(e.mutations.size(), big.size());
  auto it = big.begin();
  for (const auto& [k, v] : e.mutations) {
    EXPECT_EQ(k, it->first);
    EXPECT_EQ(v, std::optional<std::string_view>(*it->second));
    ++it;
  }
}

TEST(Effects, CorruptOrLyingCompressedPayloadsAreRefused) {
  auto wrap = [](uint64_t size, std::string block) {
    std::string out;
    msgpack::Writer w(out);
    w.array_header(3);
    w.string("fz");
    w.unsigned_integer(size);
    w.binary(block);
    return out;
  };
  expect_refused({
      {"garbage block", wrap(100, std::string(20, '\xff')), "corrupt lz4 block"},
      {"size beyond what the block can hold", wrap(1u << 20, std::string(8, 'a')), "does not fit"},
      {"size beyond the cap", wrap(kMaxEffectsBytes + 1, std::string(8, 'a')), "raft effects entry"},
      {"size smaller than the data", wrap(3, std::string("\x50hello", 6)), "corrupt lz4 block"},
  });
}

}  // namespace
}  // namespace gasoline::store
