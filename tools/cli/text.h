// Text helpers shared by the shmring verbs: JSON strings and one-line error quoting.
#pragma once

#include <string>

namespace shmring::cli {

// Escapes `text` as a JSON string, quotes included.
std::string json_string(const std::string& text);

// `text` with control characters (a newline in a channel name...) written as \n, \xNN: what an
// error message quotes stays on one line.
std::string printable(const std::string& text);

}  // namespace shmring::cli
