#pragma once
// The Raft transport's handshake (pure, no I/O; fuzzed by tests/fuzz/handshake_fuzz.cc). Every replica holds the
// same Raft secret (--raft-secret-file, distinct from the client token). Before a connection carries a single
// Raft message, each side proves it holds that secret, bound to the other side's fresh nonce, so a process that
// can merely reach the Raft port can neither join the cluster nor pose as a replica that others dial:
//
//   dialler → listener  hello      u64 LE version (2) | u64 LE claimed server id | u64 LE address length incl. NUL,
//                                  padded to 8 | address, NUL, padding | 32-byte dialler nonce
//   listener → dialler  challenge  32-byte listener nonce | 32-byte listener proof
//   dialler → listener  proof      32-byte dialler proof
//
// proof = HMAC-SHA256(secret, role label | hello | listener nonce). The labels differ per role, so neither side's
// proof can be reflected as the other's; both nonces are fresh, so no recorded proof can be replayed; the hello
// binds the claimed id and address, so a proof cannot be moved to another identity.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gasoline::raft::handshake {

constexpr uint64_t kVersion = 2;
constexpr size_t kHeaderSize = 24;
constexpr size_t kMaxAddress = 1024;  // padded length, NUL included
constexpr size_t kNonceSize = 32;
constexpr size_t kProofSize = 32;
constexpr size_t kChallengeSize = kNonceSize + kProofSize;
// A secret shorter than this is refused at startup: HMAC is only as strong as its key.
constexpr size_t kMinSecretSize = 16;

using Nonce = std::array<unsigned char, kNonceSize>;
using Proof = std::array<unsigned char, kProofSize>;

struct Hello {
  uint64_t id = 0;
  std::string address;
  Nonce nonce{};
};

enum class Role { kListener, kDialler };

std::string encode_hello(const Hello& hello);
// The number of bytes the hello needs given its first `n` bytes: 0 while fewer than kHeaderSize are known, SIZE_MAX
// for a header that can never be valid (another version, or an address length that is zero, unaligned or over
// kMaxAddress).
size_t hello_size(const char* data, size_t n);
// Decodes exactly one hello of `n` bytes. On failure returns nullopt and says why in `error`.
std::optional<Hello> decode_hello(const char* data, size_t n, std::string& error);

std::string encode_challenge(const Nonce& listener_nonce, const Proof& listener_proof);

Proof prove(std::string_view secret, Role role, const Hello& hello, const Nonce& listener_nonce);
// Constant-time comparison of `received` (exactly kProofSize bytes, else false) with the expected proof.
bool proof_matches(const Proof& expected, std::string_view received);
// A fresh nonce from OpenSSL's CSPRNG. Throws std::runtime_error if it cannot produce one.
Nonce random_nonce();

}  // namespace gasoline::raft::handshake
