#include "kv/rpc/credentials_file.h"

#include "common/log.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gasoline::rpc {

CredentialsFile::CredentialsFile(std::string path, std::chrono::milliseconds check_every)
    : path_(std::move(path)), check_every_(check_every) {
  loaded_stamp_ = stamp();
  credentials_ = load();
  next_check_ns_ = (std::chrono::steady_clock::now() + check_every_).time_since_epoch().count();
}

std::optional<std::filesystem::file_time_type> CredentialsFile::stamp() const {
  std::error_code ec;
  auto t = std::filesystem::last_write_time(path_, ec);  // follows a Secret volume's ..data link
  if (ec) return std::nullopt;
  return t;
}

std::shared_ptr<const Credentials> CredentialsFile::load() const {
  std::ifstream in(path_);
  if (!in) throw std::invalid_argument("--credentials-file " + path_ + ": cannot read it");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return std::make_shared<const Credentials>(parse_credentials(text.str()));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("--credentials-file " + path_ + ": " + e.what());
  }
}

std::shared_ptr<const Credentials> CredentialsFile::current() {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (now.time_since_epoch().count() < next_check_ns_) return credentials_;
  next_check_ns_ = (now + check_every_).time_since_epoch().count();
  auto seen = stamp();
  if (seen == loaded_stamp_) return credentials_;
  try {
    credentials_ = load();
    loaded_stamp_ = seen;
    ++revision_;
    log::info("reloaded the credentials file", {{"file", path_}, {"credentials", credentials_->size()}});
  } catch (const std::invalid_argument& e) {
    log::warn("keeping the previous credentials: the file does not parse (retrying)", {{"error", e.what()}});
  }
  return credentials_;
}

uint64_t CredentialsFile::revision() {
  if (std::chrono::steady_clock::now().time_since_epoch().count() >= next_check_ns_) current();
  return revision_;
}

}  // namespace gasoline::rpc
