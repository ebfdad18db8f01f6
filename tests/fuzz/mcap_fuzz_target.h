// The MCAP reader's fuzz body (shmring::record::McapReader, and the recovery that rewrites what it
// reads): files come from users, so no input may crash it, read outside the bytes it was given,
// or make it allocate without bound. Shared by the libFuzzer target (mcap_fuzzer.cc) and the
// corpus replay in the normal build (McapFuzzTest).
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmring::fuzz {

// Opens the bytes as an MCAP file and reads everything: summary, messages (file and log-time
// order, with a time window and a channel filter, bad chunks skipped or not) and metadata.
void read_mcap(const std::uint8_t* data, std::size_t size);

}  // namespace shmring::fuzz
