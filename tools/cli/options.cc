#include "options.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "commands.h"
#include "text.h"

namespace shmring::cli {
namespace {

// "1G", "64K", "100": the largest binary suffix that divides `bytes` exactly.
std::string size_text(std::uint64_t bytes) {
  for (const auto& [shift, suffix] : {std::pair{30, "G"}, std::pair{20, "M"}, std::pair{10, "K"}}) {
    const std::uint64_t unit = std::uint64_t{1} << shift;
    if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
  }
  return std::to_string(bytes);
}

// "500ms", "1h", "365d": the largest unit that divides `ms` exactly.
std::string duration_text(std::chrono::milliseconds ms) {
  const std::int64_t n = ms.count();
  for (const auto& [per, unit] : {std::pair<std::int64_t, const char*>{86'400'000, "d"},
                                  {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}}) {
    if (n != 0 && n % per == 0) return std::to_string(n / per) + unit;
  }
  return std::to_string(n) + "ms";
}

std::string refusal(const std::string& what, const std::string& text) {
  return "needs " + what + ", not '" + printable(text) + "'";
}

std::optional<std::int64_t> parse_integer(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (end == nullptr || *end != '\0' || errno == ERANGE || std::isspace(static_cast<unsigned char>(text[0]))) {
    return std::nullopt;
  }
  return parsed;
}

std::optional<mode_t> parse_mode(const std::string& text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("01234567") != std::string::npos) {
    return std::nullopt;
  }
  const unsigned long bits = std::strtoul(text.c_str(), nullptr, 8);
  if (bits > 07777) return std::nullopt;
  return static_cast<mode_t>(bits);
}

// A validator from a function returning the refusal (empty when the value is fine).
CLI::Validator checker(std::function<std::string(const std::string&)> check) {
  return CLI::Validator([check = std::move(check)](std::string& value) { return check(value); }, "");
}

std::map<const CLI::App*, std::string>& long_descriptions() {
  static std::map<const CLI::App*, std::string> table;
  return table;
}

std::map<const CLI::Option*, std::vector<std::string>>& choice_table() {
  static std::map<const CLI::Option*, std::vector<std::string>> table;
  return table;
}

// Usage lines list every option: "usage: shmring stat [--json] [--interval DURATION] NAME".
class UsageFormatter : public CLI::Formatter {
 public:
  // Positionals are words, not typed values: "NAME... (required)" rather than "NAME TEXT ...".
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (!opt->get_positional()) return CLI::Formatter::make_option_opts(opt);
    std::string out = opt->get_expected_max() > 1 ? "..." : "";
    if (opt->get_required()) out += " " + get_label("REQUIRED");
    return out;
  }

  // A verb's own --help starts with its long description; lists of verbs show the short one.
  std::string make_description(const CLI::App* app) const override {
    const std::string text = long_description(app);
    return text.empty() ? std::string() : text + "\n";
  }

  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string line = "usage: " + name;
    std::string out;
    auto add = [&](const std::string& word) {
      if (line.size() + 1 + word.size() > 100) {
        out += line + "\n";
        line = std::string(7 + name.size(), ' ');
      }
      line += " " + word;
    };
    for (const CLI::Option* opt : app->get_options()) {
      if (opt->get_positional() || opt->get_group().empty() || opt == app->get_help_ptr()) continue;
      std::string word = opt->get_name(false, true);
      if (const auto comma = word.find(','); comma != std::string::npos) word = word.substr(comma + 1);
      if (opt->get_type_size() != 0 && !opt->get_type_name().empty()) word += " " + opt->get_type_name();
      add(opt->get_required() ? word : "[" + word + "]");
    }
    for (const CLI::Option* opt : app->get_options()) {
      if (!opt->get_positional()) continue;
      const std::string word = opt->get_name() + (opt->get_expected_max() > 1 ? "..." : "");
      add(opt->get_required() ? word : "[" + word + "]");
    }
    for (const CLI::App* sub : app->get_subcommands({})) {
      if (!sub->get_group().empty()) {
        add(app->get_require_subcommand_min() > 0 ? "COMMAND ..." : "[COMMAND ...]");
        break;
      }
    }
    return out + line + "\n";
  }
};

}  // namespace

