// SharedMemory across real processes: crashes (SIGKILL), races, read-only mappings, fd passing.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/core/shared_memory.h"
#include "test_support.h"

namespace shmring {
namespace {

using testing::fork_child;
using testing::unique_key;
using testing::wait_child;

// A one-shot "I am ready" signal from a child to its parent.
class ReadyPipe {
 public:
  ReadyPipe() { EXPECT_EQ(pipe(fds_), 0); }
  ~ReadyPipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  void signal() const {
    const char byte = 1;
    (void)!write(fds_[1], &byte, 1);
  }
  bool wait(int count = 1) const {
    for (int i = 0; i < count; ++i) {
      char byte = 0;
      if (read(fds_[0], &byte, 1) != 1) return false;
    }
    return true;
  }

 private:
  int fds_[2] = {-1, -1};
};

bool dev_shm_has(const std::string& native_key) {
  return access(("/dev/shm/" + native_key).c_str(), F_OK) == 0;
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

// 1. The last detach removes the segment, whichever process it happens in.
TEST(SharedMemoryMultiprocessTest, LastDetachInAnotherProcessRemovesTheSegment) {
  const std::string key = unique_key("mp_last");
  const std::string native = SharedMemory::native_key_for(key);
  SharedMemory parent(key);
  ASSERT_TRUE(parent.create(4096));
  ReadyPipe attached, parent_gone;
  const pid_t child = fork_child([&] {
    SharedMemory shm(key);
    if (!shm.attach()) return 1;
    attached.signal();
    parent_gone.wait();
    if (shm.num_attachments() != 1) return 2;
    return shm.detach() ? 0 : 3;  // the last one: removes it
  });
  ASSERT_TRUE(attached.wait());
  EXPECT_EQ(parent.num_attachments(), 2);
  parent.detach();
  EXPECT_TRUE(dev_shm_has(native));
  parent_gone.signal();
  const auto result = wait_child(child);
  EXPECT_TRUE(result.ok()) << "child exit " << result.code;
  EXPECT_FALSE(dev_shm_has(native));
}

TEST(SharedMemoryMultiprocessTest, LastDetachByReadOnlyAttachmentRemovesTheSegment) {
  const std::string key = unique_key("mp_rolast");
  const std::string native = SharedMemory::native_key_for(key);
  SharedMemory writer(key);
  writer.set_permissions(0644);
  ASSERT_TRUE(writer.create(4096));
  ReadyPipe attached, writer_gone;
  const pid_t child = fork_child([&] {
    SharedMemory reader(key);
    if (!reader.attach(AccessMode::kReadOnly)) return 1;
    attached.signal();
    writer_gone.wait();
    return reader.detach() ? 0 : 2;  // the last one, and read-only
  });
  ASSERT_TRUE(attached.wait());
  writer.detach();
  writer_gone.signal();
  EXPECT_TRUE(wait_child(child).ok());
  EXPECT_FALSE(dev_shm_has(native));
  // Without write permission the last read-only attachment cannot remove it: it is left stale,
  // which create() and gc reclaim.
  const std::string other = unique_key("mp_rolast_nobody");
  SharedMemory owner(other);
  owner.set_permissions(0644);
  ASSERT_TRUE(owner.create(4096));
  ReadyPipe nobody_attached, owner_gone;
  const pid_t nobody = fork_child([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 98;
    SharedMemory reader(other);
    if (!reader.attach(AccessMode::kReadOnly)) return 1;
    nobody_attached.signal();
    owner_gone.wait();
    return reader.detach() ? 0 : 2;
  });
  ASSERT_TRUE(nobody_attached.wait());
  owner.detach();
  owner_gone.signal();
  EXPECT_TRUE(wait_child(nobody).ok());
  SharedMemory probe(other);
  EXPECT_FALSE(probe.exists());  // stale, not live
  EXPECT_TRUE(probe.destroy());  // and removable
  EXPECT_FALSE(dev_shm_has(SharedMemory::native_key_for(other)));
}

TEST(SharedMemoryMultiprocessTest, ProcessExitingNormallyLeavesNothing) {
  const std::string key = unique_key("mp_exit");
  const pid_t child = fork_child([&] {
    SharedMemory shm(key);
    return shm.create(1 << 20) ? 0 : 1;  // destructor detaches
  });
  EXPECT_TRUE(wait_child(child).ok());
  EXPECT_FALSE(dev_shm_has(SharedMemory::native_key_for(key)));
}

// 2. Attachment counting is exact after SIGKILL.
TEST(SharedMemoryMultiprocessTest, AttachmentCountIsExactAfterSigkill) {
  const std::string key = unique_key("mp_count");
  SharedMemory parent(key);
  ASSERT_TRUE(parent.create(4096));
  ReadyPipe ready;
  std::vector<pid_t> children;
  constexpr int kChildren = 6;
  for (int i = 0; i < kChildren; ++i) {
    children.push_back(fork_child([&] {
      SharedMemory shm(key);
      if (!shm.attach(i % 2 ? AccessMode::kReadOnly : AccessMode::kReadWrite)) return 1;
      ready.signal();
      pause();
      return 0;
    }));
  }
  ASSERT_TRUE(ready.wait(kChildren));
  EXPECT_EQ(parent.num_attachments(), kChildren + 1);
  for (int i = 0; i < kChildren / 2; ++i) kill_and_reap(children[i]);
  EXPECT_EQ(parent.num_attachments(), kChildren / 2 + 1);
  for (int i = kChildren / 2; i < kChildren; ++i) kill_and_reap(children[i]);
  EXPECT_EQ(parent.num_attachments(), 1);
  SharedMemory observer(key);
  EXPECT_EQ(observer.num_attachments(), 1);  // counted without attaching
}

// 3. A segment whose attachers all died is stale: not there for exists()/attach(), reclaimed by create().
TEST(SharedMemoryMultiprocessTest, SegmentOfKilledProcessesIsStaleAndReclaimed) {
  const std::string key = unique_key("mp_stale");
  const std::string native = SharedMemory::native_key_for(key);
  ReadyPipe ready;
  const pid_t creator = fork_child([&] {
    SharedMemory shm(key);
    if (!shm.create(4096)) return 1;
    std::memset(shm.data(), 0xAB, shm.size());
    if (!shm.lock()) return 2;  // dies holding the lock too
    ready.signal();
    pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait());
  kill_and_reap(creator);
  EXPECT_TRUE(dev_shm_has(native));  // the kernel file is still there...
  SharedMemory probe(key);
  EXPECT_FALSE(probe.exists());       // ...but it is not a live segment
  EXPECT_EQ(probe.num_attachments(), 0);
  SharedMemory fresh(key);
  ASSERT_TRUE(fresh.create(100)) << fresh.error_string();
  EXPECT_EQ(fresh.size(), 100u);
  EXPECT_EQ(static_cast<const unsigned char*>(fresh.const_data())[0], 0);  // new, zero-filled
  EXPECT_TRUE(fresh.lock());  // a new lock, not the dead process's
  EXPECT_FALSE(fresh.previous_owner_died());
  EXPECT_TRUE(fresh.unlock());
}

TEST(SharedMemoryMultiprocessTest, AttachToStaleSegmentIsNotFoundAndCleansUp) {
  const std::string key = unique_key("mp_stale_attach");
  const std::string native = SharedMemory::native_key_for(key);
  ReadyPipe ready;
  const pid_t creator = fork_child([&] {
    SharedMemory shm(key);
    if (!shm.create(4096)) return 1;
    ready.signal();
    pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait());
  kill_and_reap(creator);
  SharedMemory late(key);
  EXPECT_FALSE(late.attach());
  EXPECT_EQ(late.error(), SharedMemoryError::kNotFound);
  EXPECT_NE(late.error_string().find("stale"), std::string::npos) << late.error_string();
  EXPECT_FALSE(dev_shm_has(native));
}

// 4. The lock of a holder that dies is released, and the next owner learns it.
TEST(SharedMemoryMultiprocessTest, LockHeldByKilledProcessIsReleasedAndReported) {
  const std::string key = unique_key("mp_lockdeath");
  SharedMemory parent(key);
  ASSERT_TRUE(parent.create(64));
  for (int round = 0; round < 3; ++round) {
    ReadyPipe locked;
    const pid_t holder = fork_child([&] {
      SharedMemory shm(key);
      if (!shm.attach() || !shm.lock()) return 1;
      locked.signal();
      pause();
      return 0;
    });
    ASSERT_TRUE(locked.wait());
    EXPECT_FALSE(parent.try_lock_for(10));  // really held
    kill_and_reap(holder);
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(parent.try_lock_for(2000)) << parent.error_string();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    EXPECT_TRUE(parent.previous_owner_died());
    ASSERT_TRUE(parent.unlock());
    ASSERT_TRUE(parent.lock());
    EXPECT_FALSE(parent.previous_owner_died());  // repaired: told once
    ASSERT_TRUE(parent.unlock());
  }
}

TEST(SharedMemoryMultiprocessTest, LockExcludesOtherProcesses) {
  const std::string key = unique_key("mp_mutex");
  SharedMemory parent(key);
  ASSERT_TRUE(parent.create(64));
  // Non-atomic read-modify-write of a counter, protected only by lock(): a lost update shows a bug.
  constexpr int kProcesses = 3, kIterations = 2000;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(fork_child([&] {
      SharedMemory shm(key);
      if (!shm.attach()) return 1;
      auto* counter = static_cast<volatile long*>(shm.data());
      for (int i = 0; i < kIterations; ++i) {
        if (!shm.lock()) return 2;
        const long value = *counter;
        if (i % 64 == 0) std::this_thread::yield();
        *counter = value + 1;
        if (!shm.unlock()) return 3;
      }
      return 0;
    }));
  }
  for (pid_t child : children) EXPECT_TRUE(wait_child(child).ok());
  EXPECT_EQ(*static_cast<volatile long*>(parent.data()), long{kProcesses} * kIterations);
}

// 5. create_or_attach is atomic under concurrent create/attach/detach, and leaves nothing behind.
TEST(SharedMemoryMultiprocessTest, CreateOrAttachRaceNeverFailsNorLeaks) {
  const std::string key = unique_key("mp_race");
  constexpr int kProcesses = 4, kIterations = 300;
  constexpr std::size_t kSize = 8192;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(fork_child([&] {
      for (int i = 0; i < kIterations; ++i) {
        SharedMemory shm(key);
        if (!shm.create_or_attach(kSize)) {
          std::fprintf(stderr, "create_or_attach: %s\n", shm.error_string().c_str());
          return 1;
        }
        if (shm.size() != kSize) return 2;
        // The usual initialisation pattern: whoever finds it blank fills it, under the lock.
        if (!shm.lock()) {
          std::fprintf(stderr, "lock: %s\n", shm.error_string().c_str());
          return 3;
        }
        auto* words = static_cast<std::uint32_t*>(shm.data());
        if (words[0] == 0) {
          for (std::size_t w = 0; w < kSize / 4; ++w) words[w] = 0xC0FFEE;
        } else {
          for (std::size_t w = 0; w < kSize / 4; ++w) {
            if (words[w] != 0xC0FFEE) return 4;  // half-initialised
          }
        }
        if (!shm.unlock()) return 5;
        if (!shm.detach()) return 6;
      }
      return 0;
    }));
  }
  for (pid_t child : children) {
    const auto result = wait_child(child, std::chrono::seconds(120));
    EXPECT_TRUE(result.ok()) << "exit " << result.code << " signaled " << result.signaled;
  }
  EXPECT_FALSE(dev_shm_has(SharedMemory::native_key_for(key)));
}

TEST(SharedMemoryMultiprocessTest, RandomKillsDuringCreateOrAttachNeverWedgeTheKey) {
  const std::string key = unique_key("mp_chaos");
  for (int round = 0; round < 30; ++round) {
    const pid_t victim = fork_child([&] {
      for (;;) {
        SharedMemory shm(key);
        if (shm.create_or_attach(4096)) {
          shm.lock();
          shm.unlock();
        }
      }
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(200 + 137 * round % 1000));
    kill_and_reap(victim);
    SharedMemory shm(key);
    ASSERT_TRUE(shm.create_or_attach(4096)) << "round " << round << ": " << shm.error_string();
    ASSERT_TRUE(shm.try_lock_for(2000)) << "round " << round << ": " << shm.error_string();
    ASSERT_TRUE(shm.unlock());
  }
  EXPECT_FALSE(dev_shm_has(SharedMemory::native_key_for(key)));
}

// 6. A failed create() on a live key (in another process) leaves it and its lock untouched.
TEST(SharedMemoryMultiprocessTest, FailedCreateLeavesLiveSegmentAndLockUntouched) {
  const std::string key = unique_key("mp_livecreate");
  SharedMemory owner(key);
  ASSERT_TRUE(owner.create(128));
  std::strcpy(static_cast<char*>(owner.data()), "precious");
  ASSERT_TRUE(owner.lock());
  const pid_t child = fork_child([&] {
    SharedMemory intruder(key);
    if (intruder.create(64)) return 1;
    if (intruder.error() != SharedMemoryError::kAlreadyExists) return 2;
    if (!intruder.attach()) return 3;
    if (intruder.try_lock_for(20)) return 4;  // still held by the owner
    return 0;
  });
  EXPECT_TRUE(wait_child(child).ok());
  EXPECT_STREQ(static_cast<const char*>(owner.const_data()), "precious");
  EXPECT_TRUE(owner.holds_lock());
  EXPECT_TRUE(owner.unlock());
  EXPECT_EQ(owner.num_attachments(), 1);
}

TEST(SharedMemoryMultiprocessTest, WriteThroughReadOnlyAttachmentKillsTheProcess) {
  const std::string key = unique_key("mp_readonly");
  SharedMemory owner(key);
  ASSERT_TRUE(owner.create(4096));
  const pid_t child = fork_child([&] {
    SharedMemory reader(key);
    if (!reader.attach(AccessMode::kReadOnly)) return 1;
    if (reader.access_mode() != AccessMode::kReadOnly) return 2;
    testing::default_sigsegv();
    static_cast<volatile char*>(reader.data())[0] = 1;  // must fault
    return 0;
  });
  const auto result = wait_child(child);
  EXPECT_TRUE(result.signaled);
  EXPECT_EQ(result.code, SIGSEGV);
  EXPECT_EQ(static_cast<const char*>(owner.const_data())[0], 0);
}

TEST(SharedMemoryMultiprocessTest, ReadOnlyCreatorCannotWriteEither) {
  const std::string key = unique_key("mp_rocreate");
  const pid_t child = fork_child([&] {
    SharedMemory shm(key);
    if (!shm.create(4096, AccessMode::kReadOnly)) return 1;
    testing::default_sigsegv();
    static_cast<volatile char*>(shm.data())[0] = 1;
    return 0;
  });
  const auto result = wait_child(child);
  EXPECT_TRUE(result.signaled);
  EXPECT_EQ(result.code, SIGSEGV);
  // The killed creator's segment is stale: destroy() by key removes it.
  SharedMemory remover(key);
  EXPECT_FALSE(remover.exists());
  EXPECT_TRUE(remover.destroy()) << remover.error_string();
  EXPECT_FALSE(dev_shm_has(SharedMemory::native_key_for(key)));
}

TEST(SharedMemoryMultiprocessTest, ForkedCopyIsInert) {
  const std::string key = unique_key("mp_fork");
  SharedMemory parent(key);
  ASSERT_TRUE(parent.create(64));
  const pid_t child = fork_child([&] {
    // The child's copy shares the parent's attachment: detaching it must not remove anything.
    static_cast<char*>(parent.data())[0] = 'c';
    return parent.detach() ? 0 : 1;
  });
  EXPECT_TRUE(wait_child(child).ok());
  EXPECT_TRUE(parent.exists());
  EXPECT_EQ(parent.num_attachments(), 1);
  EXPECT_EQ(static_cast<char*>(parent.data())[0], 'c');
  EXPECT_TRUE(parent.lock());
  EXPECT_TRUE(parent.unlock());
}

TEST(SharedMemoryMultiprocessTest, MemfdInheritedByChild) {
  SharedMemory shm;
  shm.set_backend(Backend::kMemfd);
  ASSERT_TRUE(shm.create(4096));
  const int fd = shm.fd();
  const pid_t child = fork_child([&] {
    SharedMemory joiner;
    if (!joiner.attach_fd(fd)) return 1;
    if (joiner.num_attachments() != 2) return 2;
    std::strcpy(static_cast<char*>(joiner.data()), "from child");
    return 0;
  });
  EXPECT_TRUE(wait_child(child).ok());
  EXPECT_STREQ(static_cast<const char*>(shm.const_data()), "from child");
  EXPECT_EQ(shm.num_attachments(), 1);  // the child's attachment went with it
}

// Sends `fd` over a Unix socket (SCM_RIGHTS, one byte of payload); true on success.
bool send_fd(int socket, int fd) {
  char byte = 0;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  iovec io{&byte, 1};
  msghdr message{};
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof fd);
  return sendmsg(socket, &message, 0) == 1;
}

// Receives a descriptor sent by send_fd(); -1 on failure.
int receive_fd(int socket) {
  char byte = 0;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  iovec io{&byte, 1};
  msghdr message{};
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  if (recvmsg(socket, &message, 0) != 1) return -1;
  const cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_type != SCM_RIGHTS) return -1;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(header), sizeof fd);
  return fd;
}

TEST(SharedMemoryMultiprocessTest, MemfdPassedOverUnixSocket) {
  int sockets[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sockets), 0);
  // The child exists before the memfd does, so it can only get it through the socket.
  const pid_t child = fork_child([&] {
    close(sockets[0]);
    const int fd = receive_fd(sockets[1]);
    if (fd < 0) return 1;
    SharedMemory joiner;
    if (!joiner.attach_fd(fd, AccessMode::kReadOnly)) return 3;
    close(fd);
    if (std::strcmp(static_cast<const char*>(joiner.const_data()), "sealed frame") != 0) return 4;
    if (ftruncate(joiner.fd(), 1) == 0) return 5;  // sealed against shrinking
    const char done = 1;
    return write(sockets[1], &done, 1) == 1 ? 0 : 6;
  });
  close(sockets[1]);
  SharedMemory shm;
  shm.set_backend(Backend::kMemfd);
  ASSERT_TRUE(shm.create(1 << 16));
  std::strcpy(static_cast<char*>(shm.data()), "sealed frame");
  ASSERT_TRUE(send_fd(sockets[0], shm.fd()));
  char done = 0;
  EXPECT_EQ(read(sockets[0], &done, 1), 1);
  EXPECT_TRUE(wait_child(child).ok());
  close(sockets[0]);
}

