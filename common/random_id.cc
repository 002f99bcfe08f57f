#include "common/random_id.h"

#include <cstdint>
#include <random>

namespace gasoline {

std::string random_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{(static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()};
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  uint64_t a = rng(), b = rng();
  std::string out(prefix);
  for (int i = 0; i < 13; ++i) out.push_back(kAlphabet[(a >> (i * 5)) & 31]);
  for (int i = 0; i < 13; ++i) out.push_back(kAlphabet[(b >> (i * 5)) & 31]);
  return out;
}

}  // namespace gasoline