std::optional<std::uint64_t> parse_size(const std::string& text) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long number = std::strtoull(text.c_str(), &end, 10);
  if (errno == ERANGE) return std::nullopt;
  std::string suffix(end);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.pop_back();
  if (suffix.size() == 2 && suffix[1] == 'i') suffix.pop_back();  // KiB, MiB, GiB
  std::uint64_t factor = 1;
  if (suffix == "K" || suffix == "k") {
    factor = std::uint64_t{1} << 10;
  } else if (suffix == "M" || suffix == "m") {
    factor = std::uint64_t{1} << 20;
  } else if (suffix == "G" || suffix == "g") {
    factor = std::uint64_t{1} << 30;
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  std::uint64_t total = 0;
  if (__builtin_mul_overflow(number, factor, &total)) return std::nullopt;
  return total;
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text, BareUnit bare) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) {
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  const double number = std::strtod(text.c_str(), &end);
  if (errno == ERANGE || end == text.c_str()) return std::nullopt;
  const std::string unit(end);
  double ms_per_unit = 0;
  if (unit.empty()) {
    ms_per_unit = bare == BareUnit::kSeconds ? 1000 : 1;
  } else if (unit == "us") {
    ms_per_unit = 0.001;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "m" || unit == "min") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else {
    return std::nullopt;
  }
  const double ms = std::ceil(number * ms_per_unit);
  // 2^63 ms is far beyond any option's range; staying below it keeps the conversion defined.
  if (!std::isfinite(ms) || ms < 0 || ms >= 9.2e18) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

namespace {

// An option whose text `parse` turns into a value (nullopt: malformed) that `accept` must like;
// refused values are reported as needing `what`.
template <typename T, typename Parse, typename Accept>
CLI::Option* add_parsed(CLI::App& app, const std::string& name, T* target, Parse parse, Accept accept,
                        const std::string& what, const std::string& type, const std::string& help) {
  return app
      .add_option_function<std::string>(
          name, [target, parse](const std::string& text) { *target = *parse(text); }, help)
      ->check(checker([=](const std::string& text) {
        const auto value = parse(text);
        return value && accept(*value) ? std::string() : refusal(what, text);
      }))
      ->type_name(type);
}

}  // namespace

CLI::Option* add_integer(CLI::App& app, const std::string& name, std::int64_t* target, std::int64_t min,
                         std::int64_t max, const std::string& help) {
  return add_parsed(
      app, name, target, parse_integer, [=](std::int64_t n) { return n >= min && n <= max; },
      "a whole number from " + std::to_string(min) + " to " + std::to_string(max), "N", help);
}

CLI::Option* add_size(CLI::App& app, const std::string& name, std::uint64_t* target, std::uint64_t min,
                      std::uint64_t max, const std::string& help) {
  return add_parsed(
      app, name, target, parse_size, [=](std::uint64_t n) { return n >= min && n <= max; },
      "a size from " + size_text(min) + " to " + size_text(max) + " bytes (a number with an optional K, M or G)",
      "SIZE", help);
}

CLI::Option* add_duration(CLI::App& app, const std::string& name, std::chrono::milliseconds* target,
                          BareUnit bare, std::chrono::milliseconds max, const std::string& help) {
  return add_parsed(
      app, name, target, [bare](const std::string& text) { return parse_duration(text, bare); },
      [=](std::chrono::milliseconds d) { return d <= max; },
      "a duration from 0 to " + duration_text(max) + " (a number with us, ms, s, m or h; a bare number is in " +
          (bare == BareUnit::kSeconds ? "s" : "ms") + ")",
      "DURATION", help);
}

CLI::Option* add_mode(CLI::App& app, const std::string& name, mode_t* target, const std::string& help) {
  return add_parsed(
      app, name, target, parse_mode, [](mode_t) { return true; },
      "octal mode bits of at most 7777, such as 600 or 0644", "MODE", help);
}

namespace {

std::optional<uid_t> parse_user(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
    errno = 0;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (errno != 0 || value >= static_cast<unsigned long long>(static_cast<uid_t>(-1))) return std::nullopt;
    return static_cast<uid_t>(value);
  }
  const passwd* entry = getpwnam(text.c_str());
  if (entry == nullptr) return std::nullopt;
  return entry->pw_uid;
}

}  // namespace

