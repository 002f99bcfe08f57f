#include "kv/raft/entry_framing.h"

#include "common/little_endian.h"

#include <cstdint>

namespace gasoline::raft {

std::string frame_entry(const std::string& payload) {
  std::string out;
  put_le32(out, static_cast<uint32_t>(payload.size()));
  out += payload;
  out.append((8 - out.size() % 8) % 8, '\0');
  return out;
}

bool unframe_entry(const void* data, size_t len, std::string_view& payload) {
  if (len < 4 || len % 8 != 0) return false;
  const char* p = static_cast<const char*>(data);
  uint32_t n = get_le32(p);
  if (static_cast<size_t>(n) + 4 > len) return false;
  payload = std::string_view(p + 4, n);
  return true;
}

}  // namespace gasoline::raft