// Two processes holding the last two attachments detach at the same instant, round after round:
// one of them must always remove the segment (each used to fail its lock conversion because of
// the other, and nobody removed it: 533 of 1 500 rounds). SHMRING_LAST_OUT_ROUNDS sets the rounds.
TEST(SharedMemoryMultiprocessTest, TwoLastDetachesAtTheSameInstantAlwaysRemoveTheSegment) {
  const int rounds = testing::rounds_from_env("SHMRING_LAST_OUT_ROUNDS", 2000);
  const std::string key = unique_key("mp_lastout");
  const std::string native = SharedMemory::native_key_for(key);
  testing::ProcessBarrier barrier(2);
  std::vector<pid_t> children;
  for (int side = 0; side < 2; ++side) {
    children.push_back(fork_child([&, side] {
      int left_behind = 0;
      for (int round = 0; round < rounds; ++round) {
        SharedMemory shm(key);
        if (!shm.create_or_attach(4096)) return 10;
        if (!barrier.arrive_and_wait()) return 11;  // both attached
        if (!shm.detach()) return 12;
        if (!barrier.arrive_and_wait()) return 13;  // both detached
        if (side == 0 && dev_shm_has(native)) {
          ++left_behind;
          SharedMemory stale(key);
          stale.destroy(DestroyMode::kForceNoWait);  // start the next round clean
        }
        if (!barrier.arrive_and_wait()) return 14;
      }
      if (side == 0 && left_behind != 0) {
        std::fprintf(stderr, "segment left behind in %d of %d rounds\n", left_behind, rounds);
        return 20;
      }
      return 0;
    }));
  }
  for (pid_t child : children) {
    const auto result = wait_child(child, std::chrono::seconds(240));
    EXPECT_TRUE(result.ok()) << "exit " << result.code << " signaled " << result.signaled;
  }
  EXPECT_FALSE(dev_shm_has(native));
}

}  // namespace
}  // namespace shmring