CLI::Option* add_users(CLI::App& app, const std::string& name, std::vector<uid_t>* target,
                       const std::string& help) {
  return app
      .add_option_function<std::vector<std::string>>(
          name,
          [target](const std::vector<std::string>& texts) {
            for (const std::string& t : texts) target->push_back(*parse_user(t));
          },
          help)
      ->check(checker([](const std::string& text) {
        return parse_user(text) ? std::string() : refusal("a user name or uid", text);
      }))
      ->type_name("USER")
      ->allow_extra_args(false)
      ->take_all();
}

CLI::Option* add_choice(CLI::App& app, const std::string& name, std::string* target,
                        std::vector<std::string> choices, const std::string& help) {
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
  CLI::Option* option =
      app.add_option(name, *target, help)
          ->check(checker([choices, list](const std::string& text) {
            return std::find(choices.begin(), choices.end(), text) != choices.end()
                       ? std::string()
                       : refusal("one of " + list, text);
          }))
          ->type_name("WORD");
  choice_table()[option] = std::move(choices);
  return option;
}

CLI::Option* add_directory(CLI::App& app, const std::string& name, std::string* target,
                           const std::string& help) {
  return app.add_option(name, *target, help)
      ->check(checker([](const std::string& dir) {
        struct stat st {};
        if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "no such directory: " + printable(dir);
        if (access(dir.c_str(), R_OK | X_OK) != 0) return "cannot read directory " + printable(dir);
        return std::string();
      }))
      ->type_name("DIR");
}

void set_long_description(CLI::App* app, const std::string& text) { long_descriptions()[app] = text; }

std::string long_description(const CLI::App* app) {
  const auto it = long_descriptions().find(app);
  return it == long_descriptions().end() ? app->get_description() : it->second;
}

const std::vector<std::string>* choices_of(const CLI::Option* option) {
  const auto it = choice_table().find(option);
  return it == choice_table().end() ? nullptr : &it->second;
}

std::shared_ptr<CLI::Formatter> make_formatter() {
  auto formatter = std::make_shared<UsageFormatter>();
  formatter->column_width(28);
  formatter->label("REQUIRED", "(required)");
  return formatter;
}

std::string usage_message(const CLI::ParseError& error) {
  std::string what = error.what();
  if (what.rfind(": ", 0) == 0) what = what.substr(2);  // a hidden option's message names it itself
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) {
    // "The following argument(s) was/were not expected: --bogus 3": name the first one.
    const auto colon = what.find(": ");
    const std::string rest = colon == std::string::npos ? what : what.substr(colon + 2);
    const std::string first = rest.substr(0, rest.find(' '));
    if (first.rfind("-", 0) == 0) return "unknown option " + first;
    return "unexpected argument '" + first + "'";
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr && what.size() > 8 && what.compare(what.size() - 7, 7, "missing") == 0) {
    return "option " + what.substr(0, what.find(':')) + " needs a value";  // "--count: 1 required N missing"
  }
  return what;
}

std::optional<int> parse_words(CLI::App& app, const std::string& command, std::vector<std::string> words) {
  std::reverse(words.begin(), words.end());  // CLI11 takes them last first
  try {
    app.parse(words);
  } catch (const CLI::CallForHelp&) {
    const std::string prefix = command.find(' ') == std::string::npos ? "shmring" : "shmring " + command.substr(0, command.rfind(' '));
    std::fputs(app.help(prefix).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& error) {
    return report_error(command, usage_message(error), 2);
  }
  return std::nullopt;
}

}  // namespace shmring::cli
