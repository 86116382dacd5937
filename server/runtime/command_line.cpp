#include "runtime/command_line.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "runtime/config.hpp"

namespace tandem {
namespace {

// --help shows each flag as "--name TYPE   what it does [default: X] [env: TANDEM_NAME]".
class HelpFormatter : public CLI::Formatter {
 public:
  // A switch is declared as --name{on} (its value when given alone); --help shows --name.
  std::string make_option_name(const CLI::Option* option, bool positional) const override {
    std::string name = CLI::Formatter::make_option_name(option, positional);
    return name.substr(0, name.find('{'));
  }
  std::string make_option_opts(const CLI::Option* option) const override {
    return option->get_type_name().empty() ? "" : " " + option->get_type_name();
  }
  std::string make_option_desc(const CLI::Option* option) const override {
    std::string text = option->get_description();
    if (!option->get_envname().empty()) {
      text += " [default: " + option->get_default_str() + "] [env: " + option->get_envname() + "]";
    }
    return text;
  }
};

// Collapses a multi-line message (CLI11's, for instance) into one line.
std::string one_line(std::string_view text) {
  std::string result;
  for (char c : text) {
    if (c == '\n' || c == '\r') {
      if (!result.empty() && result.back() != ' ') result += ' ';
    } else {
      result += c;
    }
  }
  while (!result.empty() && result.back() == ' ') result.pop_back();
  return result;
}

}  // namespace

std::optional<bool> parse_switch(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "1" || text == "true" || text == "yes" || text == "on") return true;
  if (text == "0" || text == "false" || text == "no" || text == "off") return false;
  return std::nullopt;
}

std::string quote_value(const std::string& text) {
  std::string result = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      result += '\\';
      result += c;
    } else if (c == '\n') {
      result += "\\n";
    } else if (c == '\t') {
      result += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      constexpr const char* kHex = "0123456789abcdef";
      result += "\\x";
      result += kHex[byte >> 4];
      result += kHex[byte & 0xf];
    } else {
      result += c;
    }
  }
  result += '"';
  return result;
}

CommandLine::CommandLine(const std::string& program, const std::string& description,
                         const std::string& version)
    : app_(description, program), program_(program), version_line_(program + " " + version) {
  app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app_.set_help_flag("-h,--help", "Print this help and exit");
  app_.set_version_flag("--version", version_line_, "Print the version and exit");
  app_.formatter(std::make_shared<HelpFormatter>());
  app_.get_formatter()->column_width(34);
  app_.footer(
      "Durations: 250ms, 2s, 1m, 1h, or a bare number of seconds. Each flag can also be set in\n"
      "the environment variable shown; a flag on the command line wins over the environment.");
}

