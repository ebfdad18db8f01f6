// Private: what SharedMemory does about fork().
//
// A fork child inherits every descriptor, including the one holding each attachment's OFD lock,
// which would keep the parent's attachment alive after the parent detaches or dies. The child
// handler (pthread_atfork) closes those descriptors in the child, so its copies are inert: their
// mappings stay readable, but they count for nothing and remove nothing. The same file keeps
// fork_generation() (shmring/core/fork_generation.h) counting.
#pragma once

namespace shmring {

class SharedMemory;

struct ForkHandlers {
  // An attached object whose lock descriptor a fork child must close (installs the handlers once).
  static void add(SharedMemory* shm);
  // The object detached (or moved away): nothing to close for it any more.
  static void remove(SharedMemory* shm);
};

}  // namespace shmring
