// What the bridge loop (bridge.cc) needs from each export server and import client: a step that
// moves what is ready, and what to wait for before the next step.
#pragma once

#include <poll.h>

#include <cstdint>
#include <vector>

#include "shmring/bridge/bridge.h"

namespace shmring::bridge {

// What a side wants the loop to wait for.
struct WaitPlan {
  std::vector<pollfd> fds;
  std::uint64_t deadline_ns = 0;  // CLOCK_MONOTONIC; 0: none
  bool again = false;             // work is left: do not sleep

  void add(int fd) {
    if (fd >= 0) fds.push_back(pollfd{fd, POLLIN, 0});
  }
  void until(std::uint64_t t) {
    if (t != 0 && (deadline_ns == 0 || t < deadline_ns)) deadline_ns = t;
  }
};

class Side {
 public:
  virtual ~Side() = default;
  // Handles what arrived and moves what is ready; never waits.
  virtual void step(std::uint64_t now_ns) = 0;
  virtual void plan_wait(std::uint64_t now_ns, WaitPlan* plan) = 0;
  virtual void append_status(BridgeStatus* status) const = 0;
};

// Bridge log lines (stderr, one per event that an operator wants to see: peers, channels, errors).
void log_event(const std::string& text);

}  // namespace shmring::bridge
