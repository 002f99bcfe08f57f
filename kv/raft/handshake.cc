#include "kv/raft/handshake.h"

#include "common/little_endian.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace gasoline::raft::handshake {
namespace {

constexpr std::string_view kListenerLabel = "gasoline-raft-handshake/2 listener";
constexpr std::string_view kDiallerLabel = "gasoline-raft-handshake/2 dialler";

}  // namespace

std::string encode_hello(const Hello& hello) {
  size_t padded = (hello.address.size() + 1 + 7) / 8 * 8;
  std::string out;
  out.reserve(kHeaderSize + padded + kNonceSize);
  put_le64(out, kVersion);
  put_le64(out, hello.id);
  put_le64(out, padded);
  out.append(hello.address);
  out.append(padded - hello.address.size(), '\0');
  out.append(reinterpret_cast<const char*>(hello.nonce.data()), hello.nonce.size());
  return out;
}

size_t hello_size(const char* data, size_t n) {
  if (n < kHeaderSize) return 0;
  if (get_le64(data) != kVersion) return SIZE_MAX;
  uint64_t len = get_le64(data + 16);
  if (len == 0 || len > kMaxAddress || len % 8 != 0) return SIZE_MAX;
  return kHeaderSize + static_cast<size_t>(len) + kNonceSize;
}

std::optional<Hello> decode_hello(const char* data, size_t n, std::string& error) {
  size_t need = hello_size(data, n);
  if (need == 0) {
    error = "hello shorter than its header";
    return std::nullopt;
  }
  if (need == SIZE_MAX) {
    error = n >= 8 && get_le64(data) != kVersion ? "unsupported handshake version " + std::to_string(get_le64(data))
                                              : "invalid address length";
    return std::nullopt;
  }
  if (n != need) {
    error = "hello of " + std::to_string(n) + " bytes, its header says " + std::to_string(need);
    return std::nullopt;
  }
  Hello hello;
  hello.id = get_le64(data + 8);
  if (hello.id == 0) {
    error = "server id 0 (reserved by libraft)";
    return std::nullopt;
  }
  size_t padded = need - kHeaderSize - kNonceSize;
  const char* address = data + kHeaderSize;
  size_t len = strnlen(address, padded);
  if (len == padded) {
    error = "address without a NUL terminator";
    return std::nullopt;
  }
  hello.address.assign(address, len);
  std::memcpy(hello.nonce.data(), data + kHeaderSize + padded, kNonceSize);
  return hello;
}

std::string encode_challenge(const Nonce& listener_nonce, const Proof& listener_proof) {
  std::string out(reinterpret_cast<const char*>(listener_nonce.data()), listener_nonce.size());
  out.append(reinterpret_cast<const char*>(listener_proof.data()), listener_proof.size());
  return out;
}

Proof prove(std::string_view secret, Role role, const Hello& hello, const Nonce& listener_nonce) {
  std::string message(role == Role::kListener ? kListenerLabel : kDiallerLabel);
  message.push_back('\0');
  message += encode_hello(hello);
  message.append(reinterpret_cast<const char*>(listener_nonce.data()), listener_nonce.size());
  Proof proof{};
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), proof.data(), &len) ||
      len != proof.size())
    throw std::runtime_error("HMAC-SHA256 of the raft handshake failed");
  return proof;
}

bool proof_matches(const Proof& expected, std::string_view received) {
  if (received.size() != expected.size()) return false;
  return CRYPTO_memcmp(expected.data(), received.data(), expected.size()) == 0;
}

Nonce random_nonce() {
  Nonce nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1)
    throw std::runtime_error("OpenSSL could not produce a random raft handshake nonce");
  return nonce;
}

}  // namespace gasoline::raft::handshake
