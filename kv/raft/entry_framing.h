#pragma once
// How every Raft entry's payload is stored: [u32 LE length][payload][zero pad] to a multiple of 8 bytes, because
// libraft 0.15 cannot load entries of other lengths after a restart (docs/design.md, "libraft 0.15 pitfalls").
// On disk in every replica's log: never change the layout (a new payload format gets a new tag inside the
// payload instead, kv/store/effects.h).
#include <cstddef>
#include <string>
#include <string_view>

namespace gasoline::raft {

std::string frame_entry(const std::string& payload);
// False for a buffer that is not a whole frame; `payload` then is left as it was.
bool unframe_entry(const void* data, size_t len, std::string_view& payload);

}  // namespace gasoline::raft
