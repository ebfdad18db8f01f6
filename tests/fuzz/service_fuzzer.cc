// libFuzzer target: a live service's region under hostile bytes (open, recovery, stats, send,
// take, respond, receive).
#include "service_fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  shmring::fuzz::service_region(data, size);
  return 0;
}
