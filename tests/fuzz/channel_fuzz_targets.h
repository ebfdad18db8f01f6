// Fuzz bodies beyond the rings: the segment header (what every attach reads first) and a channel's
// control block and peer slots (what every endpoint open, recovery and read_stats reads). Shared by
// the libFuzzer targets and the corpus-replay test in the normal build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmring::fuzz {

// The bytes as a segment file's header: read_segment_header on an aligned heap copy, and
// inspect_segment on a memfd holding them. Must report, never crash or read past the bytes.
void segment_header(const std::uint8_t* data, std::size_t size);

// A real queue channel (made once, kept open) whose header (first byte % 3 == 0), counters and
// peer slots (1) or ring (2) are overwritten with the rest of the input; then read_stats, a
// producer and a consumer open (each runs the dead-peer recovery), send, receive and recover,
// and close; then the original bytes are put back. Must report, never crash or hang.
void channel_control_block(const std::uint8_t* data, std::size_t size);

}  // namespace shmring::fuzz
