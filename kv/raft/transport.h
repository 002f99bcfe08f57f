#pragma once
// A raft_uv_transport that resolves host names on every connect. libraft 0.15's TCP transport only parses IPv4
// literals, but StatefulSet peers are DNS names (gasoline-kv-0.gasoline-kv.NS.svc:7401) whose IPs change when a
// pod is rescheduled. The handshake a connecting peer sends (its id and address) is ours on both ends:
//   u64 LE version (1) | u64 LE server id | u64 LE address length incl. NUL, padded to 8 | address, NUL, padding
#include "kv/raft/libraft.h"

#include <string>

namespace gasoline::raft {

// Initialises `t` (its impl and callbacks). `bind_address` ("0.0.0.0:7401", or empty to bind to the server's own
// address) is where listen() binds. Release with transport_close() after raft_uv_close().
int transport_init(raft_uv_transport* t, uv_loop_t* loop, const std::string& bind_address);
void transport_close(raft_uv_transport* t);

// Encodes / decodes the handshake (pure; exposed for tests).
std::string encode_handshake(raft_id id, const std::string& address);
// Returns the number of bytes the handshake needs given the first `n` bytes (0 if fewer than 24 are known), or
// SIZE_MAX for an invalid header (wrong version or an address longer than 1 KiB).
size_t handshake_size(const char* data, size_t n);
bool decode_handshake(const char* data, size_t n, raft_id& id, std::string& address);

}  // namespace gasoline::raft