std::string CommandLine::env_name(const std::string& name) {
  std::string env = "TANDEM_";
  for (char c : name) {
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

void CommandLine::add(const std::string& name, const std::string& type_name,
                      const std::string& help, const std::string& default_text, Check check,
                      std::function<void(const std::string&)> store) {
  checks_.emplace_back(name, check);
  CLI::Option* option = app_.add_option_function<std::string>("--" + name, std::move(store), help);
  option->type_name(type_name)->envname(env_name(name))->default_str(default_text);
  // CLI11 prefixes the message with the flag's name ("--port: ..."); parse() names the variable
  // instead when that is where the value came from.
  option->check(CLI::Validator(
      [check](std::string& text) -> std::string {
        std::optional<std::string> problem = check(text);
        return problem ? quote_value(text) + " " + *problem : std::string();
      },
      ""));
}

void CommandLine::add_count(const std::string& name, const std::string& type_name,
                            const std::string& help, std::size_t* target, uint64_t min,
                            uint64_t max) {
  const std::string unit = type_name == "BYTES" ? "a number of bytes" : "a number";
  add(
      name, type_name, help, std::to_string(*target),
      [=](const std::string& text) -> std::optional<std::string> {
        auto value = parse_unsigned(text);
        if (value && *value >= min && *value <= max) return std::nullopt;
        return "is not " + unit + " from " + std::to_string(min) + " to " + std::to_string(max);
      },
      [target](const std::string& text) {
        *target = static_cast<std::size_t>(*parse_unsigned(text));
      });
}

void CommandLine::add_port(const std::string& name, const std::string& help, uint16_t* target,
                           bool zero_means_off) {
  add(
      name, "PORT", help, std::to_string(*target),
      [zero_means_off](const std::string& text) -> std::optional<std::string> {
        auto value = parse_unsigned(text);
        if (value && *value <= 65535 && (*value > 0 || zero_means_off)) return std::nullopt;
        return zero_means_off ? "is not a port number (1-65535), or 0 for none"
                              : "is not a port number (1-65535)";
      },
      [target](const std::string& text) {
        *target = static_cast<uint16_t>(*parse_unsigned(text));
      });
}

void CommandLine::add_duration(const std::string& name, const std::string& help,
                               std::chrono::milliseconds* target, bool whole_seconds) {
  add(
      name, "DURATION", help, format_duration(*target),
      [whole_seconds](const std::string& text) -> std::optional<std::string> {
        auto value = parse_duration(text);
        if (whole_seconds && (!value || value->count() <= 0 || value->count() % 1000 != 0)) {
          return "is not a whole number of seconds above zero (such as 90s, 30m, 1h, or 1800)";
        }
        if (!value || value->count() <= 0) {
          return "is not a duration above zero (such as 250ms, 2s, 1m, 1h, or bare seconds)";
        }
        return std::nullopt;
      },
      [target](const std::string& text) { *target = *parse_duration(text); });
}

void CommandLine::add_text(const std::string& name, const std::string& type_name,
                           const std::string& help, std::string* target, Check check) {
  add(name, type_name, help, *target, std::move(check),
      [target](const std::string& text) { *target = text; });
}

void CommandLine::add_switch(const std::string& name, const std::string& help, bool* target) {
  // Given alone it means on; with a value (--name=no, or the variable) the value says.
  CLI::Option* option = app_.add_flag_function(
      "--" + name + "{on}",
      [this, name, target](std::int64_t) {
        auto results = app_.get_option("--" + name)->results();
        *target = parse_switch(results.empty() ? "on" : results.back()).value_or(true);
      },
      help);
  option->envname(env_name(name))->default_str(*target ? "on" : "off");
  Check check = [](const std::string& text) -> std::optional<std::string> {
    if (parse_switch(text)) return std::nullopt;
    return "is not a boolean (1/0, true/false, yes/no, on/off)";
  };
  checks_.emplace_back(name, check);
  option->check(CLI::Validator(
      [check](std::string& text) -> std::string {
        std::optional<std::string> problem = check(text);
        return problem ? quote_value(text) + " " + *problem : std::string();
      },
      ""));
  option->type_name("");
}

void CommandLine::show_default(const std::string& name, const std::string& text) {
  app_.get_option("--" + name)->default_str(text);
}

bool CommandLine::given(const std::string& name) const {
  const std::string flag = "--" + name;
  return std::any_of(args_.begin(), args_.end(), [&](const std::string& arg) {
    return arg == flag || arg.rfind(flag + "=", 0) == 0;
  });
}

std::string CommandLine::origin(const std::string& name) const {
  if (given(name)) return "--" + name;
  const CLI::Option* option = app_.get_option_no_throw("--" + name);
  return option != nullptr && option->count() > 0 ? env_name(name) : "--" + name;
}

CommandLine::Outcome CommandLine::parse(int argc, const char* const* argv, std::ostream& out,
                                        std::ostream& err, const std::function<void()>& validate) {
  // CLI11's vector overload takes the arguments in reverse order; building it here also copes
  // with argc == 0.
  std::vector<std::string> reversed;
  for (int i = argc - 1; i >= 1; --i) reversed.emplace_back(argv[i]);
  args_.assign(reversed.rbegin(), reversed.rend());
  // Help and version are answered whatever else is on the line or in the environment (CLI11
  // would check the variables first).
  for (const std::string& arg : args_) {
    if (arg == "-h" || arg == "--help") {
      out << app_.help();
      return {};
    }
    if (arg == "--version") {
      out << version_line_ << '\n';
      return {};
    }
  }
  try {
    // CLI11 skips a variable that is set but empty; an empty value is a mistake worth saying.
    for (const auto& [name, check] : checks_) {
      const char* value = std::getenv(env_name(name).c_str());
      if (value != nullptr && *value == '\0' && !given(name)) {
        throw BadValue(env_name(name) + ": \"\" " + check("").value_or("is empty"));
      }
    }
    try {
      app_.parse(reversed);
    } catch (const CLI::CallForHelp&) {
      out << app_.help();
      return {};
    } catch (const CLI::CallForVersion& version) {
      out << version.what() << '\n';
      return {};
    } catch (const CLI::ExtrasError&) {
      const auto extras = app_.remaining();
      const std::string first = extras.empty() ? "" : extras.front();
      if (!first.empty() && first.front() == '-') {
        throw BadValue("unknown flag " + quote_value(first) + " (see --help)");
      }
      throw BadValue("unexpected argument " + quote_value(first) + " (flags only, see --help)");
    } catch (const CLI::ValidationError& error) {
      // "--port: "abc" is not ...": named as the user set it, flag or variable.
      const std::string what = error.what();
      const auto colon = what.find(": ");
      if (what.rfind("--", 0) == 0 && colon != std::string::npos) {
        throw BadValue(origin(what.substr(2, colon - 2)) + what.substr(colon));
      }
      throw BadValue(one_line(what));
    } catch (const CLI::ArgumentMismatch& error) {
      // CLI11 says "--port: 1 required PORT missing"; the flag's name is what is worth keeping.
      const std::string what = error.what();
      const auto colon = what.find(':');
      if (what.rfind("--", 0) == 0 && colon != std::string::npos) {
        throw BadValue(what.substr(0, colon) + ": needs a value (see --help)");
      }
      throw BadValue(one_line(what) + " (see --help)");
    } catch (const CLI::ParseError& error) {
      throw BadValue(one_line(error.what()) + " (see --help)");
    }
    if (validate) validate();
  } catch (const BadValue& problem) {
    err << program_ << ": " << problem.what() << '\n';
    return {false, 2};
  }
  return {true, 0};
}

}  // namespace tandem
