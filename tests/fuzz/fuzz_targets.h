// Fuzz bodies shared by the libFuzzer targets and by the corpus-replay test in the normal build.
// Every body copies the input to an aligned heap buffer first, so AddressSanitizer sees any access
// outside the bytes the ring was given.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmring::fuzz {

// Attaches every ring kind (and every reader kind) to the bytes: must return a status, never crash.
void attach_any_ring(const std::uint8_t* data, std::size_t size);

// Builds a valid ring of the kind chosen by the first byte, overwrites its records (and positions)
// with the input, then reads until the ring reports empty, corrupt or lapped: every record handed
// out must lie inside the region.
void scan_records(const std::uint8_t* data, std::size_t size);

}  // namespace shmring::fuzz
