#pragma once
// Pinned hashes for work assignment and load shedding.
//
// These values are part of the protocol: the leader and every replica must compute the same
// candidates and shed points, across versions and architectures, so a mixed-version rollout agrees.
// That is why the hash (XXH64, not std::hash or XXH3), the seeds and the exact byte layout are fixed
// here and covered by golden vectors in tests/unit/assign_test.cc. Changing any of them is a protocol
// change, not a refactoring.
#include <cstdint>
#include <string_view>

namespace gasoline::assign {

inline constexpr uint64_t kAssignSeed = 0x6761736f6c696e65ULL;  // "gasoline"
// A separate seed keeps the shed decision uncorrelated with who owns a workflow, so shedding does not
// starve the same worker's share.
inline constexpr uint64_t kShedSeed = 0x7368656464696e67ULL;  // "shedding"

// modulo-next bucket hash: XXH64(8 little-endian bytes of ts, kAssignSeed).
uint64_t hash_ts(int64_t ts);

// rendezvous score: XXH64(u32 LE length of workflow_id ‖ workflow_id ‖ worker_id, kAssignSeed).
// The length prefix keeps ("ab","c") and ("a","bc") apart. Ids longer than 4 GiB are not supported
// (the length would wrap); ids are short names in practice.
uint64_t rendezvous_score(std::string_view workflow_id, std::string_view worker_id);

// Shed point in [0, 999]: XXH64(workflow_id ‖ 8 LE bytes of wake_ts, kShedSeed) % 1000.
// It mixes in the id so same-millisecond wake-ups are shed independently, and the wake ts so the same
// workflow is not starved on every cycle (the original hashed the ts alone).
uint32_t shed_point(std::string_view workflow_id, int64_t wake_ts);

}  // namespace gasoline::assign
