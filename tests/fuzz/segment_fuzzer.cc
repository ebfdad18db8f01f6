// libFuzzer target: segment header validation (read_segment_header, inspect_segment).
#include "channel_fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  shmring::fuzz::segment_header(data, size);
  return 0;
}
