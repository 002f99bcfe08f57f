#pragma once
// The app API's routes (the JSON is documented in worker/README.md): HTTP requests in, calls into
// the Sidecar, JSON out. Parsing lives in api_parse.h so it can be tested without a server.
#include "common/http_server.h"
#include "worker/metrics.h"
#include "worker/sidecar.h"

namespace gasoline::worker {

class Api {
 public:
  Api(Sidecar& sidecar, Metrics& metrics) : sidecar_(sidecar), metrics_(metrics) {}

  // Every route: the app API on 127.0.0.1.
  void handle(http::Request request, http::Reply reply);
  // Only GET: /healthz, /readyz, /metrics and /drain (the app container's preStop hook): the admin listener
  // reachable from outside the pod.
  void handle_admin(http::Request request, http::Reply reply);

 private:
  bool probes(const http::Request& request, const http::Reply& reply);

  Sidecar& sidecar_;
  Metrics& metrics_;
};

}  // namespace gasoline::worker
