#pragma once
// Bearer tokens come from files (a mounted Secret or a service-account token), read the same way everywhere.
#include <string>

namespace gasoline {

// The whole file with surrounding whitespace trimmed (a Secret written with `echo` ends in a newline). Throws
// std::runtime_error naming the file when it cannot be read or holds no token.
std::string read_token_file(const std::string& path);

}  // namespace gasoline
