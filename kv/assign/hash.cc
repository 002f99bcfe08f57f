#include "kv/assign/hash.h"

#include <array>

// The streaming state lives on the stack so scoring (O(N) per workflow) never allocates.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

namespace gasoline::assign {
namespace {

// Explicit byte order: a memcpy of the native integer would change the hash on big-endian hosts.
std::array<unsigned char, 8> le64(uint64_t v) {
  std::array<unsigned char, 8> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
  return out;
}

std::array<unsigned char, 4> le32(uint32_t v) {
  std::array<unsigned char, 4> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
  return out;
}

// Streaming XXH64 over several pieces equals one-shot XXH64 over their concatenation.
class Hasher {
 public:
  explicit Hasher(uint64_t seed) { XXH64_reset(&state_, seed); }
  Hasher& add(const void* data, size_t len) {
    XXH64_update(&state_, data, len);
    return *this;
  }
  Hasher& add(std::string_view s) { return add(s.data(), s.size()); }
  template <size_t N>
  Hasher& add(const std::array<unsigned char, N>& bytes) {
    return add(bytes.data(), bytes.size());
  }
  uint64_t digest() const { return XXH64_digest(&state_); }

 private:
  XXH64_state_t state_;
};

}  // namespace

uint64_t hash_ts(int64_t ts) {
  const auto bytes = le64(static_cast<uint64_t>(ts));
  return XXH64(bytes.data(), bytes.size(), kAssignSeed);
}

uint64_t rendezvous_score(std::string_view workflow_id, std::string_view worker_id) {
  return Hasher(kAssignSeed)
      .add(le32(static_cast<uint32_t>(workflow_id.size())))
      .add(workflow_id)
      .add(worker_id)
      .digest();
}

uint32_t shed_point(std::string_view workflow_id, int64_t wake_ts) {
  const uint64_t h = Hasher(kShedSeed).add(workflow_id).add(le64(static_cast<uint64_t>(wake_ts))).digest();
  return static_cast<uint32_t>(h % 1000);
}

}  // namespace gasoline::assign
