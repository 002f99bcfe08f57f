#include "operator/kube/election.h"

#include "common/log.h"

#include <ctime>

namespace gasoline::kube {
namespace {

std::string format_utc(bool micro) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (micro) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
    out += frac;
  }
  return out + "Z";
}

}  // namespace

std::string micro_time_now() { return format_utc(true); }
std::string time_now() { return format_utc(false); }

LeaderElector::LeaderElector(Client& client, ElectionOptions options) : client_(client), options_(std::move(options)) {}

bool LeaderElector::try_acquire_or_renew() {
  using namespace resources;
  auto now = std::chrono::steady_clock::now();
  const int duration_s = static_cast<int>((options_.lease_duration.count() + 999) / 1000);
  auto existing = client_.find(kLeases, options_.ns, options_.name);
  // As client-go: the record's observation time is taken after the read, expiry is judged against `now` taken
  // before it, so a slow read can only make us wait longer, never take a lease early.
  auto observed = std::chrono::steady_clock::now();
  if (!existing) {
    Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", options_.name}, {"namespace", options_.ns}}},
                  {"spec",
                   {{"holderIdentity", options_.identity},
                    {"leaseDurationSeconds", duration_s},
                    {"acquireTime", micro_time_now()},
                    {"renewTime", micro_time_now()},
                    {"leaseTransitions", 0}}}};
    try {
      client_.create(kLeases, options_.ns, lease);
    } catch (const ApiError& e) {
      if (e.conflict()) return false;  // someone created it first
      throw;
    }
    observed_spec_ = lease["spec"];
    observed_at_ = observed;
    return true;
  }
  Json spec = (*existing)["spec"];
  if (spec != observed_spec_) {
    observed_spec_ = spec;
    observed_at_ = observed;
  }
  std::string holder = spec.value("holderIdentity", "");
  int held_for_s = spec.value("leaseDurationSeconds", duration_s);
  bool ours = holder == options_.identity;
  bool expired = holder.empty() || now >= observed_at_ + std::chrono::seconds(held_for_s);
  if (!ours && !expired) return false;

  Json updated = *existing;
  updated["spec"]["holderIdentity"] = options_.identity;
  updated["spec"]["leaseDurationSeconds"] = duration_s;
  updated["spec"]["renewTime"] = micro_time_now();
  if (!ours) {
    updated["spec"]["acquireTime"] = micro_time_now();
    updated["spec"]["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
  }
  try {
    auto after = client_.replace(kLeases, updated);  // carries resourceVersion: a racing writer gets 409
    observed_spec_ = after["spec"];
    observed_at_ = observed;
  } catch (const ApiError& e) {
    if (e.conflict()) return false;
    throw;
  }
  return true;
}

bool LeaderElector::run(const std::function<void()>& on_lead) {
  auto wait = [&](std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stopping_.load(); });
  };
  // Campaign. A renewal counts from when its request was sent, never from when the answer came.
  std::chrono::steady_clock::time_point last_renew;
  for (;;) {
    if (stopping_) return true;
    auto sent = std::chrono::steady_clock::now();
    try {
      bool acquired = try_acquire_or_renew();
      reachable_ = true;
      if (acquired) {
        last_renew = sent;
        break;
      }
    } catch (const std::exception& e) {
      reachable_ = false;
      log::warn("leader election: cannot read or write the lease", {{"error", e.what()}});
    }
    if (!wait(options_.retry_period)) return true;
  }
  leading_ = true;
  if (stopping_) return true;  // acquired while shutting down: the caller releases it, nothing starts
  log::info("became the leader", {{"lease", options_.ns + "/" + options_.name}, {"identity", options_.identity}});
  on_lead();  // must not block: renewals start now
  // Renew; give up when no renewal succeeded within renew_deadline.
  while (wait(options_.retry_period)) {
    bool renewed = false;
    auto sent = std::chrono::steady_clock::now();
    try {
      renewed = try_acquire_or_renew();
      reachable_ = true;
    } catch (const std::exception& e) {
      reachable_ = false;
      log::warn("leader election: renewal failed", {{"error", e.what()}});
    }
    if (renewed) {
      last_renew = sent;
    } else if (std::chrono::steady_clock::now() - last_renew >= options_.renew_deadline) {
      leading_ = false;
      log::error("lost the leader lease", {{"lease", options_.ns + "/" + options_.name}});
      return false;
    }
  }
  return true;
}

void LeaderElector::stop() {
  stopping_ = true;
  cv_.notify_all();
}

void LeaderElector::release() {
  if (!leading_) return;
  try {
    auto existing = client_.find(resources::kLeases, options_.ns, options_.name);
    if (existing && (*existing)["spec"].value("holderIdentity", "") == options_.identity) {
      (*existing)["spec"]["holderIdentity"] = "";
      (*existing)["spec"]["leaseDurationSeconds"] = 1;
      (*existing)["spec"]["renewTime"] = micro_time_now();
      client_.replace(resources::kLeases, *existing);
      log::info("released the leader lease", {{"lease", options_.ns + "/" + options_.name}});
    }
  } catch (const std::exception& e) {
    log::warn("could not release the leader lease; a standby takes over when it expires", {{"error", e.what()}});
  }
  leading_ = false;
}

}  // namespace gasoline::kube
