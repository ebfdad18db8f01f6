// CURVE key files (bridge.h: read_key, write_key_files): what a key option's value means, and
// files made and read the way ssh treats its keys (a secret key is the owner's alone).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "shmring/bridge/bridge.h"
#include "shmring/core/detail/message.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr std::size_t kKeyLength = 40;
constexpr std::size_t kMaxKeyFile = 4096;  // a key file is a comment line and a key

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

// Z85 holds '/' and '.', so a path can pass for a key: only text that could not be a path is.
bool looks_like_key_text(std::string_view text) {
  return text.size() == kKeyLength && text.find_first_not_of(kZ85Alphabet) == std::string_view::npos &&
         text[0] != '/' && text[0] != '.' && !ends_with(text, ".key") && !ends_with(text, ".pub");
}

// The first key in `text` (lines; '#' lines are comments), or why there is none.
absl::StatusOr<std::string> key_in(std::string_view text, const std::string& path, KeyKind kind) {
  const bool secret = kind == KeyKind::kSecret;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = trim(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
    if (line == (secret ? kPublicKeyMarker : kSecretKeyMarker)) {
      return absl::InvalidArgumentError(cat("'", path, "' holds a ", secret ? "public" : "secret", " key: give ",
                                            secret ? "this side's secret key" : "the peer's public key"));
    }
    if (line.empty() || line[0] == '#') continue;
    const std::string_view key = line.substr(0, line.find_first_of(" \t"));
    if (key.size() == kKeyLength) return std::string(key);
    break;
  }
  return absl::InvalidArgumentError(cat("'", path, "' does not hold a 40-character Z85 key"));
}

absl::StatusOr<std::string> read_key_file(const std::string& path, KeyKind kind) {
  const bool secret = kind == KeyKind::kSecret;
  if (secret && ends_with(path, ".pub")) {
    return absl::InvalidArgumentError(cat("'", path, "' is a public key file: give this side's secret key (.key)"));
  }
  if (!secret && ends_with(path, ".key")) {
    return absl::InvalidArgumentError(cat("'", path, "' is a secret key file: give the peer's public key (.pub)"));
  }
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return absl::NotFoundError(cat("cannot read key file '", path, "': ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(cat("'", path, "' is not a regular file"));
  }
  // As ssh does: a secret key others may read is not a secret; refuse it rather than use it.
  if (secret && (st.st_mode & 077) != 0) {
    close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::PermissionDeniedError(cat("the secret key file '", path, "' may be read by others (mode ", mode,
                                           "): chmod 600 it"));
  }
  char buffer[kMaxKeyFile];
  const ssize_t n = read(fd, buffer, sizeof buffer);
  close(fd);
  if (n < 0) return absl::NotFoundError(cat("cannot read key file '", path, "': ", std::strerror(errno)));
  return key_in(std::string_view(buffer, static_cast<std::size_t>(n)), path, kind);
}

// Creates `path` anew (never an existing file, never through a symbolic link) with `mode`, and
// writes `text` into it.
absl::Status write_new_file(const std::string& path, mode_t mode, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    return errno == EEXIST ? absl::AlreadyExistsError(cat("'", path, "' exists (or is a link): not overwritten"))
                           : absl::PermissionDeniedError(cat("cannot create '", path, "': ", std::strerror(errno)));
  }
  // The mode asked for, whatever the umask (it can only have taken bits away).
  bool ok = fchmod(fd, mode) == 0;
  for (std::size_t done = 0; ok && done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = fsync(fd) == 0 && ok;
  close(fd);
  if (!ok) {
    const int error = errno;
    unlink(path.c_str());
    return absl::UnavailableError(cat("cannot write '", path, "': ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> read_key(std::string_view value_or_path, KeyKind kind) {
  const std::string text(value_or_path);
  struct stat st;
  if (stat(text.c_str(), &st) == 0) return read_key_file(text, kind);
  if (looks_like_key_text(text)) return text;
  return absl::NotFoundError(cat("no key file '", value_or_path,
                                 "' (a key is a file, or its 40 characters of Z85 text)"));
}

absl::Status write_key_files(const std::string& prefix, const CurveKeys& keys) {
  const std::string secret = prefix + ".key";
  const std::string pub = prefix + ".pub";
  if (absl::Status s = write_new_file(secret, 0600, cat(kSecretKeyMarker, "\n", keys.secret_key, "\n")); !s.ok()) {
    return s;
  }
  if (absl::Status s = write_new_file(pub, 0644, cat(kPublicKeyMarker, "\n", keys.public_key, "\n")); !s.ok()) {
    unlink(secret.c_str());  // a pair or nothing
    return s;
  }
  return absl::OkStatus();
}

}  // namespace shmring::bridge
