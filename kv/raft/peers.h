#pragma once
// The replicas of the group as gasoline-kv's flags name them (--raft-peer, --raft-id-from-pod-name), and the
// address libraft stores for each. Pure parsing.
#include "kv/raft/libraft.h"

#include <string>

namespace gasoline::raft {

struct Peer {
  raft_id id = 0;              // stable: the StatefulSet ordinal + 1
  std::string raft_address;    // host:port of the Raft transport (a DNS name is fine)
  std::string client_address;  // host:port clients are redirected to when this peer leads
};
// Parses "ID=RAFT_HOST:PORT,CLIENT_HOST:PORT". Throws std::invalid_argument.
Peer parse_peer(const std::string& spec);
// A StatefulSet pod's Raft id: its ordinal + 1 ("gasoline-kv-2" -> 3), because libraft reserves id 0 and
// Kubernetes cannot do arithmetic in container args. Throws std::invalid_argument without a numeric suffix.
raft_id raft_id_from_pod_name(const std::string& pod_name);

// The address libraft stores for a peer: "raft_addr/client_addr", so every replica learns every other replica's
// client address from the replicated configuration itself. Stored in every replica's log (configuration entries):
// never change the layout.
std::string config_address(const Peer& p);

}  // namespace gasoline::raft
