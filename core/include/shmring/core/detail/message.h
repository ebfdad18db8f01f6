// Error and log messages built from pieces: cat("channel '", name, "': ", count, " slots").
// (The system Abseil's StrCat takes neither std::string_view nor bool under C++20.)
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

namespace shmring::detail {

inline void append_piece(std::string& out, std::string_view piece) { out.append(piece); }
inline void append_piece(std::string& out, const char* piece) { out.append(piece); }
inline void append_piece(std::string& out, const std::string& piece) { out.append(piece); }
inline void append_piece(std::string& out, bool value) { out.append(value ? "true" : "false"); }
template <typename T>
  requires std::is_integral_v<T>
void append_piece(std::string& out, T value) {
  out.append(std::to_string(value));
}

template <typename... Pieces>
std::string cat(const Pieces&... pieces) {
  std::string out;
  (append_piece(out, pieces), ...);
  return out;
}

}  // namespace shmring::detail
