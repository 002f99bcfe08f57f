#include "kv/raft/snapshot.h"

#include "common/little_endian.h"
#include "kv/store/keys.h"

#include <cstring>
#include <memory>

namespace gasoline::raft {
namespace {

constexpr char kMagic[8] = {'G', 'A', 'S', 'N', 'A', 'P', '0', '1'};

}  // namespace

std::optional<std::string> encode_snapshot(const StateScan& scan, size_t cap_bytes, uint64_t& keys,
                                           std::string& error) {
  std::string body;
  keys = 0;
  bool too_big = false;
  auto failed = scan([&](std::string_view key, std::string_view value) {
    put_le32(body, static_cast<uint32_t>(key.size()));
    body.append(key);
    put_le32(body, static_cast<uint32_t>(value.size()));
    body.append(value);
    ++keys;
    too_big = body.size() > cap_bytes;
    return !too_big;
  });
  if (too_big) {
    error = "snapshot exceeds its cap of " + std::to_string(cap_bytes) + " bytes after " + std::to_string(keys) +
            " keys";
    return std::nullopt;
  }
  if (failed) {
    error = "snapshot iteration failed: " + *failed;
    return std::nullopt;
  }
  std::string out(kMagic, 8);
  put_le64(out, keys);
  out += body;
  return out;
}

std::optional<int> snapshot_version(const char* p, size_t len) {
  if (len < 8 || std::memcmp(p, kMagic, 6) != 0) return std::nullopt;
  if (p[6] < '0' || p[6] > '9' || p[7] < '0' || p[7] > '9') return std::nullopt;
  return (p[6] - '0') * 10 + (p[7] - '0');
}

std::optional<DecodedSnapshot> decode_snapshot(const char* p, size_t len) {
  if (len < 16 || std::memcmp(p, kMagic, 8) != 0) return std::nullopt;
  uint64_t count = get_le64(p + 8);
  DecodedSnapshot out;
  size_t off = 16;
  for (uint64_t i = 0; i < count; ++i) {
    if (off + 4 > len) return std::nullopt;
    uint32_t kl = get_le32(p + off);
    off += 4;
    if (off + kl + 4 > len) return std::nullopt;
    std::string key(p + off, kl);
    off += kl;
    uint32_t vl = get_le32(p + off);
    off += 4;
    if (off + vl > len) return std::nullopt;
    std::string value(p + off, vl);
    off += vl;
    if (key == store::keys::applied_index() && value.size() == 8) out.applied_index = store::keys::get_u64(value);
    out.pairs.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace gasoline::raft
