#include "channel_segment.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "shmring/core/fork_generation.h"
#include "shmring/core/process.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/stable_hash.h"
#include "shmring/core/detail/wait_files.h"

namespace shmring {

namespace detail {

namespace {

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

}  // namespace

absl::StatusOr<ChannelInfo> read_channel_header(const void* base, std::size_t mapped,
                                                std::string_view what) {
  if (base == nullptr || mapped < sizeof(ControlBlock)) {
    return absl::DataLossError(cat(what, ": segment of ", mapped,
                                            " bytes is too small for a channel control block"));
  }
  const auto* header = static_cast<const ChannelHeader*>(base);
  // SYNC(channel_ready): pairs with the creator's release store of kReady in initialise_locked();
  // every other header field was written before it.
  const std::uint32_t state = header->state.load(std::memory_order_acquire);
  if (state != static_cast<std::uint32_t>(ChannelState::kReady)) {
    if (state == static_cast<std::uint32_t>(ChannelState::kInitialising)) {
      return absl::UnavailableError(cat(what, ": channel is still being created"));
    }
    return absl::DataLossError(cat(what, ": bad channel state ", state));
  }
  ChannelHeader copy;  // one read of every field; only the copy is used below
  std::memcpy(static_cast<void*>(&copy), static_cast<const void*>(header), sizeof(copy));
  if (copy.magic != kChannelMagic) {
    return absl::DataLossError(cat(what, ": not a channel (bad magic)"));
  }
  if (copy.version != kChannelLayoutVersion) {
    return absl::FailedPreconditionError(cat(what, ": channel layout version ", copy.version,
                                                      ", this build speaks ", kChannelLayoutVersion));
  }
  if (to_string(static_cast<ChannelKind>(copy.kind)) == "unknown") {
    return absl::DataLossError(cat(what, ": unknown channel kind ", copy.kind));
  }
  if (copy.max_peers == 0 || copy.max_peers > kMaxPeers || copy.name_length > kMaxChannelName ||
      copy.ring_offset != ring_offset_for(copy.max_peers) || copy.ring_bytes == 0 ||
      copy.ring_bytes > mapped || copy.ring_offset > mapped - copy.ring_bytes ||
      copy.total_bytes != copy.ring_offset + copy.ring_bytes || copy.total_bytes > mapped ||
      copy.capacity == 0 || copy.max_message == 0) {
    return absl::DataLossError(cat(
        what, ": inconsistent channel header (max_peers ", copy.max_peers, ", ring offset ",
        copy.ring_offset, ", ring bytes ", copy.ring_bytes, ", total ", copy.total_bytes,
        ", mapped ", mapped, ")"));
  }
  ChannelInfo info;
  info.kind = static_cast<ChannelKind>(copy.kind);
  info.flags = copy.flags;
  info.max_peers = copy.max_peers;
  info.capacity = copy.capacity;
  info.max_message = copy.max_message;
  info.ring_offset = copy.ring_offset;
  info.ring_bytes = copy.ring_bytes;
  info.total_bytes = copy.total_bytes;
  info.created_unix_ns = copy.created_unix_ns;
  info.liveness_id.words[0] = copy.liveness_id[0];
  info.liveness_id.words[1] = copy.liveness_id[1];
  info.name.assign(copy.name, copy.name_length);
  return info;
}

namespace {

// Opportunistic cleanup: a channel whose every user was killed leaves its file (and lock) in
// /dev/shm until someone opens that name again or runs `shmring gc`. Every channel open also
// removes a few stale channel segments of the same directory: at most kSweepFiles files looked
// at, at most once per kSweepIntervalNs per process. Only segments with no live attachment go
// (the check and the removal are under the segment's exclusive lock, the same in every PID
// namespace); a segment in use, or a file that is not a shmring segment, is left alone.
constexpr std::size_t kSweepFiles = 16;
constexpr std::uint64_t kSweepIntervalNs = 5'000'000'000;
std::atomic<std::uint64_t> g_last_sweep_ns{0};

void sweep_stale_channels() noexcept {
  const std::uint64_t now = monotonic_ns();
  std::uint64_t last = g_last_sweep_ns.load(std::memory_order_relaxed);
  if (last != 0 && now - last < kSweepIntervalNs) return;
  // One thread of the process sweeps per interval (relaxed: only the timestamp is shared).
  if (!g_last_sweep_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  collect_some_stale_segments(kSweepFiles, kDefaultSegmentDirectory,
                              cat(kSegmentNamePrefix, kChannelKeyPrefix));
  try {
    // Lifelines, wake-up sockets and liveness files of channels whose endpoints all died.
    shmring::collect_stale_wait_files(false);
  } catch (...) {  // best effort, like the segment sweep
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChannelSegment>> ChannelSegment::open(std::string_view name,
                                                                    const ChannelSpec& spec) {
  if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
  const std::string what = cat("channel '", name, "'");
  const std::uint64_t capacity = spec.capacity != 0 ? spec.capacity : spec.default_capacity;
  const std::uint64_t max_message =
      spec.max_message != 0 ? spec.max_message : spec.default_max_message;
  const std::uint32_t max_peers = spec.max_peers != 0 ? spec.max_peers : spec.default_max_peers;
  if (max_peers > kMaxPeers) {
    return absl::InvalidArgumentError(
        cat(what, ": max_peers ", max_peers, " exceeds ", kMaxPeers));
  }
  const bool create = spec.create && !spec.read_only;
  const std::uint64_t ring_bytes = spec.ring_bytes(capacity, max_message);
  if (create && ring_bytes == 0) {
    return absl::InvalidArgumentError(cat(what, ": capacity ", capacity,
                                                   " / max_message ", max_message, " are invalid"));
  }
  const std::uint64_t total = ring_offset_for(max_peers) + ring_bytes;

  std::unique_ptr<ChannelSegment> seg(new ChannelSegment());
  seg->fork_generation_ = fork_generation();
  seg->read_only_ = spec.read_only;
  const AccessMode mode = spec.read_only ? AccessMode::kReadOnly : AccessMode::kReadWrite;
  seg->memory_.set_key(channel_key(name));
  seg->file_tag_ = stable_hash64(seg->memory_.native_key());
  seg->memory_.set_permissions(spec.permissions);
  seg->memory_.set_group(spec.group);
  // Never use a look-alike another user made first (or a segment looser than asked for).
  seg->memory_.set_trust({/*any_owner=*/false, spec.trusted_owners, spec.permissions & 0777});
  const std::uint64_t deadline =
      monotonic_ns() + static_cast<std::uint64_t>(spec.open_timeout.count()) * 1'000'000ULL;
  bool created = false;
  for (;;) {
    if (create) {
      if (seg->memory_.create(total, AccessMode::kReadWrite)) {
        created = true;
        break;
      }
      if (seg->memory_.error() != SharedMemoryError::kAlreadyExists) return seg->memory_.status();
    }
    if (seg->memory_.attach(mode)) break;
    // A channel whose endpoints all died (attach found it stale and removed it, or it is gone):
    // what they left goes too (each file only if stale).
    if (seg->memory_.error() == SharedMemoryError::kNotFound && !spec.read_only) {
      seg->collect_companions();
    }
    // Lost a race with the last endpoint detaching: create again.
    if (!create || seg->memory_.error() != SharedMemoryError::kNotFound ||
        monotonic_ns() > deadline) {
      return seg->memory_.status();
    }
  }
  seg->control_ = static_cast<ControlBlock*>(seg->memory_.data());

  if (created) {
    // A new incarnation: an earlier one may have been reclaimed as stale by create(); what its
    // dead endpoints left goes now.
    seg->collect_companions();
    // Bounded like every other wait in open(): only a process that attached in the instant after
    // create() can hold the lock, but a stuck one must not hang the creator.
    if (!seg->memory_.try_lock_for(std::max<std::int64_t>(1, spec.open_timeout.count()))) {
      return seg->memory_.status();
    }
    absl::Status s = seg->initialise_locked(spec, capacity, max_message, max_peers);
    seg->memory_.unlock();
    if (!s.ok()) return s;
  }
  // Wait for the creator (or take over from a creator that died while initialising).
  absl::StatusOr<ChannelInfo> info;
  for (;;) {
    info = read_channel_header(seg->memory_.data(), seg->memory_.size(), what);
    if (info.ok() || info.status().code() != absl::StatusCode::kUnavailable) break;
    if (!spec.read_only && seg->memory_.try_lock_for(1)) {
      const bool creator_died = seg->memory_.previous_owner_died();
      absl::Status s = absl::OkStatus();
      if (creator_died && seg->control_->header.state.load(std::memory_order_acquire) !=
                              static_cast<std::uint32_t>(ChannelState::kReady)) {
        if (total <= seg->memory_.size()) {
          s = seg->initialise_locked(spec, capacity, max_message, max_peers);
        }
      }
      seg->memory_.unlock();
      if (!s.ok()) return s;
    }
    if (monotonic_ns() > deadline) {
      return absl::DeadlineExceededError(
          cat(what, ": its creator did not finish initialising within ",
                       spec.open_timeout.count(), " ms"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!info.ok()) return info.status();
  seg->info_ = *std::move(info);
  const ChannelInfo& i = seg->info_;
  auto mismatch = [&](std::string_view field, auto have, auto want) {
    return absl::FailedPreconditionError(cat(what, ": ", field, " is ", have,
                                                      " in the channel but ", want, " was asked"));
  };
  if (i.kind != spec.kind) {
    return mismatch("kind", to_string(i.kind), to_string(spec.kind));
  }
  if (spec.check_flags && i.flags != spec.flags) {
    return mismatch("lossless", (i.flags & kChannelLossless) != 0, (spec.flags & kChannelLossless) != 0);
  }
  if (spec.capacity != 0 && i.capacity != spec.capacity) {
    return mismatch("capacity", i.capacity, spec.capacity);
  }
  if (spec.max_message != 0 && i.max_message != spec.max_message) {
    return mismatch("max_message", i.max_message, spec.max_message);
  }
  if (spec.max_peers != 0 && i.max_peers != spec.max_peers) {
    return mismatch("max_peers", i.max_peers, spec.max_peers);
  }
  seg->channel_id_ = stable_hash64(seg->memory_.native_key(),
                                   static_cast<std::uint64_t>(seg->info_.created_unix_ns));
  if (!spec.read_only && !seg->liveness_.is_open()) {
    // Endpoints that register hold their liveness lock there; it must be the segment owner's file.
    struct stat st {};
    if (fstat(seg->memory_.fd(), &st) != 0) {
      return absl::InternalError(cat(what, ": cannot stat its segment: ", std::strerror(errno)));
    }
    absl::StatusOr<LivenessFile> liveness =
        LivenessFile::open(seg->file_tag_, i.liveness_id, st.st_uid, true);
    if (!liveness.ok()) {
      return absl::Status(liveness.status().code(),
                          cat(what, ": its liveness file: ", std::string(liveness.status().message())));
    }
    seg->liveness_ = *std::move(liveness);
  }
  sweep_stale_channels();
  prepare_wake_sender();
  return seg;
}

absl::Status ChannelSegment::initialise_locked(const ChannelSpec& spec, std::uint64_t capacity,
                                               std::uint64_t max_message, std::uint32_t max_peers) {
  const std::string key = memory_.key();
  const std::string_view name = key;
  const std::uint64_t ring_offset = ring_offset_for(max_peers);
  const std::uint64_t ring_bytes = spec.ring_bytes(capacity, max_message);
  // Zero everything we own (a creator that died half-way may have left bytes behind).
  std::memset(static_cast<void*>(control_), 0, ring_offset);
  std::byte* ring = reinterpret_cast<std::byte*>(control_) + ring_offset;
  if (absl::Status s = spec.ring->create(ring, ring_bytes, capacity, max_message, spec.shape); !s.ok()) return s;
  ChannelHeader& h = control_->header;
  h.magic = kChannelMagic;
  h.version = kChannelLayoutVersion;
  h.kind = static_cast<std::uint32_t>(spec.kind);
  h.flags = spec.flags;
  h.max_peers = max_peers;
  const std::string_view channel_name = name.substr(kChannelKeyPrefix.size());
  h.name_length = static_cast<std::uint32_t>(channel_name.size());
  std::memcpy(h.name, channel_name.data(), channel_name.size());
  h.capacity = capacity;
  h.max_message = max_message;
  h.ring_offset = ring_offset;
  h.ring_bytes = ring_bytes;
  h.total_bytes = ring_offset + ring_bytes;
  h.created_unix_ns = realtime_ns();
  control_->misc.next_token.store(1, std::memory_order_relaxed);
  // The liveness file, under a random name only this header tells (nobody can make it first).
  absl::StatusOr<LivenessFile> liveness = absl::UnknownError("");
  RandomId liveness_id;
  for (int attempt = 0; attempt < 8; ++attempt) {
    liveness_id = random_id();
    liveness = LivenessFile::create(file_tag_, liveness_id, spec.permissions, spec.group);
    if (liveness.ok() || !absl::IsAlreadyExists(liveness.status())) break;
  }
  if (!liveness.ok()) {
    return absl::Status(liveness.status().code(),
                        cat("channel '", channel_name, "': cannot make its liveness file: ",
                            std::string(liveness.status().message())));
  }
  liveness_ = *std::move(liveness);
  h.liveness_id[0] = liveness_id.words[0];
  h.liveness_id[1] = liveness_id.words[1];
  // SYNC(channel_ready): publishes every field above and the ring.
  h.state.store(static_cast<std::uint32_t>(ChannelState::kReady), std::memory_order_release);
  return absl::OkStatus();
}

void ChannelSegment::collect_companions() noexcept {
  collect_stale_wait_files_of(file_tag_);
  try {
    collect_stale_liveness_files(file_tag_, false);
  } catch (...) {  // best effort: gc and the sweeps get what is left
  }
}

ChannelSegment::~ChannelSegment() {
  if (self_ != nullptr && owned_here() && memory_.is_attached()) {
    if (lock_for(kCloseLockTimeoutMs)) {
      unregister_locked();
      unlock();
    } else {
      leave_to_recovery();
    }
  }
  close_lifeline(lifeline_fd_);  // watchers see it hang up: "peer gone"
  lifeline_fd_ = -1;
  if (owned_here() && memory_.is_attached() && !read_only_) {
    // The last one out (the segment's name is gone once it detaches) clears the wait files that
    // its dead peers left (their recovery never ran).
    const std::string path = cat(kDefaultSegmentDirectory, "/", memory_.native_key());
    memory_.detach();
    struct stat st{};
    if (stat(path.c_str(), &st) != 0 && errno == ENOENT) {
      // The channel's name is gone (this was its last endpoint, or it was removed): what its dead
      // peers left, of this incarnation or of earlier ones, goes now (each file only if stale).
      liveness_ = LivenessFile();  // this endpoint's locks first
      collect_companions();
    }
  }
  // memory_'s destructor detaches (a forked child's copy only unmaps).
}

void ChannelSegment::leave_to_recovery() noexcept {
  if (self_ == nullptr) return;
  // No lock needed: recoveries change only kActive slots of dead processes (not this one) and
  // kDeadPending ones. The CAS fails only if a recovery already took the slot (this endpoint was
  // taken for dead): then there is nothing left to do.
  const PeerCounters mine = counters_of(*self_);
  std::uint32_t active = static_cast<std::uint32_t>(PeerState::kActive);
  if (self_->token.load(std::memory_order_relaxed) == self_token_ &&
      self_->state.compare_exchange_strong(active, static_cast<std::uint32_t>(PeerState::kDeadPending),
                                           std::memory_order_seq_cst, std::memory_order_relaxed)) {
    retire_counters(control_, mine);
    // SYNC(recovery_hint): after the slot's CAS, both seq_cst (see QueueRecovery::run_locked).
    control_->misc.recovery_hint.store(1, std::memory_order_seq_cst);
  }
  liveness_.release(self_index_);  // as a dead process's would be
  self_ = nullptr;
}


bool ChannelSegment::lock_for(std::int64_t ms) noexcept {
  if (ms <= 0) return memory_.try_lock_for(0);
  return memory_.try_lock_for(ms);
}

void ChannelSegment::unlock() noexcept { memory_.unlock(); }

absl::Status ChannelSegment::register_locked(PeerRole role, std::uint32_t flags) {
  const ProcessIdentity me = current_process();
  PeerSlot* slots = peers();
  for (std::uint32_t i = 0; i < info_.max_peers; ++i) {
    PeerSlot& s = slots[i];
    if (s.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(PeerState::kFree)) {
      continue;
    }
    // The slot's liveness lock: held for as long as this endpoint lives (its attachment drops it
    // when the process dies). A free slot whose lock someone still holds is skipped.
    if (!liveness_.hold(i)) continue;
    const std::uint64_t token = control_->misc.next_token.fetch_add(1, std::memory_order_relaxed);
    s.role.store(static_cast<std::uint32_t>(role), std::memory_order_relaxed);
    s.token.store(token, std::memory_order_relaxed);
    s.pid.store(me.pid, std::memory_order_relaxed);
    s.peer_flags.store(flags, std::memory_order_relaxed);
    s.start_time.store(me.start_time, std::memory_order_relaxed);
    s.heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
    s.sent.store(0, std::memory_order_relaxed);
    s.received.store(0, std::memory_order_relaxed);
    s.lost.store(0, std::memory_order_relaxed);
    s.blocked_ns.store(0, std::memory_order_relaxed);
    s.op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_relaxed);
    s.claim_barrier_set.store(0, std::memory_order_relaxed);
    s.op_ticket.store(0, std::memory_order_relaxed);
    s.claim_barrier.store(0, std::memory_order_relaxed);
    s.position.store(0, std::memory_order_relaxed);
    s.reader_slot.store(0, std::memory_order_relaxed);
    s.pinned_buffer.store(0, std::memory_order_relaxed);
    s.wait_armed.store(0, std::memory_order_relaxed);
    s.wait_events.store(0, std::memory_order_relaxed);
    s.uid.store(static_cast<std::uint32_t>(geteuid()), std::memory_order_relaxed);
    clear_name(s.lifeline_name);
    clear_name(s.socket_name);
    s.upstream_link.store(0, std::memory_order_relaxed);
    std::memset(s.upstream_from, 0, sizeof(s.upstream_from));
    std::memset(s.pattern_reserved, 0, sizeof(s.pattern_reserved));
    // SYNC(peer_slot): publishes the identity above to slot readers (acquire of state).
    s.state.store(static_cast<std::uint32_t>(PeerState::kActive), std::memory_order_release);
    self_ = &s;
    self_index_ = i;
    self_token_ = token;
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(cat("channel '", info_.name, "': all ",
                                                   info_.max_peers, " peer slots are taken"));
}

PeerCounters counters_of(const PeerSlot& slot) noexcept {
  return {slot.sent.load(std::memory_order_relaxed), slot.received.load(std::memory_order_relaxed),
          slot.lost.load(std::memory_order_relaxed), slot.blocked_ns.load(std::memory_order_relaxed)};
}

void retire_counters(ControlBlock* control, const PeerCounters& counters) noexcept {
  ChannelCounters& c = control->counters;
  c.retired_sent.fetch_add(counters.sent, std::memory_order_relaxed);
  c.retired_received.fetch_add(counters.received, std::memory_order_relaxed);
  c.retired_lost.fetch_add(counters.lost, std::memory_order_relaxed);
  c.retired_blocked_ns.fetch_add(counters.blocked_ns, std::memory_order_relaxed);
}

void fold_counters_locked(ControlBlock* control, const PeerSlot& slot) noexcept {
  retire_counters(control, counters_of(slot));
}

void ChannelSegment::unregister_locked() noexcept {
  if (self_ == nullptr) return;
  // Only if the slot is still ours: had it been reclaimed (we were taken for dead) and reused, it
  // belongs to someone else now.
  if (owns_slot_locked()) {
    fold_counters_locked(control_, *self_);
    free_slot_locked(*self_);
  }
  liveness_.release(self_index_);
  self_ = nullptr;
}

bool ChannelSegment::owns_slot_locked() const noexcept {
  return self_ != nullptr &&
         self_->state.load(std::memory_order_acquire) ==
             static_cast<std::uint32_t>(PeerState::kActive) &&
         self_->token.load(std::memory_order_relaxed) == self_token_;
}

void disarm_slot(ControlBlock* control, PeerSlot& slot) noexcept {
  const std::uint32_t armed = slot.wait_armed.exchange(0, std::memory_order_acq_rel);
  if (armed == kArmedOnData) control->data_wake.waiters.fetch_sub(kArmedUnit, std::memory_order_relaxed);
  if (armed == kArmedOnSpace) control->space_wake.waiters.fetch_sub(kArmedUnit, std::memory_order_relaxed);
}

mode_t ChannelSegment::file_mode() const noexcept {
  struct stat st{};
  if (memory_.fd() < 0 || fstat(memory_.fd(), &st) != 0) return 0600;
  return st.st_mode & 0777;
}

absl::Status ChannelSegment::create_lifeline() noexcept {
  if (self_ == nullptr || lifeline_fd_ >= 0) return absl::OkStatus();
  RandomId name;
  lifeline_fd_ = detail::create_lifeline(file_tag_, file_mode(), &name);
  if (lifeline_fd_ < 0) {
    const int saved = errno;
    try {
      return absl::ResourceExhaustedError(cat("channel '", info_.name,
                                              "': cannot make this endpoint's lifeline: ",
                                              std::strerror(saved)));
    } catch (...) {
      return absl::ResourceExhaustedError("cannot make a lifeline");
    }
  }
  publish_name(self_->lifeline_name, name);  // SYNC(wait_name)
  return absl::OkStatus();
}

void ChannelSegment::free_slot_locked(PeerSlot& slot) noexcept {
  disarm_slot(control_, slot);
  slot.wait_events.store(0, std::memory_order_relaxed);
  remove_wait_file(kLifelinePrefix, file_tag_, load_name(slot.lifeline_name));
  remove_wait_file(kWaitSocketPrefix, file_tag_, load_name(slot.socket_name));
  clear_name(slot.lifeline_name);
  clear_name(slot.socket_name);
  slot.op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_relaxed);
  slot.role.store(static_cast<std::uint32_t>(PeerRole::kNone), std::memory_order_relaxed);
  slot.state.store(static_cast<std::uint32_t>(PeerState::kFree), std::memory_order_release);
}

std::uint32_t ChannelSegment::mark_dead_locked() noexcept {
  std::uint32_t found = 0;
  PeerSlot* slots = peers();
  for (std::uint32_t i = 0; i < info_.max_peers; ++i) {
    PeerSlot& s = slots[i];
    if (&s == self_) continue;
    if (s.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(PeerState::kActive)) {
      continue;
    }
    if (peer_alive(i, s)) continue;
    fold_counters_locked(control_, s);
    s.state.store(static_cast<std::uint32_t>(PeerState::kDeadPending), std::memory_order_release);
    control_->counters.peers_reclaimed.fetch_add(1, std::memory_order_relaxed);
    ++found;
  }
  return found;
}

bool ChannelSegment::peer_alive(std::uint32_t index, const PeerSlot& slot) const noexcept {
  return peer_alive_in(liveness_, index, slot);
}

bool peer_alive_in(const LivenessFile& liveness, std::uint32_t index, const PeerSlot& slot) noexcept {
  switch (liveness.state_of(index)) {
    case LivenessFile::State::kHeld: return true;
    case LivenessFile::State::kFree: return false;
    case LivenessFile::State::kUnknown: break;
  }
  // The kernel could not be asked: judge by (pid, start time), which holds in one PID namespace.
  const ProcessIdentity who{slot.pid.load(std::memory_order_relaxed),
                            slot.start_time.load(std::memory_order_relaxed)};
  return who.pid > 0 && is_alive(who);
}

void ChannelSegment::protect_ring_read_only() noexcept {
  // The ring starts on a page; its last page may be partial (and then the mapping may end with
  // it), so fall back to the whole pages.
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::size_t len = align_up(info_.ring_bytes, page);
  if (mprotect(ring(), len, PROT_READ) != 0) {
    len = info_.ring_bytes & ~(page - 1);
    if (len != 0) mprotect(ring(), len, PROT_READ);
  }
}

void ChannelSegment::touch(std::uint64_t now_ns) noexcept {
  if (self_ != nullptr) self_->heartbeat_ns.store(now_ns, std::memory_order_relaxed);
}

PeerState state_of(const PeerSlot& s) {
  return static_cast<PeerState>(s.state.load(std::memory_order_acquire));
}

PeerRole role_of(const PeerSlot& s) {
  return static_cast<PeerRole>(s.role.load(std::memory_order_relaxed));
}

PeerStats peer_stats(const ChannelSegment& seg) {
  PeerStats st;
  const PeerSlot* s = seg.self();
  if (s == nullptr) return st;
  st.index = seg.self_index();
  st.role = role_of(*s);
  st.state = state_of(*s);
  st.pid = s->pid.load(std::memory_order_relaxed);
  st.alive = true;
  st.sent = s->sent.load(std::memory_order_relaxed);
  st.received = s->received.load(std::memory_order_relaxed);
  st.lost = s->lost.load(std::memory_order_relaxed);
  st.blocked_ns = s->blocked_ns.load(std::memory_order_relaxed);
  return st;
}

namespace {

// The liveness files the channel segments in the directory name (with `tag`, when given): read
// with pread through SegmentFile (live or stale segments alike: a stale one's file goes when the
// segment does).
std::set<std::string> liveness_files_in_use(std::optional<std::uint64_t> tag) {
  std::set<std::string> in_use;
  const std::string prefix = cat(kSegmentNamePrefix, kChannelKeyPrefix);
  for (const std::string& path : segment_paths(kDefaultSegmentDirectory, prefix)) {
    const std::string native_key = path.substr(kDefaultSegmentDirectory.size() + 1);
    const std::uint64_t file_tag = stable_hash64(native_key);
    if (tag.has_value() && *tag != file_tag) continue;
    absl::StatusOr<SegmentFile> file = SegmentFile::open(path);
    if (!file.ok() || file->listing().data_bytes < sizeof(ChannelHeader)) continue;
    alignas(ChannelHeader) std::byte header[sizeof(ChannelHeader)];
    if (!file->read(0, header).ok()) continue;
    absl::StatusOr<ChannelInfo> info = read_channel_header(header, file->listing().data_bytes, path);
    if (info.ok()) in_use.insert(liveness_path(file_tag, info->liveness_id));
  }
  return in_use;
}

}  // namespace

std::vector<std::string> collect_stale_liveness_files(std::optional<std::uint64_t> tag, bool dry_run) {
  std::vector<std::string> removed;
  std::string prefix(kLivenessPrefix);
  if (tag.has_value()) {
    char hex[20];
    std::snprintf(hex, sizeof hex, "%016llx.", static_cast<unsigned long long>(*tag));
    prefix += hex;
  }
  const std::vector<std::string> candidates = segment_paths(kDefaultSegmentDirectory, prefix);
  if (candidates.empty()) return removed;
  const std::set<std::string> in_use = liveness_files_in_use(tag);
  const uid_t me = geteuid();
  for (const std::string& path : candidates) {
    if (in_use.count(path) != 0) continue;
    std::uint64_t file_tag = 0;
    RandomId id;
    if (!parse_liveness_name(std::string_view(path).substr(kDefaultSegmentDirectory.size() + 1), &file_tag, &id)) {
      continue;
    }
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (me != 0 && st.st_uid != me) continue;  // other users' files are theirs to clean
    // Nobody holds a byte of it: no endpoint lives there, and its creator is done (or dead).
    absl::StatusOr<LivenessFile> file = LivenessFile::open(file_tag, id, st.st_uid, false);
    if (!file.ok() || file->any_held() != LivenessFile::State::kFree) continue;
    if (dry_run || remove_liveness_file(file_tag, id)) removed.push_back(path);
  }
  return removed;
}

}  // namespace detail
}  // namespace shmring
