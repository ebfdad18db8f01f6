#include "shmring/core/detail/random_id.h"

#include <sys/random.h>

#include <cstdio>

namespace shmring::detail {

RandomId random_id() noexcept {
  RandomId id;
  while (id.empty()) {
    if (getrandom(id.words, sizeof id.words, 0) != static_cast<ssize_t>(sizeof id.words)) {
      id = RandomId{};
    }
  }
  return id;
}

std::string to_hex(const RandomId& id) {
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(id.words[0]),
                static_cast<unsigned long long>(id.words[1]));
  return text;
}

bool from_hex(std::string_view text, RandomId* id) noexcept {
  if (text.size() != 32) return false;
  RandomId parsed;
  for (std::size_t i = 0; i < 32; ++i) {
    const char c = text[i];
    std::uint64_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    std::uint64_t& word = parsed.words[i / 16];
    word = (word << 4) | digit;
  }
  *id = parsed;
  return true;
}

}  // namespace shmring::detail
