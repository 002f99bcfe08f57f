// gasoline-worker: the sidecar of every worker pod (worker/README.md, docs/design.md "The sidecar").
#include "common/log.h"
#include "common/port_file.h"
#include "common/signals.h"
#include "worker/api.h"
#include "worker/config.h"
#include "worker/cpu.h"
#include "common/http_server.h"
#include "worker/metrics.h"
#include "worker/sidecar.h"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

using namespace gasoline;
using namespace gasoline::worker;

int main(int argc, char** argv) {
  // Taken by one thread with sigwait; the kv client's and cpprestsdk's threads inherit the mask.
  sigset_t signals = block_termination_signals();

  std::optional<Config> config;
  try {
    int exit_code = 0;
    config = parse_config(argc, argv, current_env(), exit_code);
    if (!config) return exit_code;
  } catch (const std::exception& e) {
    std::cerr << "gasoline-worker: " << e.what() << "\n";
    return 2;
  }
  log::init("worker", log::parse_level(config->log_level).value_or(log::Level::kInfo));

  Metrics metrics;
  CpuReaderOptions cpu_options;
  cpu_options.root = config->cgroup_root;
  cpu_options.self_cgroup = read_self_cgroup();
  cpu_options.smoothing_ms = static_cast<double>(config->cpu_smoothing.count());
  cpu_options.app_processes = config->cpu_source == "app";
  cpu_options.proc_root = config->proc_root;
  cpu_options.app_cpu_request_cores = static_cast<double>(config->app_cpu_request_millis) / 1000.0;
  Sidecar sidecar(*config, metrics, CpuReader(cpu_options));
  Api api(sidecar, metrics);

  http::ServerOptions api_options;
  api_options.host = config->api_host;
  api_options.port = config->api_port;
  api_options.max_body = config->max_body;
  std::unique_ptr<http::Server> api_server = http::make_server(
      api_options, [&api](http::Request r, http::Reply reply) { api.handle(std::move(r), std::move(reply)); });
  std::unique_ptr<http::Server> admin_server;
  try {
    api_server->start();
    if (!config->admin_listen.empty()) {
      auto colon = config->admin_listen.rfind(':');
      if (colon == std::string::npos) throw std::invalid_argument("--admin-listen: expected host:port");
      http::ServerOptions admin_options;
      admin_options.host = config->admin_listen.substr(0, colon);
      admin_options.port = std::stoi(config->admin_listen.substr(colon + 1));
      admin_options.max_body = 1024;
      admin_server = http::make_server(admin_options, [&api](http::Request r, http::Reply reply) {
        api.handle_admin(std::move(r), std::move(reply));
      });
      admin_server->start();
    }
    if (!config->port_file.empty()) write_port_file(config->port_file, api_server->port());
  } catch (const std::exception& e) {
    log::error("cannot serve the app API", {{"error", e.what()}, {"port", config->api_port}});
    return 1;
  }
  log::info("app API listening",
            {{"address", config->api_host + ":" + std::to_string(api_server->port())},
             {"admin", admin_server ? config->admin_listen.substr(0, config->admin_listen.rfind(':')) + ":" +
                                          std::to_string(admin_server->port())
                                    : std::string()}});
  std::mutex mu;
  std::condition_variable cv;
  int received = 0;
  std::string fatal;
  sidecar.on_fatal([&](const std::string& message) {
    {
      std::lock_guard lock(mu);
      fatal = message;
    }
    cv.notify_all();
  });
  sidecar.start();

  std::thread signal_thread([&] {
    while (true) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      int n;
      {
        std::lock_guard lock(mu);
        n = ++received;
      }
      cv.notify_all();
      if (n == 1) {
        // With native sidecars the preStop hook of the app (GET /drain) has usually drained already: leave now.
        if (sidecar.drain_finished())
          log::info("signal received after the drain: leaving", {{"signal", sig}});
        else
          log::info("signal received: draining", {{"signal", sig}});
      } else {
        log::warn("second signal: leaving now", {{"signal", sig}});
        sidecar.force();
      }
    }
  });
  signal_thread.detach();  // blocked in sigwait for the life of the process; exit ends it

  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return received > 0 || !fatal.empty(); });
    if (received == 0) {
      // The kv refuses us, so it can be told nothing (no drain, no leave); it reclaims whatever this worker still
      // held after lost_after.
      log::error("gasoline-worker gives up", {{"worker", sidecar.id()}, {"error", fatal}});
      lock.unlock();
      sidecar.shutdown();
      std::fflush(nullptr);
      std::_Exit(2);
    }
  }
  // Starts the drain, or joins the one a /drain request started, or returns at once when that one finished.
  sidecar.drain();
  sidecar.leave();
  sidecar.shutdown();
  // Every waiting request has been answered; a listener that still does not close (a client mid-request) must not
  // keep a terminating pod alive, so the close gets two seconds.
  auto closed = std::make_shared<std::promise<void>>();
  auto closed_future = closed->get_future();
  std::thread([&api_server, &admin_server, closed] {
    if (admin_server) admin_server->stop();
    api_server->stop();
    closed->set_value();
  }).detach();
  if (closed_future.wait_for(std::chrono::seconds(2)) != std::future_status::ready)
    log::warn("the HTTP listeners did not close within 2 s; exiting anyway");
  log::info("gasoline-worker stopped", {{"worker", sidecar.id()}});
  // The detached signal thread and cpprestsdk's static thread pool must not race static destructors: leave without
  // running them. Logs are flushed on every line.
  std::fflush(nullptr);
  std::_Exit(0);
}
