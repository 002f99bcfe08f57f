#pragma once
// libraft 0.15's headers have no extern "C" guards; include them only through this file.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
