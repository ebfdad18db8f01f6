// ZAP (ZeroMQ's authentication protocol, RFC 27): the handler that accepts or refuses a CURVE
// client by its public key. One handler thread per process serves every server carrier; each
// server registers a ZAP domain with its allow-list.
#pragma once

#include <string>
#include <vector>

namespace shmring::bridge {

// Registers an allow-list of Z85 public keys (empty: any client that completes the CURVE
// handshake) under a fresh domain name, which the server socket sets as its ZMQ_ZAP_DOMAIN.
// Starts the handler on first use.
std::string register_zap_domain(const std::vector<std::string>& authorized_keys);

}  // namespace shmring::bridge
