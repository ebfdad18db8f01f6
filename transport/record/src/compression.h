// Private: chunk compression (zstd through libzstd, or none). Each object keeps its zstd context
// between calls; one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "shmring/record/mcap.h"

namespace shmring::record::detail {

class Compressor {
 public:
  Compressor(Compression compression, int level);
  ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
  // Replaces *out with `in` compressed (a copy for kNone). kInternal if zstd fails.
  absl::Status compress(std::span<const std::byte> in, std::vector<std::byte>* out);
  // The chunk record's compression field: "" or "zstd".
  std::string_view name() const noexcept;

 private:
  struct Context;
  Compression compression_;
  int level_;
  std::unique_ptr<Context> context_;
};

class Decompressor {
 public:
  Decompressor();
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
  // Replaces *out with `in` decompressed per `compression` ("" or "zstd"), which must come to
  // exactly `size` bytes (the chunk's uncompressed_size; the caller has checked it against its
  // limit). kUnimplemented for another compression (lz4), kDataLoss for bad or inconsistent data.
  absl::Status decompress(std::string_view compression, std::span<const std::byte> in,
                          std::uint64_t size, std::vector<std::byte>* out);

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

}  // namespace shmring::record::detail
