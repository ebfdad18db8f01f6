// Descriptors a fork child must not keep (not an application API).
//
// Some descriptors are evidence that their process lives: a held OFD lock (a segment attachment, a
// channel endpoint's liveness lock) or a FIFO held open (an endpoint's lifeline). A fork child that
// inherited one would keep that evidence alive after its parent died, and every peer would wait
// for a process that is gone. Descriptors registered here are made inert in every fork child: the
// child handler puts /dev/null over each (the number stays valid, so the child's copy of whatever
// owns it can close it later without closing something else).
#pragma once

#include <functional>

namespace shmring::detail {

// Runs `open` (which returns a descriptor, or -1) and registers what it returns, both under the
// registry's lock, which the fork handlers take: a child forked meanwhile never holds an
// unregistered copy. Returns what `open` returned.
int open_closed_in_fork_children(const std::function<int()>& open);
// Unregisters `fd` and closes it (under the same lock). A no-op for -1.
void close_fork_closed(int fd) noexcept;

}  // namespace shmring::detail
