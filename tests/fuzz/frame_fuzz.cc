// libFuzzer target: every parser of untrusted bytes on the kv's wire path.
//
// Input layout: byte 0 picks the decoder's frame cap (< 0x80: the 16 MiB default; otherwise a small cap, so the
// "too large" path is reachable with short inputs), bytes 1..3 seed the chunking, the rest is the byte stream a
// peer sends. The stream is fed to rpc::FrameDecoder in pseudo-random chunks (1 byte up to 4 KiB), as a socket
// would deliver it. The chunked decode must agree with decoding the whole stream at once (same frames, same
// error), and every decoded frame must re-encode to exactly the bytes it came from; its body then goes
// through the server's body parser (rpc::decode_body, Json::from_msgpack with a nesting limit), the request
// argument parsers the service applies to it, and store::decode_entry.
//
// Built with clang++ -fsanitize=fuzzer,address,undefined by tests/fuzz/CMakeLists.txt. Any crash, sanitizer
// report or failed invariant (abort) is a finding.
#include "kv/rpc/frame.h"
#include "kv/rpc/protocol.h"
#include "kv/store/command.h"
#include "tests/fuzz/fuzz_check.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using gasoline::rpc::Frame;
using gasoline::rpc::FrameDecoder;
using gasoline::rpc::Json;

// The argument parsers the service runs on a request's "args" (kv/service/service.cc), all of which must turn
// bad input into exceptions, never crashes.
void parse_request(const Json& body) {
  if (!body.is_object()) return;
  auto args = body.find("args");
  if (args == body.end() || !args->is_object()) return;
  try {
    gasoline::store::dispatch_from_json(*args);
  } catch (const std::exception&) {
  }
  try {
    gasoline::store::signal_spec_from_json(*args);
  } catch (const std::exception&) {
  }
  try {
    if (args->contains("step")) gasoline::store::step_from_json(args->at("step"));
  } catch (const std::exception&) {
  }
  try {
    gasoline::store::command_from_json(*args);
  } catch (const std::exception&) {
  }
  try {
    // What the kv does with accepted bodies: store them as MessagePack, and answer with them.
    // (Byte equality, not value equality: NaN != NaN.)
    std::string packed;
    Json::to_msgpack(*args, packed);
    std::string repacked;
    Json::to_msgpack(gasoline::rpc::decode_body(packed), repacked);
    CHECK(repacked == packed);
    (void)args->dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const std::exception&) {
  }
}

void parse_body(const std::string& body) {
  bool parsed = false;
  try {
    Json j = gasoline::rpc::decode_body(body);
    parsed = true;
    parse_request(j);
  } catch (const std::exception&) {
    // Malformed bodies are answered with "protocol"; only crashes matter here.
  }
  // The log's own decoder (kv/store/entry_codec.cc, which bounds nesting itself), on the bodies decode_body
  // accepted: the shapes a proposer could have put into an entry.
  if (!parsed) return;
  try {
    auto entry = gasoline::store::decode_entry(body);
    // A decoded entry must survive its own round trip.
    auto again = gasoline::store::decode_entry(gasoline::store::encode_entry(entry));
    CHECK(again.ts == entry.ts);
    CHECK(again.commands.size() == entry.commands.size());
  } catch (const std::exception&) {
  }
}

// Decodes the whole stream fed at once: the reference the chunked decode must agree with.
struct Decoded {
  std::vector<Frame> frames;
  std::string error;  // empty: the stream ended cleanly or mid-frame
};
Decoded decode_at_once(const char* stream, size_t n, size_t max_frame) {
  Decoded out;
  FrameDecoder decoder(max_frame);
  decoder.feed(stream, n);
  while (true) {
    Frame f;
    auto st = decoder.next(f);
    if (st == FrameDecoder::Status::kNeedMore) break;
    if (st == FrameDecoder::Status::kError) {
      out.error = decoder.error();
      break;
    }
    out.frames.push_back(std::move(f));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const size_t max_frame =
      data[0] < 0x80 ? gasoline::rpc::kDefaultMaxFrame : gasoline::rpc::kHeaderSize + (data[0] - 0x80) * 8u;
  uint32_t rng = (static_cast<uint32_t>(data[1]) << 16 | static_cast<uint32_t>(data[2]) << 8 | data[3]) | 1u;
  const char* stream = reinterpret_cast<const char*>(data + 4);
  const size_t n = size - 4;

  const Decoded reference = decode_at_once(stream, n, max_frame);
  size_t frame_index = 0;

  FrameDecoder decoder(max_frame);
  size_t fed = 0;
  size_t consumed = 0;  // stream bytes accounted for by decoded frames
  bool failed = false;
  while (fed < n && !failed) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    size_t chunk = (rng & 0x100) ? 1 + (rng % 4096) : 1 + (rng % 16);
    if (chunk > n - fed) chunk = n - fed;
    decoder.feed(stream + fed, chunk);
    fed += chunk;
    while (true) {
      Frame f;
      auto st = decoder.next(f);
      if (st == FrameDecoder::Status::kNeedMore) {
        CHECK(decoder.buffered() == fed - consumed);
        break;
      }
      if (st == FrameDecoder::Status::kError) {
        CHECK(!decoder.error().empty());
        Frame again;
        CHECK(decoder.next(again) == FrameDecoder::Status::kError);  // sticky
        // However the bytes were split, the same frames came first and the same error ends the stream.
        CHECK(frame_index == reference.frames.size());
        CHECK(decoder.error() == reference.error);
        failed = true;
        break;
      }
      CHECK(gasoline::rpc::valid_frame_type(static_cast<uint8_t>(f.type)));
      CHECK(gasoline::rpc::kHeaderSize + f.body.size() <= max_frame);
      std::string encoded = gasoline::rpc::encode_frame(f.type, f.id, f.body);
      CHECK(consumed + encoded.size() <= fed);
      CHECK(std::memcmp(encoded.data(), stream + consumed, encoded.size()) == 0);
      consumed += encoded.size();
      CHECK(frame_index < reference.frames.size());
      const Frame& ref = reference.frames[frame_index++];
      CHECK(ref.type == f.type && ref.id == f.id && ref.body == f.body);
      parse_body(f.body);
    }
  }
  if (!failed) {
    // The stream ended without an error: the reference saw exactly these frames, and no error either.
    CHECK(frame_index == reference.frames.size());
    CHECK(reference.error.empty());
  }
  return 0;
}
