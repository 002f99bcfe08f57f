#pragma once
// OpenSSL's reason for the last failure on this thread (its error queue), cleared once read. Include only from code
// that links OpenSSL (the kv's TLS and the Raft transport do).
#include <openssl/err.h>

#include <string>

namespace gasoline {

inline std::string openssl_error(const std::string& fallback) {
  unsigned long e = ERR_get_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

}  // namespace gasoline
