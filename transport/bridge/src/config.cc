// The bridge's configuration file and channel routes (bridge.h: parse_bridge_config).
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "shmring/core/detail/message.h"
#include "shmring/bridge/bridge.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

absl::Status line_error(int line, std::string_view message) {
  return absl::InvalidArgumentError(cat("line ", line, ": ", message));
}

// Splits at any of `separators`, dropping empty pieces.
std::vector<std::string_view> split(std::string_view text, std::string_view separators) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find_first_of(separators, start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<std::string> words(std::string_view value) {
  std::vector<std::string> out;
  for (std::string_view w : split(value, " \t,")) out.emplace_back(w);
  return out;
}

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

// Where a comment starts: a '#' at the start of the line or after a space or tab (Z85 keys may
// hold '#', never whitespace).
std::size_t comment_start(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return i;
  }
  return std::string_view::npos;
}

template <typename T>
bool parse_number(std::string_view text, T* out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

absl::StatusOr<ChannelRoute> parse_route(std::string_view spec) {
  ChannelRoute r;
  const std::size_t eq = spec.find('=');
  r.remote = std::string(spec.substr(0, eq));
  r.local = eq == std::string_view::npos ? r.remote : std::string(spec.substr(eq + 1));
  for (const std::string& name : {r.remote, r.local}) {
    if (absl::Status s = validate_channel_name(name); !s.ok()) {
      return absl::InvalidArgumentError(cat("channel '", spec, "': ", std::string(s.message())));
    }
  }
  return r;
}

absl::StatusOr<std::string> read_key(std::string_view value_or_path) {
  // Z85 text may hold '/' and '.', so a file that exists wins, and 40 characters are a key.
  const std::string text(value_or_path);
  struct stat st;
  if (value_or_path.size() == 40 && stat(text.c_str(), &st) != 0) return text;
  std::ifstream in{text};
  if (!in) return absl::NotFoundError(cat("cannot read key file '", value_or_path, "'"));
  std::string key;
  in >> key;
  if (key.size() != 40) {
    return absl::InvalidArgumentError(cat("'", value_or_path, "' does not hold a 40-character Z85 key"));
  }
  return key;
}

absl::StatusOr<BridgeConfig> parse_bridge_config(std::string_view text) {
  BridgeConfig config;
  enum class Section { kNone, kExport, kImport } section = Section::kNone;
  int number = 0;
  std::size_t line_start = 0;
  while (line_start < text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    ++number;
    line = trim(line.substr(0, comment_start(line)));
    if (line.empty()) continue;
    if (line == "[export]") {
      section = Section::kExport;
      config.exports.emplace_back();
      continue;
    }
    if (line == "[import]") {
      section = Section::kImport;
      config.imports.emplace_back();
      continue;
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) return line_error(number, "want [export], [import] or key = value");
    const std::string_view key = trim(line.substr(0, eq));
    const std::string_view value = trim(line.substr(eq + 1));
    if (section == Section::kNone) return line_error(number, "key outside an [export] or [import] section");
    CarrierOptions& carrier =
        section == Section::kExport ? config.exports.back().carrier : config.imports.back().carrier;
    auto key_value = [&](std::string* out) -> absl::Status {
      absl::StatusOr<std::string> k = read_key(value);
      if (!k.ok()) return line_error(number, std::string(k.status().message()));
      *out = *k;
      return absl::OkStatus();
    };
    absl::Status s = absl::OkStatus();
    std::uint32_t n = 0;
    if (key == "channels") {
      for (const std::string& w : words(value)) {
        if (section == Section::kExport) {
          if (absl::Status v = validate_channel_name(w); !v.ok()) return line_error(number, std::string(v.message()));
          config.exports.back().channels.push_back(w);
        } else {
          absl::StatusOr<ChannelRoute> r = parse_route(w);
          if (!r.ok()) return line_error(number, std::string(r.status().message()));
          config.imports.back().channels.push_back(*r);
        }
      }
    } else if (key == "bind" && section == Section::kExport) {
      config.exports.back().bind = std::string(value);
    } else if (key == "connect" && section == Section::kImport) {
      config.imports.back().connect = std::string(value);
    } else if (key == "max_rate" && section == Section::kExport) {
      double rate = 0;
      if (!parse_number(value, &rate) || rate < 0) return line_error(number, "max_rate: want a number >= 0");
      config.exports.back().max_rate = rate;
    } else if (key == "queue_window" || key == "high_water_mark") {
      const std::uint32_t most = key == "queue_window" ? kMaxQueueWindow : (1u << 20);
      if (!parse_number(value, &n) || n == 0 || n > most) {
        return line_error(number, cat(key, ": want a whole number from 1 to ", most));
      }
      if (key == "high_water_mark") {
        carrier.high_water_mark = static_cast<int>(n);
      } else if (section == Section::kExport) {
        config.exports.back().queue_window = n;
      } else {
        config.imports.back().queue_window = n;
      }
    } else if (key == "curve_secret_key") {
      s = key_value(&carrier.security.secret_key);
    } else if (key == "curve_server_key" && section == Section::kImport) {
      s = key_value(&carrier.security.server_public_key);
    } else if (key == "curve_authorized" && section == Section::kExport) {
      for (const std::string& w : words(value)) {
        absl::StatusOr<std::string> k = read_key(w);
        if (!k.ok()) return line_error(number, std::string(k.status().message()));
        carrier.security.authorized_clients.push_back(*k);
      }
    } else {
      return line_error(number, cat("unknown key '", key, "' in this section"));
    }
    if (!s.ok()) return s;
  }
  for (const ExportSpec& e : config.exports) {
    if (e.bind.empty()) return absl::InvalidArgumentError("an [export] section has no bind");
    if (e.channels.empty()) return absl::InvalidArgumentError("an [export] section has no channels");
  }
  for (const ImportSpec& i : config.imports) {
    if (i.connect.empty()) return absl::InvalidArgumentError("an [import] section has no connect");
    if (i.channels.empty()) return absl::InvalidArgumentError("an [import] section has no channels");
  }
  return config;
}

absl::StatusOr<BridgeConfig> load_bridge_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(cat("cannot read '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<BridgeConfig> config = parse_bridge_config(text.str());
  if (!config.ok()) return absl::InvalidArgumentError(cat(path, ": ", std::string(config.status().message())));
  return config;
}

}  // namespace shmring::bridge
