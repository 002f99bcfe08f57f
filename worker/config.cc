#include "worker/config.h"

#include "common/token_file.h"
#include "kv/rpc/tls_flags.h"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace gasoline::worker {

Env current_env() {
  Env env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  std::string number = text.substr(0, i), unit = text.substr(i);
  if (std::count(number.begin(), number.end(), '.') > 1 || number.back() == '.' || number.front() == '.')
    return std::nullopt;
  double value = std::stod(number);
  double scale;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    return std::nullopt;
  }
  double ms = value * scale;
  // Anything beyond a year is a typo, and it keeps the conversion far from overflow.
  if (!std::isfinite(ms) || ms > 365.0 * 24 * 3'600'000) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

std::string random_nonce() {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  std::random_device rd;
  uint64_t bits = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                  static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                  (static_cast<uint64_t>(::getpid()) << 17);
  std::string out;
  for (int i = 0; i < 10; ++i) out.push_back(kAlphabet[(bits >> (i * 5)) & 31]);
  return out;
}

namespace {

// Keys of the kv accept [A-Za-z0-9._:/-]; '/' is left out so an id is also one URL path segment.
std::string sanitize(const std::string& s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
    out.push_back(ok ? c : '-');
  }
  return out;
}

std::string env_or(const Env& env, const std::string& key, const std::string& fallback = "") {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? fallback : it->second;
}

