// Fuzz body for a service's region (transport/src/service_layout.h): the header, the request
// queue's refs, the server areas (held entries) and the client areas (call states, request
// stamps, response records), under hostile bytes. Shared by the libFuzzer target
// (service_fuzzer.cc) and the corpus-replay test in the normal build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmring::fuzz {

// A real service (made once, kept open by one server and one client, each holding a call) whose
// region part chosen by the first byte (% 4: 0 header, 1 queue, 2 server areas, 3 client areas)
// is overwritten with the rest of the input; then read_service_stats, a server and a client open
// (each runs the dead-peer recovery), send, take, respond, receive, stream, cancel, drop and
// close, and the anchors try their calls; then the original bytes are put back. Must report,
// never crash, hang or touch memory outside the segment.
void service_region(const std::uint8_t* data, std::size_t size);

}  // namespace shmring::fuzz
