#pragma once
// A throwaway certificate authority for TLS tests, made with the real `openssl` command line tool: a CA, and
// certificates it signs for the names and IPs a test dials.
#include <string>
#include <vector>

namespace gasoline::testing {

struct CertFiles {
  std::string cert;
  std::string key;
};

class TestPki {
 public:
  // Creates the CA in `dir` (its files: <name>-ca.crt, <name>-ca.key). Throws with openssl's output on failure.
  TestPki(std::string dir, std::string name);
  const std::string& ca_cert() const { return ca_cert_; }
  // A certificate for `sans` ("DNS:localhost", "IP:127.0.0.1"), server and client use, signed by this CA.
  CertFiles issue(const std::string& file_stem, const std::vector<std::string>& sans) const;

 private:
  std::string dir_;
  std::string name_;
  std::string ca_cert_;
  std::string ca_key_;
};

}  // namespace gasoline::testing
