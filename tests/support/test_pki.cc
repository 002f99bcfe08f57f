#include "tests/support/test_pki.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace gasoline::testing {
namespace {

// Runs a shell command, throwing with its output when it fails.
void run(const std::string& command) {
  std::string with_output = command + " 2>&1";
  FILE* pipe = ::popen(with_output.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run: " + command);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  int status = ::pclose(pipe);
  if (status != 0) throw std::runtime_error("'" + command + "' failed (" + std::to_string(status) + "): " + out);
}

}  // namespace

TestPki::TestPki(std::string dir, std::string name)
    : dir_(std::move(dir)), name_(std::move(name)), ca_cert_(dir_ + "/" + name_ + "-ca.crt"),
      ca_key_(dir_ + "/" + name_ + "-ca.key") {
  run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=" + name_ +
      " test CA' -keyout '" + ca_key_ + "' -out '" + ca_cert_ + "'");
}

CertFiles TestPki::issue(const std::string& file_stem, const std::vector<std::string>& sans) const {
  CertFiles f{dir_ + "/" + file_stem + ".crt", dir_ + "/" + file_stem + ".key"};
  std::string csr = dir_ + "/" + file_stem + ".csr", ext = dir_ + "/" + file_stem + ".ext";
  std::string alt;
  for (const auto& s : sans) alt += (alt.empty() ? "" : ",") + s;
  std::ofstream(ext) << "subjectAltName=" << alt << "\nextendedKeyUsage=serverAuth,clientAuth\n";
  run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=" + file_stem + "' -keyout '" +
      f.key + "' -out '" + csr + "'");
  run("openssl x509 -req -days 2 -in '" + csr + "' -CA '" + ca_cert_ + "' -CAkey '" + ca_key_ +
      "' -CAcreateserial -out '" + f.cert + "' -extfile '" + ext + "'");
  return f;
}

}  // namespace gasoline::testing
