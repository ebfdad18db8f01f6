// The sender side of descriptor wake-ups (notify() in wait.h calls fire_armed only when the
// WakeBlock counts armed descriptors). SYNC(wait_fd) in wait_descriptor.h has the protocol.
#include "wait.h"
#include "wait_descriptor.h"
#include "shmring/core/detail/wait_files.h"

namespace shmring::detail {

namespace {

// CAS armed_on -> 0: the winner (this notifier, another one, or the endpoint's own disarm) takes
// the armed count down exactly once. Acq_rel: acquire pairs with the endpoint's seq_cst exchange
// that armed it (so the token read after it is the arming endpoint's, or a later owner's: a spare
// wake-up, never a lost one); release orders this before the datagram's send.
bool take_armed(ControlBlock* control, PeerSlot& slot, std::uint32_t armed_on) noexcept {
  std::uint32_t expected = armed_on;
  if (!slot.wait_armed.compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
    return false;
  }
  WakeBlock& wake = armed_on == kArmedOnData ? control->data_wake : control->space_wake;
  wake.waiters.fetch_sub(kArmedUnit, std::memory_order_relaxed);
  return true;
}

}  // namespace

void fire_armed(ChannelSegment& seg, std::uint32_t armed_on) noexcept {
  ControlBlock* control = seg.control();
  PeerSlot* slots = seg.peers();
  for (std::uint32_t i = 0; i < seg.info().max_peers; ++i) {
    PeerSlot& slot = slots[i];
    if (slot.wait_armed.load(std::memory_order_acquire) != armed_on) continue;
    // Disarm first, then send: an endpoint that finds itself disarmed may find the datagram
    // still on its way, but never one that belongs to an arming it has not made yet (it
    // checks its socket before it blocks: WaitDescriptor::prepare_to_block).
    if (!take_armed(control, slot, armed_on)) continue;
    send_wake(seg.file_tag(), load_name(slot.socket_name));  // SYNC(wait_name)
  }
}

void signal_peer(std::uint64_t file_tag, ControlBlock* control, PeerSlot& slot,
                 WaitEvent events) noexcept {
  // Release: the event bits are visible to the endpoint that takes them (acquire exchange).
  slot.wait_events.fetch_or(static_cast<std::uint32_t>(events), std::memory_order_release);
  const std::uint32_t armed = slot.wait_armed.load(std::memory_order_acquire);
  if (armed == 0 || !take_armed(control, slot, armed)) return;
  send_wake(file_tag, load_name(slot.socket_name));  // SYNC(wait_name)
}

void signal_peer(ChannelSegment& seg, PeerSlot& slot, WaitEvent events) noexcept {
  signal_peer(seg.file_tag(), seg.control(), slot, events);
}

void announce_membership(ChannelSegment& seg, PeerRole role) noexcept {
  PeerSlot* slots = seg.peers();
  for (std::uint32_t i = 0; i < seg.info().max_peers; ++i) {
    PeerSlot& slot = slots[i];
    if (&slot == seg.self() || state_of(slot) != PeerState::kActive) continue;
    if (!watches(role_of(slot), role) || slot.wait_armed.load(std::memory_order_relaxed) != 0) continue;
    const RandomId name = load_name(slot.socket_name);  // SYNC(wait_name); empty: no descriptor
    if (!name.empty()) send_wake(seg.file_tag(), name, kMembershipNotice);
  }
}

}  // namespace shmring::detail