std::chrono::milliseconds duration_flag(const std::string& flag, const std::string& text, bool allow_zero = false) {
  auto d = parse_duration(text);
  if (!d || (!allow_zero && d->count() == 0))
    throw std::invalid_argument(flag + ": '" + text + "' is not a duration (examples: 500ms, 30s, 2m)");
  return *d;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(0, 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

std::string make_worker_id(const Env& env, const std::string& hostname, const std::string& nonce) {
  auto pod = env_or(env, "POD_NAME");
  auto uid = env_or(env, "POD_UID");
  std::string base;
  if (!pod.empty()) {
    base = sanitize(pod, 200);
    std::string short_uid;
    for (char c : uid)
      if (std::isalnum(static_cast<unsigned char>(c)) && short_uid.size() < 8) short_uid.push_back(c);
    if (!short_uid.empty()) base += "-" + short_uid;
  } else {
    base = sanitize(hostname.empty() ? std::string("worker") : hostname, 200);
  }
  return base + "-" + sanitize(nonce, 40);
}

std::optional<Config> parse_config(int argc, char** argv, const Env& env, int& exit_code) {
  Config c;
  CLI::App app{
      "gasoline-worker: the Gasoline sidecar. It pings the kv with the container's CPU and free slots, pulls the "
      "workflows assigned to this pod, serves them to the application on a local HTTP API (127.0.0.1), commits "
      "each step's result under a fenced lease and drains cleanly on SIGTERM. Every flag can also be set through "
      "the environment variable shown next to it; identity comes from POD_NAME and POD_UID (downward API)."};
  // A flag given twice takes the last value, so wrappers can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string kv_list = "127.0.0.1:7400", workflows, ping = "500ms", tick = "1s", drain = "30s", task_timeout = "10m",
              buffer_ttl = "5m", smoothing = "2s", unauthenticated_exit = "60s", undrain_after = "0";
  app.add_option("--pool", c.pool, "Worker pool this sidecar serves")->envname("GASOLINE_POOL")->capture_default_str();
  app.add_option("--kv", kv_list, "kv replicas, comma-separated host:port; 'not leader' redirects are followed")
      ->envname("GASOLINE_KV")
      ->capture_default_str();
  app.add_option("--token-file", c.token_file, "File with the kv's bearer token")->envname("GASOLINE_TOKEN_FILE");
  rpc::tls::add_client_flags(app, c.kv_tls);
  app.add_option("--api-port", c.api_port, "App API port on 127.0.0.1 (0 = chosen by the OS, see --port-file)")
      ->envname("GASOLINE_API_PORT")
      ->capture_default_str();
  app.add_option("--port-file", c.port_file, "Write the app API's port here once it listens (tests, scripts)")
      ->envname("GASOLINE_PORT_FILE");
  app.add_option("--admin-listen", c.admin_listen,
                 "host:port for /healthz, /readyz and /metrics reachable from outside the pod ('' = off)")
      ->envname("GASOLINE_ADMIN_LISTEN");
  app.add_option("--node-ip", c.node_ip,
                 "The node's IP (status.hostIP): GET /drain on the admin listener is accepted from it and from loopback "
                 "only, so only the kubelet's preStop hook can drain this worker")
      ->envname("GASOLINE_NODE_IP");
  std::string drain_allowed_from;
  app.add_option("--drain-allowed-from", drain_allowed_from,
                 "Further IPs allowed to call GET /drain, comma-separated (a CNI that gives host-to-pod traffic "
                 "its bridge's address)")
      ->envname("GASOLINE_DRAIN_ALLOWED_FROM");
  app.add_option("--workflows", workflows, "Workflow names served, comma-separated (empty = all of the pool)")
      ->envname("GASOLINE_WORKFLOWS");
  app.add_option("--concurrency", c.concurrency, "Tasks leased at once, at most (pulls never ask for more)")
      ->envname("GASOLINE_CONCURRENCY")
      ->capture_default_str();
  app.add_option("--ping-interval", ping, "Membership ping interval (the kv's --ping-interval-ms should match)")
      ->envname("GASOLINE_PING_INTERVAL")
      ->capture_default_str();
  app.add_option("--fallback-tick", tick, "Pull this often while the app waits, even without a bump")
      ->envname("GASOLINE_FALLBACK_TICK")
      ->capture_default_str();
  app.add_option("--shed-start", c.shed.start_percent, "CPU % of the allowance where load shedding starts")
      ->envname("GASOLINE_SHED_START")
      ->capture_default_str();
  app.add_option("--shed-end", c.shed.end_percent, "CPU % where shedding reaches its floor")
      ->envname("GASOLINE_SHED_END")
      ->capture_default_str();
  app.add_option("--shed-min-ratio", c.shed.min_ratio, "Per-mille of assigned work still pulled at the floor")
      ->envname("GASOLINE_SHED_MIN_RATIO")
      ->capture_default_str();
  app.add_option("--drain-timeout", drain,
                 "The drain (GET /drain, POST /v1/drain or SIGTERM): how long the tasks the app holds may take")
      ->envname("GASOLINE_DRAIN_TIMEOUT")
      ->capture_default_str();
  app.add_option("--undrain-after", undrain_after,
                 "Undo a drain that no SIGTERM followed within this long, counted from the drain's start (the "
                 "operator renders terminationGracePeriodSeconds + 30s); must exceed --drain-timeout; 0 = never")
      ->envname("GASOLINE_UNDRAIN_AFTER")
      ->capture_default_str();
  app.add_option("--task-timeout", task_timeout,
                 "A task the app holds this long without a result is given back (its lease released)")
      ->envname("GASOLINE_TASK_TIMEOUT")
      ->capture_default_str();
  app.add_option("--result-buffer-ttl", buffer_ttl, "How long a buffered result is retried before it is dropped")
      ->envname("GASOLINE_RESULT_BUFFER_TTL")
      ->capture_default_str();
  app.add_option("--unauthenticated-exit-after", unauthenticated_exit,
                 "Exit non-zero once the kv has refused the token this long (CrashLoopBackOff shows it); 0 = never")
      ->envname("GASOLINE_UNAUTHENTICATED_EXIT_AFTER")
      ->capture_default_str();
  app.add_option("--max-body", c.max_body, "Largest accepted request body in bytes (larger: 413)")
      ->envname("GASOLINE_MAX_BODY")
      ->capture_default_str();
  app.add_option("--cgroup-root", c.cgroup_root, "Where the cgroup filesystem is mounted (v2, v1 or hybrid)")
      ->envname("GASOLINE_CGROUP_ROOT")
      ->capture_default_str();
  app.add_option("--cpu-source", c.cpu_source,
                 "Whose CPU drives load shedding: 'cgroup' (this container) or 'app' (the app containers' processes, "
                 "seen through the pod's shared PID namespace, against --app-cpu-request)")
      ->envname("GASOLINE_CPU_SOURCE")
      ->check(CLI::IsMember({"cgroup", "app"}))
      ->capture_default_str();
  app.add_option("--app-cpu-request", c.app_cpu_request_millis,
                 "The app container's CPU request in millicores (downward API requests.cpu, divisor 1m); 0 = none")
      ->envname("GASOLINE_APP_CPU_REQUEST_MILLI")
      ->capture_default_str();
  app.add_option("--proc-root", c.proc_root, "Where procfs is mounted (--cpu-source app)")->capture_default_str();
  app.add_option("--cpu-smoothing", smoothing, "Time constant of the CPU EMA")
      ->envname("GASOLINE_CPU_SMOOTHING")
      ->capture_default_str();
  app.add_option("--version-label", c.version, "Version reported with each ping")
      ->envname("GASOLINE_VERSION")
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "debug, info, warn or error")
      ->envname("GASOLINE_LOG_LEVEL")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    return std::nullopt;
  }

  rpc::tls::settle(c.kv_tls);
  c.kv = split_list(kv_list);
  if (c.kv.empty()) throw std::invalid_argument("--kv: at least one host:port is needed");
  c.workflows = split_list(workflows);
  c.drain_allowed_from = split_list(drain_allowed_from);
  if (!c.token_file.empty()) {
    try {
      c.token = read_token_file(c.token_file);
    } catch (const std::runtime_error& e) {
      throw std::invalid_argument(std::string("--token-file: ") + e.what());
    }
  }
  if (c.api_port < 0 || c.api_port > 65535) throw std::invalid_argument("--api-port: out of range");
  if (c.concurrency == 0 || c.concurrency > 4096) throw std::invalid_argument("--concurrency: must be 1..4096");
  c.ping_interval = duration_flag("--ping-interval", ping);
  c.fallback_tick = duration_flag("--fallback-tick", tick);
  c.drain_timeout = duration_flag("--drain-timeout", drain, true);
  c.undrain_after = duration_flag("--undrain-after", undrain_after, true);
  if (c.undrain_after.count() > 0 && c.undrain_after <= c.drain_timeout)
    throw std::invalid_argument("--undrain-after: must exceed --drain-timeout (" +
                                std::to_string(c.drain_timeout.count()) +
                                " ms), or be 0: a drain still waiting for the app's tasks is never undone");
  c.task_timeout = duration_flag("--task-timeout", task_timeout);
  c.result_buffer_ttl = duration_flag("--result-buffer-ttl", buffer_ttl);
  c.cpu_smoothing = duration_flag("--cpu-smoothing", smoothing, true);
  c.unauthenticated_exit_after = duration_flag("--unauthenticated-exit-after", unauthenticated_exit, true);
  if (!(c.shed.start_percent >= 0 && c.shed.start_percent < c.shed.end_percent && c.shed.end_percent <= 100) ||
      c.shed.min_ratio > 1000)
    throw std::invalid_argument("--shed-start/--shed-end/--shed-min-ratio: need 0 <= start < end <= 100 and "
                                "min ratio <= 1000");
  if (c.max_body < 1024) throw std::invalid_argument("--max-body: at least 1024 bytes");
  if (c.app_cpu_request_millis < 0) throw std::invalid_argument("--app-cpu-request: must not be negative");

  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  c.pod = env.count("POD_NAME") && !env.at("POD_NAME").empty() ? env.at("POD_NAME") : std::string(host);
  c.pod_uid = env.count("POD_UID") ? env.at("POD_UID") : "";
  c.id = make_worker_id(env, host, random_nonce());
  return c;
}

}  // namespace gasoline::worker
