#pragma once
// CHECK(cond) for fuzz targets: a failed invariant aborts, which libFuzzer reports as a crash with the input.
#include <cstdio>
#include <cstdlib>

namespace gasoline::fuzz {
[[noreturn]] inline void invariant_failed(const char* what) {
  std::fprintf(stderr, "invariant failed: %s\n", what);
  std::abort();
}
}  // namespace gasoline::fuzz

#define CHECK(cond)                                         \
  do {                                                      \
    if (!(cond)) ::gasoline::fuzz::invariant_failed(#cond); \
  } while (0)
