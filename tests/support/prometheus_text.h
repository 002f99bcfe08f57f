#pragma once
// Reading one sample out of a Prometheus text exposition (/metrics), for the tests that scrape the kv or a sidecar.
#include <sstream>
#include <string>

namespace gasoline::testing {

// The value of one series ("name{labels}", exactly as exposed), or `absent` when there is none.
inline double metric(const std::string& text, const std::string& series, double absent = -1) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return absent;
}

}  // namespace gasoline::testing
