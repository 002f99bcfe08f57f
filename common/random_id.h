#pragma once
// Random ids: a prefix and 128 random bits as 26 base32 characters (no i, l, o, u), so generated ids sort nowhere in
// particular and never collide in practice. One generator per thread, seeded from the OS.
#include <string>
#include <string_view>

namespace gasoline {

std::string random_id(std::string_view prefix);

}  // namespace gasoline
