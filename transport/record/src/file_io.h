// Private: the few file operations the writer, reader and recovery share, with errno turned into
// absl::Status (the path and the operation named).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shmring::record::detail {

// The status for errno `err` of `op` on `path` (ENOENT: kNotFound, EEXIST: kAlreadyExists,
// EACCES/EPERM: kPermissionDenied, ENOSPC/EDQUOT: kResourceExhausted, else kInternal).
absl::Status errno_status(int err, const std::string& op, const std::string& path);

// Writes all of `bytes` (retrying short writes and EINTR).
absl::Status write_all(int fd, std::span<const std::byte> bytes, const std::string& path);
// Reads exactly `out.size()` bytes at `offset`; kDataLoss if the file ends first.
absl::Status read_exact(int fd, std::uint64_t offset, std::span<std::byte> out, const std::string& path);

// An open file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace shmring::record::detail
