// Random 128-bit ids that name files in the shared directory (not an application API).
//
// Names in /dev/shm that other users could guess can be taken first (a squatter makes the file
// before its owner does). The companion files of a channel (docs/security.md: its liveness file,
// each endpoint's lifeline and wake-up socket) are therefore named by ids from getrandom(), and
// whoever needs a name reads it from where its owner recorded it after making the file.
#pragma once

#include <cstdint>
#include <string>

namespace shmring::detail {

struct RandomId {
  std::uint64_t words[2] = {0, 0};
  // Never 0 in a made id: words[1] doubles as "recorded" in the places ids are published.
  bool empty() const noexcept { return words[1] == 0; }
  friend bool operator==(const RandomId&, const RandomId&) = default;
};

// A fresh id from getrandom() (words[1] never 0).
RandomId random_id() noexcept;
// 32 lower-case hex digits.
std::string to_hex(const RandomId& id);
// Parses what to_hex() wrote; false for anything else.
bool from_hex(std::string_view text, RandomId* id) noexcept;

}  // namespace shmring::detail
