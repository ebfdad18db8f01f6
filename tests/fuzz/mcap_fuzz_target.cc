#include "mcap_fuzz_target.h"

#include <cstring>
#include <memory>
#include <vector>

#include "shmring/record/mcap.h"

namespace shmring::fuzz {

void read_mcap(const std::uint8_t* data, std::size_t size) {
  using namespace shmring::record;
  // An exact-size heap copy: AddressSanitizer sees any read past the end.
  std::unique_ptr<std::byte[]> copy(new std::byte[size == 0 ? 1 : size]);
  if (size != 0) std::memcpy(copy.get(), data, size);
  const std::span<const std::byte> bytes(copy.get(), size);
  ReaderOptions limits;
  limits.max_chunk_bytes = 1 << 20;  // a chunk claiming more is refused, not allocated
  absl::StatusOr<McapReader> reader = McapReader::open_bytes(bytes, limits);
  if (!reader.ok()) return;
  std::uint64_t checksum = 0;
  auto visit = [&](const Message& m, const Channel& c) {
    // Touch every byte handed out (ASan checks they are inside the input or the reader's buffer).
    for (std::byte b : m.data) checksum += static_cast<std::uint8_t>(b);
    checksum += c.topic.size() + m.sequence;
    return true;
  };
  for (int mode = 0; mode < 4; ++mode) {
    ReadOptions options;
    options.order = mode % 2 == 0 ? ReadOptions::Order::kFile : ReadOptions::Order::kLogTime;
    options.skip_bad_chunks = mode >= 2;
    if (mode == 3) {
      options.start_time = 1;
      options.end_time = 1ull << 62;
      options.channels = {0, 1, 2};
    }
    ReadReport report;
    (void)reader->read_messages(options, visit, &report);
  }
  (void)reader->summary();
  (void)reader->metadata();
  volatile std::uint64_t sink = checksum;
  (void)sink;
}

}  // namespace shmring::fuzz
