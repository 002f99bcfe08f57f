#pragma once
// The kv's --credentials-file (kv/rpc/credentials.h for its format), read again when it changes.
#include "kv/rpc/credentials.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace gasoline::rpc {

// A --credentials-file, read again when it changes (checked at most every `check_every`, when asked), so a token
// can be added or revoked without restarting the kv. A file that no longer parses (an edit caught half-written,
// a typo) keeps the previous credentials and is logged, so a bad edit cannot lock every client out.
class CredentialsFile {
 public:
  // Throws std::invalid_argument "--credentials-file PATH: line N: ..." when the file cannot be read or parsed.
  explicit CredentialsFile(std::string path, std::chrono::milliseconds check_every = std::chrono::seconds(1));
  std::shared_ptr<const Credentials> current();
  // Bumps on every reload that took effect; cheap between checks (one clock read).
  uint64_t revision();

 private:
  std::shared_ptr<const Credentials> load() const;  // throws like the constructor
  std::optional<std::filesystem::file_time_type> stamp() const;

  const std::string path_;
  const std::chrono::milliseconds check_every_;
  std::atomic<int64_t> next_check_ns_{0};  // steady clock; before it, current() skips the file system
  std::atomic<uint64_t> revision_{0};
  std::mutex mu_;
  std::shared_ptr<const Credentials> credentials_;
  std::optional<std::filesystem::file_time_type> loaded_stamp_;
};

}  // namespace gasoline::rpc
