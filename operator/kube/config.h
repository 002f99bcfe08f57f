#pragma once
// Where the API server is and how to authenticate to it: a kubeconfig file out of cluster, the pod's service
// account in cluster (docs/operator.md, "Running it"). Loading is separate from use so tests can feed fixture files.
#include <string>

namespace gasoline::kube {

struct Config {
  std::string server;           // "https://host:port"
  std::string ca_pem;           // trust anchor for the server; empty = the system's roots
  bool insecure_skip_verify = false;
  std::string client_cert_pem;  // client-certificate authentication (kubeconfig)
  std::string client_key_pem;
  std::string token;            // a fixed bearer token (kubeconfig `token`)
  std::string token_file;       // a bearer token re-read every minute: bound service-account tokens rotate
  std::string ns = "default";   // the context's namespace, or the pod's
  std::string source;           // what this came from, for logs and errors
};

// Standard base64 (RFC 4648 §4; padding, CR, LF and spaces skipped). Throws std::runtime_error "<what> is not
// valid base64" on any other character outside the alphabet.
std::string base64_decode(const std::string& in, const std::string& what);

// Parses a kubeconfig. `context` empty = current-context. Relative file paths resolve against the file's
// directory, as kubectl does. Throws std::runtime_error naming the file and the missing or bad field.
Config load_kubeconfig(const std::string& path, const std::string& context = "");

// The service account of the pod: KUBERNETES_SERVICE_HOST/PORT and `root`/{token,ca.crt,namespace}.
Config in_cluster(const std::string& root = "/var/run/secrets/kubernetes.io/serviceaccount");

// The usual order: an explicit --kubeconfig, then $KUBECONFIG, then in-cluster, then ~/.kube/config.
Config load_config(const std::string& kubeconfig_flag, const std::string& context = "");

}  // namespace gasoline::kube
