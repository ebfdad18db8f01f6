// Built instead of publishers_iceoryx.cc when iceoryx is not installed: the benchmark says so.
#include "publishers_bench.h"

namespace shmring::bench::publishers {
std::unique_ptr<PeerUnderTest> make_iceoryx_peer(std::string* why_not) {
  *why_not = "iceoryx (Debian's iceoryx, libiceoryx-posh-dev) was not found when shmring was built";
  return nullptr;
}
}  // namespace shmring::bench::publishers
