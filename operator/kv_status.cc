#include "operator/kv_status.h"

#include "common/log.h"

#include <sstream>

namespace gasoline::op {

KvStatus::KvStatus(std::string token, rpc::tls::ClientFiles tls, std::chrono::milliseconds interval,
                   OnChange on_change)
    : token_(std::move(token)), tls_(std::move(tls)), interval_(interval), on_change_(std::move(on_change)) {}

KvStatus::~KvStatus() { stop(); }

void KvStatus::start() {
  thread_ = std::thread([this] { run(); });
}

void KvStatus::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KvStatus::watch(const std::string& address) {
  if (address.empty()) return;
  std::lock_guard lock(mu_);
  if (addresses_.insert(address).second) cv_.notify_all();  // poll a new address now, not after the interval
}

std::optional<int> KvStatus::active(const std::string& address, const std::string& pool) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(address);
  if (it == counts_.end() || !it->second) return std::nullopt;
  auto p = it->second->find(pool);
  return p == it->second->end() ? 0 : p->second;  // a reachable kv that never heard of the pool: no workers
}

bool KvStatus::reachable(const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(address);
  return it != counts_.end() && it->second.has_value();
}

void KvStatus::poll(const std::string& address) {
  std::optional<std::map<std::string, int>> now;
  try {
    auto& client = clients_[address];
    if (!client) {
      rpc::ClientOptions o;
      std::stringstream list(address);
      for (std::string ep; std::getline(list, ep, ',');) o.endpoints.push_back(ep);
      o.token = token_;
      o.tls = tls_;
      o.name = "gasoline-operator";
      o.connect_timeout = std::chrono::milliseconds(1000);
      o.call_timeout = std::chrono::milliseconds(3000);
      client = std::make_unique<rpc::Client>(o);
    }
    // A stale read is fine for a status column, and any replica can answer it.
    auto status = client->call("status", rpc::Json{{"stale", true}});
    std::map<std::string, int> counts;
    for (const auto& p : status.value("pools", rpc::Json::array()))
      counts[p.value("pool", "")] = p.value("active_workers", 0);
    now = std::move(counts);
  } catch (const std::exception& e) {
    log::debug("kv status unavailable", {{"kv", address}, {"error", e.what()}});
  }
  std::set<std::string> changed;
  {
    std::lock_guard lock(mu_);
    auto& before = counts_[address];
    auto names = [](const std::optional<std::map<std::string, int>>& m) {
      std::set<std::string> s;
      if (m)
        for (const auto& [k, _] : *m) s.insert(k);
      return s;
    };
    for (const auto& n : names(before)) changed.insert(n);
    for (const auto& n : names(now)) changed.insert(n);
    std::erase_if(changed, [&](const std::string& n) {
      auto get = [&](const auto& m) -> std::optional<int> {
        if (!m) return std::nullopt;
        auto it = m->find(n);
        return it == m->end() ? std::optional<int>(0) : it->second;
      };
      return get(before) == get(now);
    });
    bool reach_changed = before.has_value() != now.has_value();
    before = std::move(now);
    // Reachability flipped: every pool on that kv may need its status updated; "" alone tells the owner "all".
    if (reach_changed) changed = {""};
  }
  for (const auto& pool : changed) on_change_(address, pool);
}

void KvStatus::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto addresses = addresses_;
    lock.unlock();
    for (const auto& a : addresses) poll(a);
    lock.lock();
    cv_.wait_for(lock, interval_, [&] { return stopping_ || addresses_.size() != addresses.size(); });
  }
}

}  // namespace gasoline::op
