// libFuzzer target: the MCAP reader (shmring record's files) on arbitrary bytes.
#include "mcap_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  shmring::fuzz::read_mcap(data, size);
  return 0;
}
