// libFuzzer target: ring header validation (attach of every ring and reader kind).
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  shmring::fuzz::attach_any_ring(data, size);
  return 0;
}
