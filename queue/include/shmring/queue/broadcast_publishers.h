// BroadcastPublishers: the admin handle over a broadcast ring's publisher slots, and the recovery
// of dead writers. A writer that dies after claiming and before committing leaves its claim's bytes
// uncommitted: every reader waits at them. recover() finds such claims (each writer notes what it
// claims in its slot before the claim CAS, SYNC(bcast_attempt)), lists each in the gap table
// (readers then skip it: its sequence number carries no message; `abandoned` counts it) and frees
// the dead writers' slots. Nothing is written into the data area: a writer on the next lap may own
// those bytes already.
//
// Which claim a dead writer left is decided from the claim pair and the other slots:
//  * its noted claim (position p, sequence s, end e) is moot if the claim pair never passed s (its
//    CAS failed, or one publisher handed the claim back), if the ring moved on a whole lap (every
//    reader has passed or lost it), if the record at p is committed, or if the gap table lists it;
//  * it waits (deferred to the next recovery) while a live writer notes the same (p, s): that
//    writer may own it; and when the pair, read before the slots, had not passed s but has by the
//    time the slot was read (the writer claimed in between, then died): the next recovery reads
//    the pair before the slot again and judges it (freeing the slot now would leave the claim
//    neither committed nor listed, and every reader waiting at it);
//  * otherwise its owner is dead; its end is the claim pair's position if s is the last claim, else
//    the one end among the dead writers noting (p, s), confirmed by the claim after it (a slot
//    noting s + 1 there, or a record committed there) when they disagree.
// With several publishers the claim pair only grows, so (p, s) was claimed at most once; with one
// publisher, the next writer opens only after this recovery ran, so s is the last claim.
//
// Threads and processes: recover() runs under the transport's segment lock (one at a time);
// concurrently with live writers and readers. Slot views are racy.
#pragma once

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "shmring/queue/broadcast_layout.h"

namespace shmring {

class BroadcastPublishers {
 public:
  // Codes as BroadcastLayout::map. The region must be writable for recover().
  static absl::StatusOr<BroadcastPublishers> attach(void* region, std::size_t bytes);

  struct View {
    std::uint64_t owner = kSlotFree;  // kSlotFree, kSlotReclaiming or the writer's token
    std::uint32_t id = 0;             // the writer's publisher id
    std::uint64_t published = 0;      // messages it committed
    bool claiming = false;            // it notes a claim in progress
    bool taken() const noexcept { return owner != kSlotFree && owner != kSlotReclaiming; }
  };
  std::uint32_t size() const noexcept { return l_.max_publishers; }
  View slot(std::uint32_t index) const noexcept;

  struct Recovery {
    std::uint32_t freed = 0;      // dead writers' slots freed
    std::uint32_t abandoned = 0;  // claims listed as gaps
    std::uint32_t deferred = 0;   // dead writers kept for the next recovery (see above)
  };
  // Recovers every slot whose owner token `alive(token)` says is gone.
  template <typename Alive>
  Recovery recover(Alive&& alive) noexcept {
    return recover_with(
        [](void* context, std::uint64_t token) { return (*static_cast<Alive*>(context))(token); }, &alive);
  }

  // Dead writers' claims skipped since the ring was created.
  std::uint64_t abandoned() const noexcept { return l_.control->rare.abandoned.load(std::memory_order_relaxed); }
  std::uint64_t claim_sequence_approx() const noexcept;
  std::uint64_t claim_position_approx() const noexcept;

 private:
  BroadcastPublishers() = default;
  Recovery recover_with(bool (*alive)(void*, std::uint64_t), void* context) noexcept;
  BroadcastLayout l_;
};

}  // namespace shmring
