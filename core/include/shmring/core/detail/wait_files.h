// The files behind pollable descriptors (wait_fd), beside the segments in kDefaultSegmentDirectory
// (/dev/shm). Not an application API (namespace detail): core owns every name, creation and clean-up
// in that directory; transport/ uses these for its endpoints' lifelines and wake-up sockets. Nothing
// here knows what a channel is: <channel id> is whatever 64-bit id the caller names its files by.
//
//   shmring-l.<channel id>.<token>  an endpoint's lifeline: a FIFO the endpoint holds open (read-write)
//                                   from registration to close. Watchers hold its read end; when the
//                                   endpoint closes or its process dies, the kernel reports POLLHUP
//                                   to them: "peer gone" without polling, across PID namespaces.
//   shmring-w.<channel id>.<token>  the Unix datagram socket inside an endpoint's wait_fd: a notifier
//                                   sends it one byte when it fires the endpoint's armed descriptor.
//   shmring-t.<...>                 a file being created (bound or opened, then renamed into place,
//                                   so a final name always has its owner behind it).
//
// Why these: two processes that share only /dev/shm (other PID and network namespaces) can share
// a path and nothing else. A FIFO's hang-up is the one kernel notification of another process's
// death that needs no PID and no parent/child relation; a datagram socket bound to a path takes
// a wake-up from any process that can write the path, never blocks the sender, never raises
// SIGPIPE (a FIFO write to a dead reader would), and a dead receiver is refused (ECONNREFUSED),
// which is how stale sockets are found. Pathname Unix sockets are found by inode, not by network
// namespace. The names do not start with "shmring_", so the segment tools never open them.
//
// <channel id> is 16 hex digits: stable_hash64 of the channel's segment key and creation time, so
// a channel removed and created again under the same name has other files. <token> is the peer's
// registration token (unique per channel), in hex.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmring::detail {

inline constexpr std::string_view kLifelinePrefix = "shmring-l.";
inline constexpr std::string_view kWaitSocketPrefix = "shmring-w.";
inline constexpr std::string_view kWaitTempPrefix = "shmring-t.";

// "/dev/shm/<prefix><channel id>.<token>".
std::string wait_file_path(std::string_view prefix, std::uint64_t channel_id, std::uint64_t token);

// Creates the lifeline FIFO of `token` with `mode` (&0666) and opens it O_RDWR | O_NONBLOCK |
// O_CLOEXEC; the descriptor is one a fork child does not keep (see below). -1 with errno on failure.
int create_lifeline(std::uint64_t channel_id, std::uint64_t token, mode_t mode) noexcept;
// Closes a lifeline made by create_lifeline.
void close_lifeline(int fd) noexcept;
// A watcher's end of a peer's lifeline (O_RDONLY | O_NONBLOCK | O_CLOEXEC); -1 (errno ENOENT) if
// the peer has not made it (yet) or is gone.
int open_lifeline(std::uint64_t channel_id, std::uint64_t token) noexcept;

// Creates the wait socket of `token` (non-blocking, close-on-exec), bound under its path with
// `mode` (&0666). -1 with errno on failure.
int create_wait_socket(std::uint64_t channel_id, std::uint64_t token, mode_t mode) noexcept;
// Sends one byte to the wait socket of `token`: never waits, never raises SIGPIPE. True when it
// was queued or the socket's queue is full (it is readable already); false when nobody is bound
// there (the endpoint closed or died) or on another error. One system call.
bool send_wake(std::uint64_t channel_id, std::uint64_t token) noexcept;

// Makes this process's wake-up sending socket now (channel open), not at the first wake-up.
void prepare_wake_sender() noexcept;

// Unlinks both files of `token` (absent files are fine). The owner's close and the recovery of a
// dead peer call it.
void remove_wait_files(std::uint64_t channel_id, std::uint64_t token) noexcept;

// Removes wait files nobody owns any more: lifelines no endpoint holds (a writer-side open
// reports ENXIO), sockets nobody is bound to (connect reports ECONNREFUSED), temporary names
// older than a minute. Looks at most at `limit` such files (0: all). Returns the paths removed
// (or, dry_run, that would be). Files of other users that cannot be removed are skipped.
std::vector<std::string> collect_stale_wait_files(std::size_t limit, bool dry_run = false);
// The same for the files of one channel incarnation only (the last endpoint to leave a channel
// clears what its dead peers left).
void collect_stale_wait_files_of(std::uint64_t channel_id) noexcept;

}  // namespace shmring::detail
