// A private iox-roudi (iceoryx 2.0's central daemon) for one benchmark run: started with a mempool
// configuration sized for the run, stopped by pid, and the files RouDi 2.0 leaves behind removed.
// Used by the iceoryx transport (iceoryx_transport.cc) and the several-publishers benchmark
// (publishers_iceoryx.cc). Built only when iceoryx is found.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>

#include "absl/status/status.h"

namespace shmring::bench {

class RoudiProcess {
 public:
  RoudiProcess() = default;
  RoudiProcess(const RoudiProcess&) = delete;
  RoudiProcess& operator=(const RoudiProcess&) = delete;
  ~RoudiProcess() { stop(); }

  // Starts iox-roudi with one mempool of `chunks` chunks of `chunk_bytes` (plus a small pool for
  // RouDi's own use) and waits (up to 5 s) until its management socket exists. kUnavailable if a
  // RouDi already runs on this machine (its socket, /tmp/roudi, exists: never a second one), or it
  // exits at start or does not come up.
  absl::Status start(std::size_t chunk_bytes, std::size_t chunks);
  // Stops it (SIGTERM, then SIGKILL after 3 s) and removes what it left behind. Idempotent.
  void stop();

 private:
  void remove_leftovers() const;

  pid_t pid_ = -1;
  std::chrono::system_clock::time_point started_;
  std::string dir_;
};

}  // namespace shmring::bench
