#include "compression.h"

#include <zstd.h>

#include "absl/strings/str_cat.h"

namespace shmring::record::detail {

struct Compressor::Context {
  ZSTD_CCtx* cctx = nullptr;
  ~Context() { ZSTD_freeCCtx(cctx); }
};

Compressor::Compressor(Compression compression, int level)
    : compression_(compression), level_(level), context_(std::make_unique<Context>()) {}
Compressor::~Compressor() = default;

std::string_view Compressor::name() const noexcept {
  return compression_ == Compression::kZstd ? "zstd" : "";
}

absl::Status Compressor::compress(std::span<const std::byte> in, std::vector<std::byte>* out) {
  if (compression_ == Compression::kNone) {
    out->assign(in.begin(), in.end());
    return absl::OkStatus();
  }
  if (context_->cctx == nullptr) {
    context_->cctx = ZSTD_createCCtx();
    if (context_->cctx == nullptr) return absl::ResourceExhaustedError("zstd: cannot make a context");
    ZSTD_CCtx_setParameter(context_->cctx, ZSTD_c_compressionLevel, level_);
    ZSTD_CCtx_setParameter(context_->cctx, ZSTD_c_checksumFlag, 0);  // the chunk has its CRC
  }
  out->resize(ZSTD_compressBound(in.size()));
  const std::size_t n = ZSTD_compress2(context_->cctx, out->data(), out->size(), in.data(), in.size());
  if (ZSTD_isError(n)) return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  out->resize(n);
  return absl::OkStatus();
}

struct Decompressor::Context {
  ZSTD_DCtx* dctx = nullptr;
  ~Context() { ZSTD_freeDCtx(dctx); }
};

Decompressor::Decompressor() : context_(std::make_unique<Context>()) {}
Decompressor::~Decompressor() = default;

absl::Status Decompressor::decompress(std::string_view compression, std::span<const std::byte> in,
                                      std::uint64_t size, std::vector<std::byte>* out) {
  if (compression.empty()) {
    if (in.size() != size) {
      return absl::DataLossError(absl::StrCat("uncompressed chunk holds ", in.size(),
                                              " bytes but says ", size));
    }
    out->assign(in.begin(), in.end());
    return absl::OkStatus();
  }
  if (compression != "zstd") {
    return absl::UnimplementedError(absl::StrCat("chunk compression '", std::string(compression),
                                                 "' is not supported (only zstd)"));
  }
  if (context_->dctx == nullptr) {
    context_->dctx = ZSTD_createDCtx();
    if (context_->dctx == nullptr) return absl::ResourceExhaustedError("zstd: cannot make a context");
  }
  // The frame header states its content size (every writer we know writes it): a chunk that
  // says otherwise is refused before anything is allocated for it.
  const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return absl::DataLossError("zstd: not a zstd frame");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != size && ZSTD_findFrameCompressedSize(in.data(), in.size()) == in.size()) {
    return absl::DataLossError(absl::StrCat("zstd frame holds ", declared, " bytes but the chunk says ", size));
  }
  out->resize(static_cast<std::size_t>(size));
  // Decompresses into exactly `size` bytes: a frame that wants more fails (dstSize_tooSmall), so
  // the file's claim bounds the work and the memory.
  const std::size_t n = ZSTD_decompressDCtx(context_->dctx, out->data(), out->size(), in.data(), in.size());
  if (ZSTD_isError(n)) {
    return absl::DataLossError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  }
  if (n != size) {
    return absl::DataLossError(absl::StrCat("zstd chunk decompresses to ", n, " bytes but says ", size));
  }
  return absl::OkStatus();
}

}  // namespace shmring::record::detail
