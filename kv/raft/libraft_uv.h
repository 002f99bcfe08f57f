#pragma once
// libraft's libuv io and transport (raft_uv_*, and uv.h with them): only the loop shell (raft_log.cc) and the
// transport use these; the raft core stays free of libuv (tests/lint/include_boundaries_test.sh).
#include "kv/raft/libraft.h"

extern "C" {
#include <raft/uv.h>
}
