// libFuzzer target: the Raft transport's handshake parser (kv/raft/handshake.h), the first bytes any process that
// reaches a replica's Raft port gets to send.
//
// The input is the byte stream of a dialler. It is consumed the way the listener reads it (kv/raft/transport.cc):
// the 24-byte header, then exactly the size hello_size() announces, then a 32-byte proof. Invariants: hello_size()
// is 0 below the header, SIZE_MAX or within bounds above it, and never changes once the header is known; a decoded
// hello re-encodes to a hello that decodes to the same fields; the proof check accepts only the expected proof.
#include "kv/raft/handshake.h"
#include "tests/fuzz/fuzz_check.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace hs = gasoline::raft::handshake;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* bytes = reinterpret_cast<const char*>(data);
  size_t header = std::min(size, hs::kHeaderSize);
  CHECK(hs::hello_size(bytes, header) == (header < hs::kHeaderSize ? 0 : hs::hello_size(bytes, size)));
  if (size < hs::kHeaderSize) return 0;
  size_t need = hs::hello_size(bytes, size);
  if (need == SIZE_MAX) return 0;
  CHECK(need >= hs::kHeaderSize + 8 + hs::kNonceSize);
  CHECK(need <= hs::kHeaderSize + hs::kMaxAddress + hs::kNonceSize);
  // Every prefix long enough for the header announces the same size.
  for (size_t n = hs::kHeaderSize; n <= std::min(size, need); n += 7) CHECK(hs::hello_size(bytes, n) == need);
  std::string error;
  // Not exactly one hello: refused with a reason.
  if (size != need) CHECK(!hs::decode_hello(bytes, std::min(size, need - 1), error) && !error.empty());
  if (size < need) return 0;
  error.clear();
  auto hello = hs::decode_hello(bytes, need, error);
  if (!hello) {
    CHECK(!error.empty());
    return 0;
  }
  CHECK(hello->id != 0);
  CHECK(hello->address.size() < need - hs::kHeaderSize - hs::kNonceSize);
  CHECK(std::memchr(hello->address.data(), '\0', hello->address.size()) == nullptr);
  auto again = hs::encode_hello(*hello);
  auto decoded = hs::decode_hello(again.data(), again.size(), error);
  CHECK(decoded && decoded->id == hello->id && decoded->address == hello->address && decoded->nonce == hello->nonce);

  // The dialler's proof follows the hello: only the proof over this hello, our nonce and the secret is accepted.
  hs::Nonce listener_nonce{};
  listener_nonce[0] = 0x5a;
  auto expected = hs::prove("fuzz-raft-secret-0123456789", hs::Role::kDialler, *hello, listener_nonce);
  std::string received(bytes + need, size - need);
  bool accepted = hs::proof_matches(expected, received);
  CHECK(accepted == (received.size() == hs::kProofSize &&
                     std::memcmp(received.data(), expected.data(), hs::kProofSize) == 0));
  std::string right(reinterpret_cast<const char*>(expected.data()), expected.size());
  CHECK(hs::proof_matches(expected, right));
  return 0;
}
