#include "args.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace shmring::cli {

Args::Args(std::vector<std::string> argv, std::set<std::string> flags,
           std::set<std::string> options) {
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (flags.count(name) != 0 && !inline_value) {
      flags_.insert(name);
    } else if (options.count(name) != 0) {
      if (inline_value) {
        values_[name] = *inline_value;
      } else if (i + 1 < argv.size()) {
        values_[name] = argv[++i];
      } else {
        error_ = "option --" + name + " needs a value";
        return;
      }
    } else {
      error_ = "unknown option --" + name;
      return;
    }
  }
}

std::optional<std::string> Args::value(const std::string& option) const {
  const auto it = values_.find(option);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

void Args::fail(const std::string& option, const std::string& text, const std::string& what) {
  if (error_.empty()) error_ = "option --" + option + " needs " + what + ", not '" + printable(text) + "'";
}

std::int64_t Args::integer(const std::string& option, std::int64_t fallback, std::int64_t min,
                           std::int64_t max) {
  const std::optional<std::string> text = value(option);
  if (!text) return fallback;
  const std::string range = min == std::numeric_limits<std::int64_t>::min()
                                ? "a whole number"
                                : "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || end == nullptr || *end != '\0' || errno == ERANGE || parsed < min ||
      parsed > max) {
    fail(option, *text, range);
    return fallback;
  }
  return parsed;
}

std::uint64_t Args::bytes(const std::string& option, std::uint64_t fallback, std::uint64_t min,
                          std::uint64_t max) {
  const std::optional<std::string> text = value(option);
  if (!text) return fallback;
  const std::string what = "a size from " + std::to_string(min) + " to " + std::to_string(max) +
                           " bytes (suffixes K, M, G)";
  if (text->empty() || !std::isdigit(static_cast<unsigned char>((*text)[0]))) {
    fail(option, *text, what);
    return fallback;
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long number = std::strtoull(text->c_str(), &end, 10);
  std::string suffix(end);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.pop_back();
  if (suffix.size() == 2 && suffix[1] == 'i') suffix.pop_back();  // KiB, MiB, GiB
  std::uint64_t factor = 1;
  if (suffix == "K" || suffix == "k") {
    factor = 1ULL << 10;
  } else if (suffix == "M" || suffix == "m") {
    factor = 1ULL << 20;
  } else if (suffix == "G" || suffix == "g") {
    factor = 1ULL << 30;
  } else if (!suffix.empty()) {
    fail(option, *text, what);
    return fallback;
  }
  std::uint64_t total = 0;
  if (errno == ERANGE || __builtin_mul_overflow(number, factor, &total) || total < min || total > max) {
    fail(option, *text, what);
    return fallback;
  }
  return total;
}

std::chrono::milliseconds Args::duration(const std::string& option, std::chrono::milliseconds fallback,
                                         const std::string& bare_unit, std::chrono::milliseconds max) {
  const std::optional<std::string> text = value(option);
  if (!text) return fallback;
  const std::string what = "a duration from 0 to " + std::to_string(max.count()) +
                           " ms (a number with us, ms, s, m or h; a bare number is in " + bare_unit + ")";
  if (text->empty() || !(std::isdigit(static_cast<unsigned char>((*text)[0])) || (*text)[0] == '.')) {
    fail(option, *text, what);
    return fallback;
  }
  char* end = nullptr;
  errno = 0;
  const double number = std::strtod(text->c_str(), &end);
  std::string unit(end);
  if (unit.empty()) unit = bare_unit;
  double ms_per_unit = 0;
  if (unit == "us") {
    ms_per_unit = 0.001;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "m" || unit == "min") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  }
  const double ms = number * ms_per_unit;
  if (errno == ERANGE || ms_per_unit == 0 || !std::isfinite(ms) || ms < 0 ||
      ms > static_cast<double>(max.count())) {
    fail(option, *text, what);
    return fallback;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(ms)));
}

mode_t Args::mode(const std::string& option, mode_t fallback) {
  const std::optional<std::string> text = value(option);
  if (!text) return fallback;
  if (text->empty() || text->size() > 5 ||
      text->find_first_not_of("01234567") != std::string::npos) {
    fail(option, *text, "octal mode bits such as 600 or 0644");
    return fallback;
  }
  const unsigned long bits = std::strtoul(text->c_str(), nullptr, 8);
  if (bits > 07777) {
    fail(option, *text, "octal mode bits of at most 7777");
    return fallback;
  }
  return static_cast<mode_t>(bits);
}

std::string Args::choice(const std::string& option, const std::string& fallback,
                         const std::set<std::string>& choices) {
  const std::optional<std::string> text = value(option);
  if (!text) return fallback;
  if (choices.count(*text) == 0) {
    std::string list;
    for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
    fail(option, *text, "one of " + list);
    return fallback;
  }
  return *text;
}

std::string printable(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace shmring::cli
