// Strings from outside (channel and file names, keys, messages that quote them) made safe to show
// (not an application API). Another local user chooses the names in /dev/shm: a name may hold
// escape sequences that retitle or clear an operator's terminal, newlines that forge lines, and
// bytes that are not UTF-8. Everything the tools and the bridge print goes through one of these.
#pragma once

#include <string>
#include <string_view>

namespace shmring::detail {

// For a terminal or a log line: valid UTF-8 is kept; control characters (C0, DEL and the C1
// range U+0080..U+009F, which terminals also obey) become \n, \t, \r or \xNN / \u{NN}, and bytes
// that are not UTF-8 become \xNN. The result is one printable line, and applying it again changes
// nothing (backslashes are left as they are: a terminal does not act on them).
std::string terminal_safe(std::string_view text);

// A JSON string literal, quotes included, that is always valid JSON and valid UTF-8: control
// characters are \u escapes, and bytes that are not UTF-8 become U+FFFD (each one).
std::string json_quote(std::string_view text);

}  // namespace shmring::detail
