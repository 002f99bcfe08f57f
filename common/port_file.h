#pragma once
// The port a server bound (port 0 = chosen by the OS), written where tests and scripts wait for it. The file appears
// whole or not at all (written aside, then renamed), so a reader never sees half a number.
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

namespace gasoline {

inline void write_port_file(const std::string& path, int port) {
  {
    std::ofstream out(path + ".tmp");
    out << port << "\n";
    if (!out) throw std::runtime_error("cannot write the port file '" + path + ".tmp'");
  }
  if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename the port file into '" + path + "'");
}

}  // namespace gasoline
