#include "operator/kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gasoline::kube {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  // An ifstream "reads" a directory as 0 bytes; an empty CA would silently mean the system's roots.
  if (fs::is_directory(p)) throw std::runtime_error(p.string() + " is a directory, not a file");
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// `name-data` (base64 inline) wins over `name` (a file path, relative to the kubeconfig).
std::string data_or_file(const YAML::Node& node, const std::string& name, const fs::path& dir,
                         const std::string& where) {
  if (auto data = node[name + "-data"]) return base64_decode(data.as<std::string>(), where + "." + name + "-data");
  if (auto file = node[name]) {
    fs::path p = file.as<std::string>();
    return read_file(p.is_absolute() ? p : dir / p);
  }
  return "";
}

YAML::Node find_named(const YAML::Node& list, const std::string& name, const std::string& kind,
                      const std::string& path) {
  if (list && list.IsSequence())
    for (const auto& item : list)
      if (item["name"] && item["name"].as<std::string>() == name) return item[kind];
  throw std::runtime_error(path + ": no " + kind + " named '" + name + "'");
}

}  // namespace

std::string base64_decode(const std::string& in, const std::string& what) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    auto v = alphabet.find(c);
    if (v == std::string::npos) throw std::runtime_error(what + " is not valid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Config load_kubeconfig(const std::string& path, const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("kubeconfig " + path + ": " + e.what());
  }
  fs::path dir = fs::absolute(path).parent_path();
  try {
    std::string ctx_name = context;
    if (ctx_name.empty() && root["current-context"]) ctx_name = root["current-context"].as<std::string>();
    if (ctx_name.empty()) throw std::runtime_error(path + ": no current-context and no --context given");
    auto ctx = find_named(root["contexts"], ctx_name, "context", path);
    if (!ctx["cluster"]) throw std::runtime_error(path + ": context '" + ctx_name + "' names no cluster");
    auto cluster = find_named(root["clusters"], ctx["cluster"].as<std::string>(), "cluster", path);
    Config c;
    c.source = "kubeconfig " + path + " (context " + ctx_name + ")";
    if (!cluster["server"]) throw std::runtime_error(path + ": cluster has no server");
    c.server = cluster["server"].as<std::string>();
    c.ca_pem = data_or_file(cluster, "certificate-authority", dir, "cluster");
    if (auto skip = cluster["insecure-skip-tls-verify"]) c.insecure_skip_verify = skip.as<bool>();
    if (ctx["namespace"]) c.ns = ctx["namespace"].as<std::string>();
    if (ctx["user"]) {
      auto user = find_named(root["users"], ctx["user"].as<std::string>(), "user", path);
      if (user) {
        c.client_cert_pem = data_or_file(user, "client-certificate", dir, "user");
        c.client_key_pem = data_or_file(user, "client-key", dir, "user");
        if (user["token"]) c.token = user["token"].as<std::string>();
        if (user["tokenFile"]) {
          fs::path p = user["tokenFile"].as<std::string>();
          c.token_file = (p.is_absolute() ? p : dir / p).string();
        }
        if (user["exec"] || user["auth-provider"])
          throw std::runtime_error(path + ": exec and auth-provider credentials are not supported; use a "
                                          "certificate or a token");
      }
    }
    if (c.client_cert_pem.empty() != c.client_key_pem.empty())
      throw std::runtime_error(path + ": a client certificate needs its key, and the other way round");
    return c;
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("kubeconfig " + path + ": " + e.what());
  }
}

Config in_cluster(const std::string& root) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    throw std::runtime_error("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
  Config c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = "https://" + h + ":" + port;
  c.token_file = root + "/token";
  c.ca_pem = read_file(root + "/ca.crt");
  if (fs::exists(root + "/namespace")) {
    c.ns = read_file(root + "/namespace");
    while (!c.ns.empty() && (c.ns.back() == '\n' || c.ns.back() == ' ')) c.ns.pop_back();
  }
  c.source = "in-cluster service account (" + root + ")";
  return c;
}

Config load_config(const std::string& kubeconfig_flag, const std::string& context) {
  if (!kubeconfig_flag.empty()) return load_kubeconfig(kubeconfig_flag, context);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::string first = env;
    first = first.substr(0, first.find(':'));  // a merged list is not supported; the first file is used
    return load_kubeconfig(first, context);
  }
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST"); host && *host) return in_cluster();
  if (const char* home = std::getenv("HOME")) {
    fs::path p = fs::path(home) / ".kube" / "config";
    if (fs::exists(p)) return load_kubeconfig(p.string(), context);
  }
  throw std::runtime_error("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod");
}

}  // namespace gasoline::kube
