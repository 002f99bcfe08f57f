#pragma once
// The sidecar's configuration: flags, with environment variables as the operator's way in, and the
// worker identity, which is new on every start so that a restarted sidecar can never be mistaken for the one that
// held the old leases.
#include "kv/rpc/tls.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gasoline::worker {

struct ShedFlags {
  double start_percent = 50;
  double end_percent = 80;
  uint32_t min_ratio = 100;
};

struct Config {
  std::string pool = "default";
  std::vector<std::string> kv{"127.0.0.1:7400"};
  std::string token_file;
  std::string token;  // read from token_file
  rpc::tls::ClientFiles kv_tls;
  std::string api_host = "127.0.0.1";
  int api_port = 7480;  // 0 = chosen by the OS (see --port-file)
  std::string port_file;
  std::string admin_listen;  // host:port serving /healthz, /readyz and /metrics off loopback (kubelet, Prometheus)
  std::vector<std::string> workflows;  // names served; empty = every name of the pool
  uint32_t concurrency = 32;
  std::chrono::milliseconds ping_interval{500};
  std::chrono::milliseconds fallback_tick{1000};
  ShedFlags shed;
  std::chrono::milliseconds drain_timeout{30000};
  // A drain that no SIGTERM followed within this long is undone (back into the ranking, /readyz 200 again): a pod
  // being deleted gets its SIGTERM within terminationGracePeriodSeconds, so a drain that outlives that bound came
  // from a stray or stuck hook, or from an app that asked to drain and was restarted. 0 = never.
  std::chrono::milliseconds undrain_after{0};
  // Who may call GET /drain on the admin listener besides the pod's loopback: the node (status.hostIP) and any
  // further addresses (api::drain_caller_allowed).
  std::string node_ip;
  std::vector<std::string> drain_allowed_from;
  std::chrono::milliseconds task_timeout{10 * 60 * 1000};
  // Results that could not be committed (kv unreachable) are retried this long. Their number is bounded by the
  // concurrency: a result belongs to a leased task, and the slot stays taken until the kv answers.
  std::chrono::milliseconds result_buffer_ttl{5 * 60 * 1000};
  // The kv refusing our token is a misconfiguration, not an outage: after this long the sidecar exits non-zero so
  // Kubernetes shows CrashLoopBackOff with the message. 0 = never exit.
  std::chrono::milliseconds unauthenticated_exit_after{60000};
  size_t max_body = 8 * 1024 * 1024;
  std::string cgroup_root = "/sys/fs/cgroup";
  std::chrono::milliseconds cpu_smoothing{2000};
  // "cgroup": this container's own cgroup. "app": the app containers' processes through the pod's shared PID
  // namespace, against the app's CPU request (the operator renders both), so shedding sees the CPU the HPA sees.
  std::string cpu_source = "cgroup";
  int64_t app_cpu_request_millis = 0;  // the app container's requests.cpu in millicores (downward API); 0 = none
  std::string proc_root = "/proc";
  std::string version = "0.1.0";
  std::string log_level = "info";

  // Identity.
  std::string id;
  std::string pod;
  std::string pod_uid;
};

// The environment as a map, so identity and env parsing are testable without setenv.
using Env = std::map<std::string, std::string>;
Env current_env();

// "30s", "500ms", "2m", "1h", "1.5s" or a bare number of seconds. nullopt on anything else (negative, garbage).
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

// A worker id: "<pod>-<uid prefix>-<nonce>" inside Kubernetes (POD_NAME, POD_UID from the downward API),
// "<hostname>-<nonce>" outside. Only [A-Za-z0-9._:-], at most 253 characters; the nonce is random per call.
std::string make_worker_id(const Env& env, const std::string& hostname, const std::string& nonce);
std::string random_nonce();

// Parses argv; every flag also reads an environment variable (GASOLINE_*, listed by --help), and flags win.
// Identity comes from `env` (POD_NAME, POD_UID, HOSTNAME). Returns nullopt and sets exit_code when the process
// should exit now (--help, unknown flags). Throws std::invalid_argument naming the flag for invalid values.
std::optional<Config> parse_config(int argc, char** argv, const Env& env, int& exit_code);

}  // namespace gasoline::worker
