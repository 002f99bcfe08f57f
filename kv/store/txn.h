#pragma once
// A read-your-writes overlay over a read-only view of the state. apply() runs every command of an entry against
// one Txn, so later commands in a group-committed entry see the effects of earlier ones, and the mutations are
// written in one WriteBatch at the end.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace gasoline::store {

using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;  // return false to stop

class Reader {
 public:
  virtual ~Reader() = default;
  virtual std::optional<std::string> get(std::string_view key) const = 0;
  // Visits keys starting with `prefix`, in key order.
  virtual void scan(std::string_view prefix, const ScanFn& fn) const = 0;
};

// nullopt = delete.
using Mutations = std::map<std::string, std::optional<std::string>, std::less<>>;

// An in-memory state, used by pure tests of apply and by snapshot tooling.
class MapReader : public Reader {
 public:
  explicit MapReader(const std::map<std::string, std::string, std::less<>>& data) : data_(data) {}
  std::optional<std::string> get(std::string_view key) const override;
  void scan(std::string_view prefix, const ScanFn& fn) const override;

 private:
  const std::map<std::string, std::string, std::less<>>& data_;
};

class Txn {
 public:
  explicit Txn(const Reader& base) : base_(base) {}
  std::optional<std::string> get(std::string_view key) const;
  void put(std::string key, std::string value) { writes_[std::move(key)] = std::move(value); }
  void del(std::string key) { writes_[std::move(key)] = std::nullopt; }
  // Merges the base view with this transaction's writes.
  void scan(std::string_view prefix, const ScanFn& fn) const;
  const Mutations& mutations() const { return writes_; }
  Mutations take_mutations() { return std::move(writes_); }

 private:
  const Reader& base_;
  Mutations writes_;
};

// Applies mutations to an in-memory state (tests and snapshot restore use it).
void apply_mutations(std::map<std::string, std::string, std::less<>>& data, const Mutations& m);

}  // namespace gasoline::store
