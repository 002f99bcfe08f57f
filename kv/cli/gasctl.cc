// gasctl: the command-line client of gasoline-kv.
#include "common/random_id.h"
#include "common/token_file.h"
#include "kv/cli/bulk_dispatch.h"
#include "kv/cli/view.h"
#include "kv/rpc/client.h"
#include "kv/rpc/protocol.h"
#include "kv/rpc/tls_flags.h"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

using namespace gasoline;
using rpc::Json;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

Json parse_json_arg(const std::string& what, const std::string& text) {
  if (text.empty()) return Json();
  try {
    return Json::parse(text);
  } catch (const std::exception& e) {
    throw std::invalid_argument(what + " is not valid JSON: " + e.what());
  }
}

void print_table(const cli::Rows& rows) { std::cout << cli::format_table(rows); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gasctl: inspect and drive a gasoline-kv cluster"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  gasctl status                              every pool: workers, due, oldest due, workflows by status\n"
      "  gasctl watch shop                          live view of pool shop, refreshed every second (Ctrl-C ends)\n"
      "  gasctl watch shop --once | tee shop.txt    one plain-text frame (also when stdout is not a terminal)\n"
      "  gasctl workers --pool shop                 the ranking and every worker's share\n"
      "  gasctl dispatch --pool shop --name order --input '{\"sku\": \"x\"}'\n"
      "  gasctl list --pool shop --status failed --all -o json\n"
      "  gasctl --kv kv-0:7400,kv-1:7400,kv-2:7400 cluster status\n"
      "Environment: GASOLINE_KV (addresses), GASOLINE_TOKEN_FILE (bearer token file).\n"
      "Run 'gasctl SUBCOMMAND --help' for a subcommand's options.");
  // Global options may also come after the subcommand: `gasctl workers -o json`.
  app.fallthrough();
  std::string kv = env_or("GASOLINE_KV", "127.0.0.1:7400");
  std::string token_file = env_or("GASOLINE_TOKEN_FILE", "");
  std::string output = "table";
  int timeout_ms = 10000;
  bool stale = false;
  app.add_option("--kv", kv, "kv address(es), comma-separated (env GASOLINE_KV)")->capture_default_str();
  app.add_option("--token-file", token_file, "File with the bearer token (env GASOLINE_TOKEN_FILE)");
  rpc::tls::ClientFiles tls_files;
  rpc::tls::add_client_flags(app, tls_files);
  app.add_option("-o,--output", output, "table or json")->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "Per-call timeout")->capture_default_str();
  app.add_flag("--stale", stale, "Read from the replica you reach, without a linearizable barrier on the leader");

  std::string pool, name, input, id, key, body, status, reason, workflow;
  std::vector<std::string> tags;
  int64_t delay_ms = 0;
  size_t limit = 50;

  auto* dispatch = app.add_subcommand("dispatch", "Start a workflow");
  dispatch->add_option("--pool", pool, "Worker pool")->required();
  dispatch->add_option("--name", name, "Workflow name (with --from-file: the default for lines without one)");
  dispatch->add_option("--input", input, "Input as JSON");
  dispatch->add_option("--id", id, "Workflow id (default: generated)");
  dispatch->add_option("--key", key, "Idempotency key: a second dispatch with it returns the first workflow");
  dispatch->add_option("--tag", tags, "Tag key=value (repeatable)");
  dispatch->add_option("--delay-ms", delay_ms, "Start after this delay");
  size_t count = 0, window = 256;
  double rate = 0;
  std::string from_file;
  dispatch->add_option("--count", count, "Dispatch this many (ids <--id or a random prefix>-<n>), pipelined");
  dispatch->add_option("--from-file", from_file, "Dispatch one workflow per line of this file (JSON objects with "
                                                 "the dispatch fields; --pool and --name fill what a line lacks)");
  dispatch->add_option("--rate", rate, "With --count/--from-file: at most this many per second (0 = no limit)");
  dispatch->add_option("--window", window, "With --count/--from-file: dispatches in flight at most")
      ->capture_default_str();
  dispatch->footer(
      "Examples:\n  gasctl dispatch --pool shop --name order --input '{\"sku\": \"x\"}'\n"
      "  gasctl dispatch --pool shop --name noop --count 20000 --rate 2000\n"
      "  gasctl dispatch --pool shop --from-file orders.jsonl");

  auto* signal = app.add_subcommand("signal", "Send a signal to a workflow");
  signal->add_option("workflow", workflow, "Workflow id")->required();
  signal->add_option("--name", name, "Signal name")->required();
  signal->add_option("--body", body, "Body as JSON");

  auto* get = app.add_subcommand("get", "Show one workflow");
  get->add_option("workflow", workflow, "Workflow id")->required();

  auto* list = app.add_subcommand("list", "List workflows of a pool");
  list->add_option("--pool", pool, "Worker pool")->required();
  list->add_option("--status", status, "pending, running, sleeping, waiting, complete, failed or cancelled");
  list->add_option("--limit", limit, "At most this many (one page; the kv caps a page at 10000)")->capture_default_str();
  std::string after;
  bool list_all = false;
  list->add_option("--after", after, "Continue after this workflow id (the last one of the previous page)");
  list->add_flag("--all", list_all, "Every workflow: follows the pages (--limit per page), status by status");

  auto* cancel = app.add_subcommand("cancel", "Cancel a workflow");
  cancel->add_option("workflow", workflow, "Workflow id")->required();
  cancel->add_option("--reason", reason, "Why (stored as the workflow's error)");

  auto* workers = app.add_subcommand("workers", "Show each pool's ranking and every worker's share");
  workers->add_option("--pool", pool, "Only this pool");

  auto* status_cmd = app.add_subcommand(
      "status", "Show the kv's role and applied index, and per pool its workers, due entries, oldest due age, "
                "workflows by status and retention");
  status_cmd->footer("Examples:\n  gasctl status\n  gasctl status -o json | jq '.pools[] | {pool, counts}'");

  bool once = false;
  int interval_ms = 1000;
  auto* watch = app.add_subcommand(
      "watch", "Live view of one pool: throughput, shed rate, due and running counts, wake lag, and every worker's "
               "share, CPU and leases per second; refreshed every --interval-ms until Ctrl-C");
  watch->add_option("pool", pool, "Pool")->required();
  watch->add_flag("--once", once, "Print one plain-text frame and exit (the default when stdout is not a terminal)");
  watch->add_option("--interval-ms", interval_ms, "Refresh interval")->capture_default_str()->check(CLI::Range(100, 60000));
  watch->footer("Rates need two samples: the first frame shows '-'. Counts and shares come from the kv's leader.\n"
                "Examples:\n  gasctl watch shop\n  gasctl watch shop --once");

  std::string retention;
  auto* retention_cmd =
      app.add_subcommand("retention", "Set how long a pool keeps finished workflows (status shows every pool's)");
  retention_cmd->add_option("pool", pool, "Pool")->required();
  retention_cmd->add_option("keep", retention, "Milliseconds, 'forever', or 'default' (the kv's --retention-ms)")
      ->required();

  auto* cluster_cmd = app.add_subcommand("cluster", "Replication: every replica's state, and membership changes");
  cluster_cmd->require_subcommand(1);
  auto* cluster_status = cluster_cmd->add_subcommand("status", "Leader, term and applied index of every replica in --kv");
  uint64_t member_id = 0;
  std::string raft_address, client_address;
  auto* cluster_add = cluster_cmd->add_subcommand("add", "Add a replica (joins as a spare, catches up, becomes a voter)");
  cluster_add->add_option("--id", member_id, "Raft id of the new replica")->required();
  cluster_add->add_option("--raft", raft_address, "Its Raft address host:port")->required();
  cluster_add->add_option("--client", client_address, "Its client address host:port")->required();
  auto* cluster_remove = cluster_cmd->add_subcommand("remove", "Remove a replica from the configuration");
  cluster_remove->add_option("--id", member_id, "Raft id")->required();
  auto* cluster_transfer = cluster_cmd->add_subcommand("transfer", "Hand leadership to another replica");
  cluster_transfer->add_option("--id", member_id, "Raft id (0 = any)")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  try {
    rpc::ClientOptions options;
    options.endpoints = split(kv, ',');
    options.name = "gasctl";
    options.call_timeout = std::chrono::milliseconds(timeout_ms);
    if (!token_file.empty()) options.token = read_token_file(token_file);
    rpc::tls::settle(tls_files);
    options.tls = tls_files;
    rpc::Client client(options);
    rpc::CallOptions retry{std::chrono::milliseconds(timeout_ms), true};
    Json result;

    if (*dispatch && (count > 0 || !from_file.empty())) {
      if (count > 0 && !from_file.empty()) throw std::invalid_argument("give --count or --from-file, not both");
      std::vector<Json> lines;
      if (!from_file.empty()) {
        std::ifstream in(from_file);
        if (!in) throw std::invalid_argument("--from-file: cannot read '" + from_file + "'");
        std::string line;
        for (size_t n = 1; std::getline(in, line); ++n) {
          if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
          Json j = Json::parse(line, nullptr, false);
          if (j.is_discarded() || !j.is_object())
            throw std::invalid_argument("--from-file " + from_file + " line " + std::to_string(n) +
                                        ": not a JSON object");
          lines.push_back(std::move(j));
        }
      } else if (name.empty()) {
        throw std::invalid_argument("--count needs --name");
      }
      // Ids chosen here make every dispatch safe to resend after a lost answer.
      std::string prefix = id.empty() ? random_id("gasctl-") : id;
      Json base_input = parse_json_arg("--input", input);
      size_t total = from_file.empty() ? count : lines.size();
      auto make = [&](size_t i) {
        Json args = from_file.empty() ? Json{{"input", base_input}} : lines[i];
        if (!args.contains("pool")) args["pool"] = pool;
        if (!args.contains("name")) args["name"] = name;
        if (!args.contains("id")) args["id"] = prefix + "-" + std::to_string(i);
        if (delay_ms > 0 && !args.contains("delay_ms") && !args.contains("run_at")) args["delay_ms"] = delay_ms;
        return args;
      };
      cli::BulkOptions bulk;
      bulk.window = window;
      bulk.rate = rate;
      if (::isatty(STDERR_FILENO)) bulk.progress = &std::cerr;
      auto r = cli::dispatch_many(client, total, make, bulk);
      Json summary{{"dispatched", total},
                   {"created", r.created},
                   {"existing", r.existing},
                   {"failed", r.failures.size()},
                   {"seconds", r.seconds},
                   {"per_second", r.seconds > 0 ? static_cast<double>(total) / r.seconds : 0.0},
                   {"id_prefix", prefix}};
      if (output == "json") {
        std::cout << summary.dump(2) << "\n";
      } else {
        std::cout << "dispatched " << total << " (" << r.created << " created, " << r.existing << " existing, "
                  << r.failures.size() << " failed) in " << std::fixed << std::setprecision(1) << r.seconds
                  << " s, " << std::setprecision(0) << summary["per_second"].get<double>() << "/s; ids "
                  << prefix << "-<n>\n";
      }
      for (size_t i = 0; i < std::min<size_t>(10, r.failures.size()); ++i)
        std::cerr << "gasctl: " << r.failures[i] << "\n";
      return r.failures.empty() ? 0 : 2;
    } else if (*dispatch) {
      if (name.empty()) throw std::invalid_argument("dispatch needs --name");
      Json args{{"pool", pool}, {"name", name}, {"input", parse_json_arg("--input", input)}};
      // A generated id makes the retried call idempotent across a lost response.
      if (!id.empty()) args["id"] = id;
      if (!key.empty()) args["idempotency_key"] = key;
      Json t = Json::object();
      for (const auto& kvp : tags) {
        auto eq = kvp.find('=');
        if (eq == std::string::npos) throw std::invalid_argument("--tag '" + kvp + "' must be key=value");
        t[kvp.substr(0, eq)] = kvp.substr(eq + 1);
      }
      args["tags"] = t;
      // A duration: the kv starts it on its leader's clock, so this machine's clock cannot shift it.
      if (delay_ms > 0) args["delay_ms"] = delay_ms;
      result = client.call(rpc::op::kDispatch, args, id.empty() && key.empty() ? rpc::CallOptions{} : retry);
      if (output == "json") {
        std::cout << result.dump(2) << "\n";
      } else {
        std::cout << result.value("id", "") << (result.value("existing", false) ? " (existing)" : "") << "\n";
      }
    } else if (*signal) {
      result = client.call(rpc::op::kSignal, Json{{rpc::arg::kWorkflowId, workflow}, {"name", name}, {"body", parse_json_arg("--body", body)}});
      if (output == "json") {
        std::cout << result.dump(2) << "\n";
      } else {
        std::cout << "signal " << name << " delivered to " << workflow << " (seq " << result.value("seq", 0) << ")\n";
      }
    } else if (*get) {
      result = client.call(rpc::op::kGet, Json{{rpc::arg::kWorkflowId, workflow}, {"stale", stale}}, retry);
      std::cout << result.dump(2) << "\n";
    } else if (*list) {
      // A page is ordered by status, then id, and the cursor is an id: --all pages through one status at a time.
      auto page = [&](const std::string& st, const std::string& from) {
        Json args{{"pool", pool}, {"limit", limit}, {"stale", stale}};
        if (!st.empty()) args["status"] = st;
        if (!from.empty()) args["after"] = from;
        return client.call(rpc::op::kList, args, retry)["workflows"];
      };
      if (!list_all) {
        result = Json{{"workflows", page(status, after)}};
        if (output != "json" && result["workflows"].size() == limit)
          std::cerr << "gasctl: " << limit << " shown; more may follow: --after "
                    << result["workflows"].back().value("id", "") << " (or --all)\n";
      } else {
        if (limit == 0) throw std::invalid_argument("--all needs a --limit (page size) above 0");
        std::vector<std::string> statuses{status};
        if (status.empty())
          statuses = {"pending", "running", "sleeping", "waiting", "complete", "failed", "cancelled"};
        Json all = Json::array();
        for (const auto& st : statuses) {
          std::string from = after;
          while (true) {
            auto got = page(st, from);
            for (auto& w : got) all.push_back(std::move(w));
            if (got.size() < limit) break;
            from = all.back().value("id", "");
          }
        }
        result = Json{{"workflows", std::move(all)}};
      }
      if (output == "json") {
        std::cout << result.dump(2) << "\n";
      } else {
        std::vector<std::vector<std::string>> rows{{"ID", "NAME", "STATUS", "ATTEMPT", "STEPS", "LEASED BY", "ERROR"}};
        for (const auto& w : result["workflows"])
          rows.push_back({w.value("id", ""), w.value("name", ""), w.value("status", ""),
                          std::to_string(w.value("attempt", 0)), std::to_string(w.value("steps", 0)),
                          w.value("lease_worker", ""), w.value("error", "")});
        print_table(rows);
      }
    } else if (*cancel) {
      result = client.call(rpc::op::kCancel, Json{{rpc::arg::kWorkflowId, workflow}, {"reason", reason}}, retry);
      if (output == "json") {
        std::cout << result.dump(2) << "\n";
      } else {
        std::cout << workflow << (result.value("already", false) ? " was already " + result.value("status", "") : " cancelled")
                  << "\n";
      }
    } else if (*workers) {
      Json args{{"stale", stale}};
      if (!pool.empty()) args["pool"] = pool;
      result = client.call(rpc::op::kWorkers, args, retry);
      if (output == "json") {
        std::cout << result.dump(2) << "\n";
      } else {
        std::cout << "strategy: " << result.value("strategy", "") << "\n";
        if (result["pools"].empty())
          std::cout << "\n" << (pool.empty() ? std::string("no pool") : "pool " + pool) << ": 0 active (no worker has pinged)\n";
        for (const auto& p : result["pools"]) {
          std::cout << "\npool " << p.value("pool", "") << ": " << p.value("active", 0) << " active\n";
          std::vector<std::vector<std::string>> rows{
              {"RANK", "WORKER", "POD", "STATE", "LAST PING", "CPU", "FREE", "EXPECTED", "SHARE", "LEASES"}};
          for (const auto& w : p["workers"]) {
            char cpu[16], exp[16], share[16];
            std::snprintf(cpu, sizeof cpu, "%.0f%%", w.value("cpu", 0.0) * 100);
            std::snprintf(exp, sizeof exp, "%.1f%%", w.value("expected_share", 0.0) * 100);
            std::snprintf(share, sizeof share, "%.1f%%", w.value("share", 0.0) * 100);
            int rank = w.value("rank", -1);
            rows.push_back({rank >= 0 ? std::to_string(rank) : "-", w.value("id", ""), w.value("pod", ""),
                            w.value("state", ""), cli::format_age(w.value("last_ping_age_ms", int64_t{-1})), cpu,
                            std::to_string(w.value("free_slots", 0)), exp, share,
                            std::to_string(w.value("leases_granted", 0))});
          }
          print_table(rows);
        }
      }
    } else if (*cluster_status) {
      // Ask every replica itself: a follower's view is part of the answer.
      std::vector<std::vector<std::string>> rows{{"ENDPOINT", "ID", "STATE", "TERM", "LEADER", "RAFT APPLIED", "KV APPLIED"}};
      Json all = Json::array();
      for (const auto& ep : options.endpoints) {
        rpc::ClientOptions one = options;
        one.endpoints = {ep};
        one.call_timeout = std::chrono::milliseconds(std::min(timeout_ms, 2000));
        try {
          rpc::Client c(one);
          auto st = c.call(rpc::op::kStatus, Json::object());
          all.push_back(st);
          const Json& r = st.contains("raft") && st["raft"].is_object() ? st["raft"] : Json::object();
          rows.push_back({ep, std::to_string(r.value("id", 0)), r.value("state", st.value("role", "")),
                          std::to_string(r.value("term", 0)), r.value("leader", st.value("leader", "")),
                          std::to_string(r.value("raft_applied_index", 0)),
                          std::to_string(st.value("applied_index", 0))});
        } catch (const std::exception& e) {
          all.push_back(Json{{"endpoint", ep}, {"error", e.what()}});
          rows.push_back({ep, "-", "unreachable", "-", "-", "-", "-"});
        }
      }
      if (output == "json") {
        std::cout << all.dump(2) << "\n";
      } else {
        print_table(rows);
      }
    } else if (*cluster_add || *cluster_remove || *cluster_transfer) {
      std::string op = *cluster_add ? rpc::op::kClusterAdd : *cluster_remove ? rpc::op::kClusterRemove : rpc::op::kClusterTransfer;
      Json args{{"id", member_id}};
      if (*cluster_add) {
        args["raft_address"] = raft_address;
        args["client_address"] = client_address;
      }
      result = client.call(op, args);
      std::cout << result.dump(2) << "\n";
    } else if (*retention_cmd) {
      int64_t ms = 0;
      if (retention == "forever") {
        ms = 0;
      } else if (retention == "default") {
        ms = -1;
      } else {
        size_t used = 0;
        try {
          ms = std::stoll(retention, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != retention.size() || ms <= 0)
          throw std::invalid_argument("retention: '" + retention + "' is not a positive number of milliseconds, "
                                      "'forever' or 'default'");
      }
      result = client.call(rpc::op::kPoolConfigure, Json{{"pool", pool}, {"retention_ms", ms}});
      std::cout << result.dump(2) << "\n";
    } else if (*status_cmd) {
      result = client.call(rpc::op::kStatus, Json{{"counts", true}}, retry);
      if (output == "json") {
        std::cout << result.dump(2) << "\n";
      } else {
        std::cout << "role: " << result.value("role", "") << "   leader: " << result.value("leader", "")
                  << "   applied index: " << result.value("applied_index", uint64_t{0})
                  << "   strategy: " << result.value("strategy", "") << "\n\n";
        if (result["pools"].empty()) std::cout << "no pool yet\n";
        else print_table(cli::status_rows(result));
      }
    } else if (*watch) {
      // The workers call goes to the leader (a linearizable read, redirected), so the status call that follows on
      // the same client reads the leader's counters too.
      auto sample = [&] {
        cli::PoolSample s;
        s.workers = client.call(rpc::op::kWorkers, Json{{"pool", pool}}, retry);
        s.status = client.call(rpc::op::kStatus, Json{{"counts", true}}, retry);
        s.at_s = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
        return s;
      };
      if (once || !::isatty(STDOUT_FILENO)) {
        std::cout << cli::render_watch(pool, kv, nullptr, sample());
        return 0;
      }
      std::optional<cli::PoolSample> prev;
      auto next = std::chrono::steady_clock::now();
      while (true) {
        std::string frame;
        try {
          auto cur = sample();
          frame = cli::render_watch(pool, kv, prev ? &*prev : nullptr, cur);
          prev = std::move(cur);
        } catch (const std::exception& e) {
          // A person watching through a failover wants the view to carry on, not exit.
          frame = "gasctl watch " + pool + "   kv " + kv + "\n\nkv unreachable: " + e.what() + "\n(retrying)\n";
          prev.reset();
        }
        // Home and clear, then the frame: one write, so the terminal never shows half a frame.
        std::cout << "\x1b[H\x1b[2J" << frame << std::flush;
        // A slow kv (a sample longer than the interval) delays the next frame instead of bunching frames up.
        next = std::max(next + std::chrono::milliseconds(interval_ms), std::chrono::steady_clock::now());
        std::this_thread::sleep_until(next);
      }
    }
    return 0;
  } catch (const rpc::KvError& e) {
    std::cerr << "gasctl: " << e.what() << "\n";
    return e.code() == rpc::code::kNotFound ? 3 : 2;
  } catch (const std::exception& e) {
    std::cerr << "gasctl: " << e.what() << "\n";
    return 2;
  }
}
