// libFuzzer target: a channel's control block, peer slots and ring under hostile bytes (open,
// recovery, stats, send and receive on a live channel).
#include "channel_fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  shmring::fuzz::channel_control_block(data, size);
  return 0;
}
