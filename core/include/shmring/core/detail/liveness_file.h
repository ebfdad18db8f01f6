// A channel's liveness locks (not an application API; docs/security.md).
//
// Every registered endpoint of a channel holds an exclusive OFD lock on one byte of this file (the
// byte of its peer slot) for as long as it lives; the kernel drops it when the endpoint's process
// dies, in any PID namespace, and pid reuse cannot fake it. The file sits beside the channel's
// segment as "shmring-a.<tag>.<id>": <tag> the channel's name tag (16 hex digits, as its wait
// files, wait_files.h), <id> a random 128-bit id the channel header records (32 hex digits), and
// only those who may write the channel may open it (writers_only()). It is kept apart from the
// segment file because anyone who may read a file may take read locks on it: a reader's lock on a
// slot's byte would make that slot look taken to every endpoint that opens after it.
// Liveness is asked with a read-lock probe, so read locks never count as "alive" either. Its
// creator also holds kCreatorByte from the instant the file exists until it closes it, so a file
// nobody holds any byte of belongs to no live endpoint or creator: it is stale.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "shmring/core/detail/random_id.h"

namespace shmring::detail {

using LivenessId = RandomId;

// "<directory>/shmring-a.<tag>.<id>" (kDefaultSegmentDirectory).
std::string liveness_path(std::uint64_t tag, const LivenessId& id);
inline constexpr std::string_view kLivenessPrefix = "shmring-a.";
// Parses a file name made by liveness_path; false for anything else.
bool parse_liveness_name(std::string_view file_name, std::uint64_t* tag, LivenessId* id) noexcept;
// The byte the creator of a liveness file holds (beyond every peer slot's).
inline constexpr std::uint32_t kCreatorByte = 1u << 20;

// The mode of a channel's companion files (liveness file, lifelines, wake-up sockets): read and
// write for each class (owner, group, others) that may write `channel_mode`, nothing for the
// others. A 0644 channel's files are 0600: its read-only users cannot touch them.
mode_t writers_only(mode_t channel_mode) noexcept;

class LivenessFile {
 public:
  LivenessFile() = default;
  LivenessFile(LivenessFile&& other) noexcept;
  LivenessFile& operator=(LivenessFile&& other) noexcept;
  LivenessFile(const LivenessFile&) = delete;
  LivenessFile& operator=(const LivenessFile&) = delete;
  ~LivenessFile();

  // Makes the file of a new channel: O_EXCL, never through a link, mode writers_only(channel_mode),
  // owned by `group` unless it is -1, with kCreatorByte held. kAlreadyExists if the name is taken
  // or was taken from under it at once (pick another id).
  static absl::StatusOr<LivenessFile> create(std::uint64_t tag, const LivenessId& id,
                                             mode_t channel_mode, gid_t group);
  // Opens the file of an existing channel: it must be a regular file owned by `owner` (the channel
  // segment's owner), never through a link. `writable`: to hold locks (an endpoint); otherwise only
  // to ask (tools). kPermissionDenied / kNotFound / kFailedPrecondition (not the channel's file).
  static absl::StatusOr<LivenessFile> open(std::uint64_t tag, const LivenessId& id, uid_t owner,
                                           bool writable);

  bool is_open() const noexcept { return fd_ >= 0; }
  // Takes the exclusive lock on byte `slot` (false: someone holds it, or not writable).
  bool hold(std::uint32_t slot) noexcept;
  void release(std::uint32_t slot) noexcept;
  enum class State { kHeld, kFree, kUnknown };
  // Whether any endpoint holds byte `slot` (a lock held through this same open file description
  // does not count: the kernel sees no conflict with itself). kUnknown when the file is not open.
  State state_of(std::uint32_t slot) const noexcept;
  // Whether any endpoint holds any byte: a file nobody holds belongs to no live endpoint.
  State any_held() const noexcept;

 private:
  explicit LivenessFile(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;  // closed in fork children (fork_closed_fds.h): a child must not keep the locks
};

// Unlinks the file (a missing file is fine). True if it is gone.
bool remove_liveness_file(std::uint64_t tag, const LivenessId& id) noexcept;

}  // namespace shmring::detail
