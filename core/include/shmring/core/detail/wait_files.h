// The files behind pollable descriptors (wait_fd), beside the segments in kDefaultSegmentDirectory
// (/dev/shm). Not an application API (namespace detail): core owns every name, creation and clean-up
// in that directory; transport/ uses these for its endpoints' lifelines and wake-up sockets. Nothing
// here knows what a channel is: <tag> is whatever 64-bit id the caller names its files by (a
// channel: a hash of its segment's name, the same for every incarnation of it).
//
//   shmring-l.<tag>.<name>        an endpoint's lifeline: a FIFO the endpoint holds open (read-write)
//                                  from registration to close. Watchers hold its read end; when the
//                                  endpoint closes or its process dies, the kernel reports POLLHUP
//                                  to them: "peer gone" without polling, across PID namespaces.
//   shmring-w.<tag>.<name>        the Unix datagram socket inside an endpoint's wait_fd: a notifier
//                                  sends it one byte when it fires the endpoint's armed descriptor.
//
//   shmring-m.<random>            a lifeline being made: a FIFO has no holder until its maker opens
//                                  it, and the collector takes a FIFO nobody holds, so it is made and
//                                  opened here and then renamed to its shmring-l. name. One left by a
//                                  maker killed in between is collected once it is a minute old.
//
// <tag> is 16 hex digits (the caller's), <name> a random 128-bit id
// (random_id.h, 32 hex digits) the owner draws when it makes the file and records only afterwards
// (a channel endpoint: in its peer slot), so nobody can make the file first or guess where it will
// be. The files get writers_only() of the channel's mode (those who may not write the channel
// cannot open them), never take a name that exists (bind, or rename without replacing), and
// are opened without following links; a watcher refuses a lifeline that is not a FIFO owned by the
// peer's uid.
//
// Why these: two processes that share only /dev/shm (other PID and network namespaces) can share
// a path and nothing else. A FIFO's hang-up is the one kernel notification of another process's
// death that needs no PID and no parent/child relation; a datagram socket bound to a path takes
// a wake-up from any process that can write the path, never blocks the sender, never raises
// SIGPIPE (a FIFO write to a dead reader would), and a dead receiver is refused (ECONNREFUSED),
// which is how stale sockets are found. Pathname Unix sockets are found by inode, not by network
// namespace. The names do not start with "shmring_", so the segment tools never open them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shmring/core/detail/random_id.h"

namespace shmring::detail {

inline constexpr std::string_view kLifelinePrefix = "shmring-l.";
inline constexpr std::string_view kWaitSocketPrefix = "shmring-w.";

// "/dev/shm/<prefix><tag>.<name>".
std::string wait_file_path(std::string_view prefix, std::uint64_t tag, const RandomId& name);

// Makes a lifeline FIFO under a fresh random name (set in *name) with writers_only(channel_mode)
// and opens it O_RDWR | O_NONBLOCK | O_CLOEXEC; the descriptor is one a fork child does not keep
// (fork_closed_fds.h). -1 with errno on failure (nothing is left behind).
int create_lifeline(std::uint64_t tag, mode_t channel_mode, RandomId* name) noexcept;
// Closes a lifeline made by create_lifeline.
void close_lifeline(int fd) noexcept;
// A watcher's end of a peer's lifeline (O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC): -1 with
// errno ENOENT if it is not there, EPERM if it is not a FIFO owned by `owner`.
int open_lifeline(std::uint64_t tag, const RandomId& name, uid_t owner) noexcept;

// Makes the wait socket (non-blocking, close-on-exec), bound under a fresh random name (set in
// *name) with writers_only(channel_mode). -1 with errno on failure.
int create_wait_socket(std::uint64_t tag, mode_t channel_mode, RandomId* name) noexcept;
// Sends one byte (`byte`: 1 for a wake-up; other values are the caller's) to the wait socket
// `name`: never waits, never raises SIGPIPE. True when it was
// queued or the socket's queue is full (it is readable already); false when nobody is bound there
// (the endpoint closed or died) or on another error. One system call.
bool send_wake(std::uint64_t tag, const RandomId& name, char byte = 1) noexcept;

// Makes this process's wake-up sending socket now (channel open), not at the first wake-up.
void prepare_wake_sender() noexcept;

// Unlinks a wait file (an empty name, or a missing file, is fine).
void remove_wait_file(std::string_view prefix, std::uint64_t tag, const RandomId& name) noexcept;

// Removes wait files nobody owns any more: lifelines no endpoint holds (a writer-side open
// reports ENXIO), sockets nobody is bound to (connect reports ECONNREFUSED), lifelines left
// half-made (under their making name, unheld, a minute old). Looks at most at
// `limit` such files (0: all). Returns the paths removed (or, dry_run, that would be). Only the
// caller's own files (any user's, for root).
std::vector<std::string> collect_stale_wait_files(std::size_t limit, bool dry_run = false);
// The same for the files under one tag only (the last endpoint to leave a channel clears what dead
// peers of any incarnation of its name left).
void collect_stale_wait_files_of(std::uint64_t tag) noexcept;

}  // namespace shmring::detail
