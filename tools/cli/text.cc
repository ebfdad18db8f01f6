#include "text.h"

#include <cstdio>

#include "commands.h"
#include "shmring/core/detail/text.h"

namespace shmring::cli {

std::string printable(const std::string& text) { return detail::terminal_safe(text); }

std::string json_string(const std::string& text) { return detail::json_quote(text); }

int report_error(const std::string& verb, const std::string& message, int status) {
  // One line, whatever the message quotes (a name with a newline, a key with control bytes).
  std::fprintf(stderr, "shmring %s: %s\n", printable(verb).c_str(), printable(message).c_str());
  return status;
}

}  // namespace shmring::cli
