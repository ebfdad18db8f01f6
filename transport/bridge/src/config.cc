// The bridge's configuration file and channel routes (bridge.h: parse_bridge_config).

#include <algorithm>
#include <charconv>
#include <chrono>
#include <utility>
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

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

template <typename T>
bool parse_number(std::string_view text, T* out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

// One `key = value` line of a section.
struct Entry {
  int line = 0;
  std::string_view key;
  std::string_view value;
};

absl::Status entry_error(const Entry& e, absl::string_view message) { return line_error(e.line, std::string(message)); }

absl::Status read_key_into(const Entry& e, KeyKind kind, std::string* out) {
  absl::StatusOr<std::string> k = read_key(e.value, kind);
  if (!k.ok()) return entry_error(e, k.status().message());
  *out = *k;
  return absl::OkStatus();
}

// A whole number from 1 to `most`.
absl::Status read_count(const Entry& e, std::uint32_t most, std::uint32_t* out) {
  if (!parse_number(e.value, out) || *out == 0 || *out > most) {
    return entry_error(e, cat(e.key, ": want a whole number from 1 to ", most));
  }
  return absl::OkStatus();
}

// A duration: a number with a unit (ms, s, m, h; bare: seconds), fractions allowed, 0..24 h.
absl::Status read_duration(const Entry& e, std::chrono::milliseconds* out) {
  std::string_view text = e.value;
  double scale = 1000;
  for (const auto& [unit, ms] : {std::pair<std::string_view, double>{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}}) {
    if (ends_with(text, unit)) {
      text.remove_suffix(unit.size());
      scale = ms;
      break;
    }
  }
  double value = 0;
  if (!parse_number(trim(text), &value) || value < 0 || value * scale > 86'400'000) {
    return entry_error(e, cat(e.key, ": want a duration such as 30s or 500ms, at most 24h"));
  }
  *out = std::chrono::milliseconds(static_cast<std::int64_t>(value * scale));
  return absl::OkStatus();
}

// A byte count with an optional binary suffix (K, M, G), 1..kMaxTopicWindow.
absl::Status read_window(const Entry& e, std::uint64_t* out) {
  std::string_view text = e.value;
  std::uint64_t scale = 1;
  if (!text.empty() && (text.back() == 'K' || text.back() == 'M' || text.back() == 'G')) {
    scale = text.back() == 'K' ? 1u << 10 : text.back() == 'M' ? 1u << 20 : 1u << 30;
    text.remove_suffix(1);
  }
  std::uint64_t n = 0;
  if (!parse_number(text, &n) || n == 0 || n > kMaxTopicWindow / scale) {
    return entry_error(e, cat(e.key, ": want a size from 1 to 1G (bytes, or with K, M, G)"));
  }
  *out = n * scale;
  return absl::OkStatus();
}

// Keys both sections take. kNotFound: not one of them.
absl::Status apply_shared_key(const Entry& e, CarrierOptions* carrier, std::uint32_t* queue_window,
                              std::uint64_t* topic_window) {
  if (e.key == "queue_window") return read_count(e, kMaxQueueWindow, queue_window);
  if (e.key == "topic_window") return read_window(e, topic_window);
  if (e.key == "high_water_mark") {
    std::uint32_t n = 0;
    if (absl::Status s = read_count(e, 1u << 20, &n); !s.ok()) return s;
    carrier->high_water_mark = static_cast<int>(n);
    return absl::OkStatus();
  }
  if (e.key == "curve_secret_key") return read_key_into(e, KeyKind::kSecret, &carrier->security.secret_key);
  return absl::NotFoundError(cat("unknown key '", e.key, "' in this section"));
}

absl::Status apply_export_key(const Entry& e, ExportSpec* spec) {
  if (e.key == "channels") {
    for (const std::string& w : words(e.value)) {
      if (absl::Status v = validate_channel_name(w); !v.ok()) return entry_error(e, v.message());
      spec->channels.push_back(w);
    }
  } else if (e.key == "bind") {
    spec->bind = std::string(e.value);
  } else if (e.key == "max_rate") {
    double rate = 0;
    if (!parse_number(e.value, &rate) || rate < 0) return entry_error(e, "max_rate: want a number >= 0");
    spec->max_rate = rate;
  } else if (e.key == "evict_after") {
    return read_duration(e, &spec->evict_after);
  } else if (e.key == "ack_timeout") {
    return read_duration(e, &spec->ack_timeout);
  } else if (e.key == "curve_authorized") {
    for (const std::string& w : words(e.value)) {
      absl::StatusOr<std::string> k = read_key(w, KeyKind::kPublic);
      if (!k.ok()) return entry_error(e, k.status().message());
      spec->carrier.security.authorized_clients.push_back(*k);
    }
  } else {
    return apply_shared_key(e, &spec->carrier, &spec->queue_window, &spec->topic_window);
  }
  return absl::OkStatus();
}

absl::Status apply_import_key(const Entry& e, ImportSpec* spec) {
  if (e.key == "channels") {
    for (const std::string& w : words(e.value)) {
      absl::StatusOr<ChannelRoute> r = parse_route(w);
      if (!r.ok()) return entry_error(e, r.status().message());
      spec->channels.push_back(*r);
    }
  } else if (e.key == "connect") {
    spec->connect = std::string(e.value);
  } else if (e.key == "curve_server_key") {
    return read_key_into(e, KeyKind::kPublic, &spec->carrier.security.server_public_key);
  } else {
    return apply_shared_key(e, &spec->carrier, &spec->queue_window, &spec->topic_window);
  }
  return absl::OkStatus();
}

// Every section has its address and at least one channel.
absl::Status check_sections(const BridgeConfig& config) {
  for (const ExportSpec& e : config.exports) {
    if (e.bind.empty()) return absl::InvalidArgumentError("an [export] section has no bind");
    if (e.channels.empty()) return absl::InvalidArgumentError("an [export] section has no channels");
  }
  for (const ImportSpec& i : config.imports) {
    if (i.connect.empty()) return absl::InvalidArgumentError("an [import] section has no connect");
    if (i.channels.empty()) return absl::InvalidArgumentError("an [import] section has no channels");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ChannelRoute> parse_route(std::string_view spec) {
  if (spec.find_first_of("*?[") != std::string_view::npos) {
    return absl::InvalidArgumentError(cat("channel '", spec, "' is a pattern: an import names each channel it "
                                          "wants (patterns are for exports, as in export 'md.*')"));
  }
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

absl::StatusOr<BridgeConfig> parse_bridge_config(std::string_view text) {
  BridgeConfig config;
  enum class Section { kNone, kExport, kImport } section = Section::kNone;
  int number = 0;
  for (std::size_t line_start = 0; line_start < text.size();) {
    std::size_t line_end = std::min(text.find('\n', line_start), text.size());
    std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    ++number;
    line = trim(line.substr(0, comment_start(line)));
    if (line.empty()) continue;
    if (line == "[export]" || line == "[import]") {
      section = line == "[export]" ? Section::kExport : Section::kImport;
      if (section == Section::kExport) config.exports.emplace_back();
      if (section == Section::kImport) config.imports.emplace_back();
      continue;
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) return line_error(number, "want [export], [import] or key = value");
    if (section == Section::kNone) return line_error(number, "key outside an [export] or [import] section");
    const Entry entry{number, trim(line.substr(0, eq)), trim(line.substr(eq + 1))};
    absl::Status s = section == Section::kExport ? apply_export_key(entry, &config.exports.back())
                                                 : apply_import_key(entry, &config.imports.back());
    if (absl::IsNotFound(s)) return entry_error(entry, s.message());
    if (!s.ok()) return s;
  }
  if (absl::Status s = check_sections(config); !s.ok()) return s;
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
