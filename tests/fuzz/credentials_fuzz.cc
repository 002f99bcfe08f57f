// libFuzzer target: the kv's credentials file parser (kv/rpc/credentials.h, `gasoline-kv --credentials-file`).
//
// Contract: any bytes either parse or throw std::invalid_argument whose message starts with "line N: " for a line
// N of the input, and never quotes a token. Every parsed credential looks itself up: each line's token finds an
// identity with a role, an admin never also carries a namespace, and a viewer never also writes. Any other exception, a crash or a sanitizer
// report is a finding.
#include "kv/rpc/credentials.h"
#include "tests/fuzz/fuzz_check.h"

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

// The words of a line, by the standard library rather than the parser's own loop. A line with a vertical tab or
// form feed (word separators here, not for the parser) is left out of the checks.
std::vector<std::string> split_ws(std::string_view line) {
  std::string text(line);
  if (text.find_first_of("\v\f") != std::string::npos) return {};
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t lines = 1;
  for (char c : text) lines += c == '\n';
  try {
    auto creds = gasoline::rpc::parse_credentials(text);
    // Every credential line is findable by its token.
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      auto f = split_ws(text.substr(pos, end - pos));
      if (f.size() == 3 && f[0].front() != '#') {
        auto id = creds.find(f[2]);
        CHECK(id.has_value());
        CHECK(id->admin || id->worker || id->client || id->viewer);
        CHECK(!(id->admin && (!id->ns.empty() || id->worker || id->client || id->viewer)));
        CHECK(!(id->viewer && (id->worker || id->client)));  // a read-only token never also writes
        CHECK(id->from_credentials_file);
        CHECK(id->admin || !id->ns.empty());
      }
      if (end == text.size()) break;
      pos = end + 1;
    }
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    CHECK(m.rfind("line ", 0) == 0);
    size_t n = std::stoul(m.substr(5));
    CHECK(n >= 1 && n <= lines);
    // The offending line's token (its third field, 16+ bytes) never appears in the message, unless the role or
    // scope the message quotes contains it.
    size_t pos = 0;
    for (size_t i = 1; i < n; ++i) pos = text.find('\n', pos) + 1;
    auto end = text.find('\n', pos);
    auto f = split_ws(text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (f.size() == 3 && f[2].size() >= gasoline::rpc::kMinTokenBytes && f[0].find(f[2]) == std::string::npos &&
        f[1].find(f[2]) == std::string::npos) {
      // What the message quotes of the role and scope is cut out first: a token that ends like a quoted role
      // ("...er'" after a role "wor...er") would otherwise seem to appear in "role 'wor...er'".
      for (std::string_view quoted : {f[0], f[1]})
        for (size_t at; !quoted.empty() && (at = m.find(quoted)) != std::string::npos;) m.erase(at, quoted.size());
      CHECK(m.find(f[2]) == std::string::npos);
    }
  }
  return 0;
}
