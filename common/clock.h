#pragma once
#include <cstdint>

namespace gasoline {

// Wall-clock Unix milliseconds. Only shells read clocks; pure code takes `now` as an argument.
int64_t wall_ms();
// Monotonic milliseconds, for measuring intervals and deadlines inside one process.
int64_t mono_ms();

}  // namespace gasoline
