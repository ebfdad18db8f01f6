// libFuzzer target: record scanning over hostile positions and record bytes.
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  shmring::fuzz::scan_records(data, size);
  return 0;
}
