#include "channel_fuzz_targets.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "control_block.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/segment_header.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/queue.h"

namespace shmring::fuzz {
namespace {

// The fuzzed channel: made on first use, alive (one consumer holds it) until the process exits.
struct Target {
  std::string name = "t_fuzz_" + std::to_string(getpid()) + "_channel";
  QueueConsumer anchor;
  SharedMemory memory{channel_key("t_fuzz_" + std::to_string(getpid()) + "_channel")};
  std::vector<std::byte> original;
  std::size_t ring_offset = 0;
  bool ok = false;

  Target() {
    QueueOptions o;
    o.capacity = 8;
    o.max_message = 32;
    o.max_peers = 8;
    auto opened = QueueConsumer::open(name, o);
    if (!opened.ok()) return;
    anchor = *std::move(opened);
    if (!memory.attach()) return;
    const auto* bytes = static_cast<const std::byte*>(memory.const_data());
    original.assign(bytes, bytes + memory.size());
    ring_offset = ring_offset_for(o.max_peers);
    ok = ring_offset < original.size();
  }
  ~Target() {
    memory.detach();
    anchor.close();
  }
};

Target& target() {
  static Target t;
  return t;
}

}  // namespace

void segment_header(const std::uint8_t* data, std::size_t size) {
  // Exactly `size` bytes on the heap, aligned like a mapping: ASan sees any read past them.
  auto* copy = static_cast<std::byte*>(::operator new(size == 0 ? 1 : size, std::align_val_t{64}));
  if (size != 0) std::memcpy(copy, data, size);
  SegmentInfo info;
  const absl::Status status = read_segment_header(copy, size, &info);
  if (status.ok() && info.user_size > size) std::abort();  // validated against the mapped size
  ::operator delete(copy, std::align_val_t{64});
  // The same bytes as a file, through the listing code (liveness locks, header, key).
  const int fd = memfd_create("shmring-fuzz", MFD_CLOEXEC);
  if (fd < 0) return;
  if (size == 0 || write(fd, data, size) == static_cast<ssize_t>(size)) {
    const absl::StatusOr<SegmentListing> listing = inspect_segment("/proc/self/fd/" + std::to_string(fd));
    if (listing.ok() && listing->native_key.empty() && listing->path.empty()) std::abort();
  }
  close(fd);
}

void channel_control_block(const std::uint8_t* data, std::size_t size) {
  Target& t = target();
  if (!t.ok || size < 1) return;
  auto* bytes = static_cast<std::byte*>(t.memory.data());
  const std::size_t total = t.original.size();
  std::size_t begin = 0;
  std::size_t end = sizeof(ChannelHeader);
  if (data[0] % 3 == 1) {
    begin = sizeof(ChannelHeader);
    end = t.ring_offset;
  } else if (data[0] % 3 == 2) {
    begin = t.ring_offset;
    end = total;
  }
  const std::size_t n = std::min(size - 1, end - begin);
  std::memcpy(bytes + begin, data + 1, n);

  std::uint64_t sink = 0;
  if (auto stats = read_stats(t.name); stats.ok()) sink += stats->peers.size() + stats->depth;
  QueueOptions o;
  o.open_timeout = std::chrono::milliseconds(5);
  o.create = false;
  auto producer = QueueProducer::open(t.name, o);
  auto consumer = QueueConsumer::open(t.name, o);
  if (producer.ok()) {
    const std::byte item[16] = {};
    producer->try_send(item);
  }
  if (consumer.ok()) {
    std::vector<std::byte> out(consumer->max_message() <= 4096 ? consumer->max_message() : 0);
    std::size_t got = 0;
    if (!out.empty()) consumer->try_receive(out, &got);
    QueueView view;
    consumer->recover(&view);
    sink += got + view.data().size();
  }
  if (producer.ok()) producer->close();
  if (consumer.ok()) consumer->close();
  // Put the channel back as it was (its anchor's peer slot included).
  std::memcpy(bytes, t.original.data(), total);
  if (sink == 0xFFFFFFFFFFFFFFFF) std::abort();
}

}  // namespace shmring::fuzz
