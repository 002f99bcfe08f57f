#include "kv/raft/peers.h"

#include <stdexcept>

namespace gasoline::raft {

Peer parse_peer(const std::string& spec) {
  auto eq = spec.find('=');
  auto comma = spec.find(',', eq == std::string::npos ? 0 : eq);
  if (eq == std::string::npos || comma == std::string::npos)
    throw std::invalid_argument("peer '" + spec + "' must be ID=RAFT_HOST:PORT,CLIENT_HOST:PORT");
  Peer p;
  try {
    p.id = std::stoull(spec.substr(0, eq));
  } catch (const std::exception&) {
    throw std::invalid_argument("peer '" + spec + "' has a non-numeric id");
  }
  if (p.id == 0) throw std::invalid_argument("peer ids start at 1 (libraft reserves 0)");
  p.raft_address = spec.substr(eq + 1, comma - eq - 1);
  p.client_address = spec.substr(comma + 1);
  if (p.raft_address.find(':') == std::string::npos || p.client_address.find(':') == std::string::npos)
    throw std::invalid_argument("peer '" + spec + "': both addresses must be host:port");
  return p;
}

raft_id raft_id_from_pod_name(const std::string& pod_name) {
  auto dash = pod_name.rfind('-');
  std::string ordinal = dash == std::string::npos ? "" : pod_name.substr(dash + 1);
  if (ordinal.empty() || ordinal.size() > 9 || ordinal.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("pod name '" + pod_name + "' does not end in -<ordinal> (a StatefulSet pod's name)");
  return std::stoull(ordinal) + 1;
}

std::string config_address(const Peer& p) { return p.raft_address + "/" + p.client_address; }

}  // namespace gasoline::raft
