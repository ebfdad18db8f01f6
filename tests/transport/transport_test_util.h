// Helpers for the transport tests: channel names from unique_key(), a leak check for channel
// segments, and messages that let a receiver tell torn, duplicated and lost items.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/core/shared_memory.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/transport/channel.h"
#include "control_block.h"
#include "shmring/core/segment_directory.h"
#include "shmring/transport/topic.h"
#include "test_support.h"

namespace shmring::testing {

// A channel name no other test uses ("t_<pid>_<n>_<label>").
inline std::string channel_name(const std::string& label) { return unique_key(label); }

// The tests' channel segments are "/dev/shm/shmring_chan.t_<pid>_..." (the native key of
// channel_key(name)); each transport test binary checks its own, the suite-wide
// tests/leak_check.sh all of them.
class ChannelLeakCheck : public ::testing::Environment {
 public:
  void TearDown() override {
    const std::string prefix = std::string(kSegmentNamePrefix) + std::string(kChannelKeyPrefix) + "t_" +
                               std::to_string(getpid()) + "_";
    const std::vector<std::string> left = dev_shm_entries(prefix);
    for (const std::string& name : left) ADD_FAILURE() << "channel segment left behind: " << name;
  }
};

// Every transport test binary includes this header and so registers the check once (an inline
// variable has one definition per program).
inline const ::testing::Environment* const kChannelLeakCheck =
    ::testing::AddGlobalTestEnvironment(new ChannelLeakCheck);

// Topic options for tests: ring bytes, largest message, mode, 16 peers.
inline TopicOptions topic(std::uint64_t capacity, std::uint64_t max_message, bool lossless = false) {
  TopicOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  o.lossless = lossless;
  o.max_peers = 16;
  return o;
}

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
inline std::string string_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// A read-write view of a channel's control block and ring, as a hostile or curious peer (or a
// process that breaks the protocol at a given instruction) has it.
struct RawChannel {
  SharedMemory memory;
  explicit RawChannel(const std::string& name) : memory(channel_key(name)) {}
  bool attach() { return memory.attach(AccessMode::kReadWrite); }
  ControlBlock* control() { return static_cast<ControlBlock*>(memory.data()); }
  // A queue channel's ring (attach() first).
  MpmcQueue<> queue() {
    ControlBlock* cb = control();
    return *MpmcQueue<>::attach(reinterpret_cast<std::byte*>(cb) + cb->header.ring_offset,
                                cb->header.ring_bytes);
  }
};

// 64-bit mix (splitmix64 finaliser).
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A message of `size` (>= 16) bytes: [id u64][words derived from id ...]. check_message() tells a
// torn one (any byte not what `id` implies).
inline void fill_message(std::span<std::byte> out, std::uint64_t id) {
  std::memcpy(out.data(), &id, 8);
  for (std::size_t off = 8; off + 8 <= out.size(); off += 8) {
    const std::uint64_t w = mix64(id + off);
    std::memcpy(out.data() + off, &w, 8);
  }
}
inline bool check_message(std::span<const std::byte> in, std::uint64_t* id) {
  if (in.size() < 16) return false;
  std::memcpy(id, in.data(), 8);
  for (std::size_t off = 8; off + 8 <= in.size(); off += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, in.data() + off, 8);
    if (w != mix64(*id + off)) return false;
  }
  return true;
}

// MAP_SHARED | MAP_ANONYMOUS memory shared with children forked after it is made.
class SharedRegion {
 public:
  explicit SharedRegion(std::size_t bytes) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : p;
  }
  ~SharedRegion() {
    if (data_ != nullptr) munmap(data_, bytes_);
  }
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  std::size_t size() const { return bytes_; }

 private:
  std::size_t bytes_;
  void* data_ = nullptr;
};

}  // namespace shmring::testing
