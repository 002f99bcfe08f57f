#pragma once
// libraft 0.15's headers have no extern "C" guards; include them only through this file (and libraft_uv.h). This
// one is libraft's core API without libuv, so the loop-free raft core (kv/raft/raft_core.h) can use it.
extern "C" {
#include <raft.h>
}
