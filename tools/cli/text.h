// Text helpers shared by the shmring verbs: JSON strings and one-line error quoting.
#pragma once

#include <string>

namespace shmring::cli {

// Escapes `text` as a JSON string, quotes included: always valid JSON and UTF-8 (core's
// detail::json_quote).
std::string json_string(const std::string& text);

// `text` safe for a terminal (core's detail::terminal_safe): control characters and bytes that
// are not UTF-8 escaped, so a name another user chose can neither drive the operator's terminal
// nor forge lines. Every untrusted string a verb prints goes through it.
std::string printable(const std::string& text);

}  // namespace shmring::cli
