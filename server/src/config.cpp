#include "config.hpp"

#include <arpa/inet.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "version.hpp"

namespace tandem {
namespace {

constexpr const char* kProgram = "tandem-server";
constexpr std::size_t kMaxIdLength = 64;
constexpr std::size_t kMaxHostLength = 253;
constexpr int kMaxRedisDb = 15;
constexpr uint64_t kMaxSessions = 100'000'000;
// One session with a full clientId takes about 600 bytes; the floor leaves room for a hundred.
constexpr uint64_t kMinSessionBytes = 64 * 1024;
constexpr uint64_t kMaxSessionBytes = uint64_t{64} * 1024 * 1024 * 1024;
constexpr uint64_t kMaxWorkerQueue = 65536;
constexpr uint64_t kMinHeaderBytes = 1024;
constexpr uint64_t kMaxHeaderBytes = 1024 * 1024;
constexpr uint64_t kMaxBodyBytes = 1024 * 1024 * 1024;
// The kernel's own ceiling on open files (fs.nr_open) is 1048576 by default.
constexpr uint64_t kMaxConnections = 1024 * 1024;

// A bad value, with the message that ends up on the one error line (after the program name).
class BadValue : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Makes text safe to quote on one line: control characters would break the one-line promise.
std::string quote_value(std::string_view text) {
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

// Digits only: no sign, no spaces, no hex, so "+5", " 5" and "5x" are all refused.
std::optional<uint64_t> parse_unsigned(std::string_view text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  const auto value = parse_unsigned(text);
  if (!value || *value < 1 || *value > 65535) return std::nullopt;
  return static_cast<uint16_t>(*value);
}

bool is_ip_literal(const std::string& text) {
  in6_addr storage{};
  return inet_pton(AF_INET, text.c_str(), &storage) == 1 ||
         inet_pton(AF_INET6, text.c_str(), &storage) == 1;
}

// Locale-independent, unlike std::isalnum.
bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// The id names an HAProxy server and is the stickiness cookie's value, so it stays plain.
bool is_valid_instance_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxIdLength && std::all_of(id.begin(), id.end(), [](char c) {
    return is_ascii_alnum(c) || c == '_' || c == '.' || c == '-';
  });
}

bool is_valid_host_name(std::string_view host) {
  return !host.empty() && host.size() <= kMaxHostLength && host.front() != '.' &&
         host.front() != '-' && std::all_of(host.begin(), host.end(), [](char c) {
           return is_ascii_alnum(c) || c == '.' || c == '-';
         });
}

std::optional<bool> parse_bool(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "1" || text == "true" || text == "yes" || text == "on") return true;
  if (text == "0" || text == "false" || text == "no" || text == "off") return false;
  return std::nullopt;
}

// The shortest exact spelling of a duration, for --help defaults and error messages.
std::string format_duration(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// One setting: its flag, its environment variable, and the text that was given for it, if any.
struct Setting {
  std::string flag;       // "--port"
  std::string env_name;   // "TANDEM_PORT"
  std::string flag_text;  // CLI11 writes the flag's value here.
  CLI::Option* option = nullptr;
  std::optional<std::string> text;  // The value to use: the flag's, else the environment's.
  std::string source;               // Who supplied `text`: the flag or the variable name.

  // Names the setting in messages the way the user set it (or the flag when defaulted).
  const std::string& origin() const { return source.empty() ? flag : source; }

  // Refuses this setting's value with the one-line message parse_config prints.
  [[noreturn]] void fail(const std::string& problem) const {
    throw BadValue(origin() + ": " + quote_value(text.value_or("")) + " " + problem);
  }
};

// Owns the settings in the order --help lists them. Each lives on the heap because CLI11 keeps a
// pointer to its flag_text, which a growing vector of values would move.
class Settings {
 public:
  Setting& add(CLI::App& app, const std::string& name, const std::string& type_name,
               const std::string& description, const std::string& default_text) {
    auto setting = std::make_unique<Setting>();
    setting->flag = "--" + name;
    setting->env_name = env_name_for(name);
    const std::string help =
        description + " [default: " + default_text + "] [env: " + setting->env_name + "]";
    setting->option = app.add_option(setting->flag, setting->flag_text, help)->type_name(type_name);
    settings_.push_back(std::move(setting));
    return *settings_.back();
  }

  Setting& add_flag(CLI::App& app, const std::string& name, const std::string& description) {
    auto setting = std::make_unique<Setting>();
    setting->flag = "--" + name;
    setting->env_name = env_name_for(name);
    const std::string help =
        description + " [default: off] [env: " + setting->env_name + "=1|0|true|false|...]";
    setting->option = app.add_flag(setting->flag, setting->flag_text, help);
    settings_.push_back(std::move(setting));
    return *settings_.back();
  }

  // Picks each setting's text: a flag given on the command line wins over the environment.
  void resolve(const EnvLookup& env) {
    for (auto& setting : settings_) {
      if (setting->option->count() > 0) {
        setting->text = setting->flag_text;
        setting->source = setting->flag;
      } else if (auto value = env ? env(setting->env_name) : std::nullopt) {
        setting->text = std::move(value);
        setting->source = setting->env_name;
      }
    }
  }

 private:
  static std::string env_name_for(const std::string& name) {
    std::string env_name = "TANDEM_";
    for (char c : name) {
      env_name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return env_name;
  }

  std::vector<std::unique_ptr<Setting>> settings_;
};

// Each apply_* leaves the default in place when the setting was not given, and refuses a bad value.
void apply_count(const Setting& setting, std::size_t& target, uint64_t min, uint64_t max,
                 const char* unit) {
  if (!setting.text) return;
  const auto value = parse_unsigned(*setting.text);
  if (!value || *value < min || *value > max) {
    setting.fail(std::string("is not ") + unit + " from " + std::to_string(min) + " to " +
                 std::to_string(max));
  }
  target = static_cast<std::size_t>(*value);
}

void apply_duration(const Setting& setting, std::chrono::milliseconds& target) {
  if (!setting.text) return;
  const auto value = parse_duration(*setting.text);
  if (!value || value->count() <= 0) {
    setting.fail("is not a duration above zero (such as 250ms, 2s, 1m, 1h, or bare seconds)");
  }
  target = *value;
}

void apply_seconds(const Setting& setting, std::chrono::seconds& target) {
  if (!setting.text) return;
  const auto value = parse_duration(*setting.text);
  if (!value || value->count() <= 0 || value->count() % 1000 != 0) {
    setting.fail("is not a whole number of seconds above zero (such as 90s, 30m, 1h, or 1800)");
  }
  target = std::chrono::duration_cast<std::chrono::seconds>(*value);
}

}  // namespace

std::optional<std::string> process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  const std::string_view view = text;
  const auto digits_end = view.find_first_not_of("0123456789");
  const auto number = parse_unsigned(view.substr(0, digits_end));
  if (!number) return std::nullopt;
  const std::string_view unit = digits_end == std::string_view::npos ? "" : view.substr(digits_end);
  uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    return std::nullopt;
  }
  // Refuse what would overflow the millisecond count rather than wrap around.
  const auto max =
      static_cast<uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
  if (*number > max / scale) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*number * scale));
}

namespace {

// Decodes %XX escapes (no '+' rule: this is not a query string); nullopt when one is malformed.
std::optional<std::string> percent_decode_strict(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc{} || end != text.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

}  // namespace

std::optional<RedisEndpoint> parse_redis_url(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  std::string_view rest = url;
  if (rest.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  rest.remove_prefix(kScheme.size());

  RedisEndpoint endpoint;
  // Credentials, if any, end at the last '@' before the host.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) return std::nullopt;  // A password is required.
    endpoint.user = std::string(userinfo.substr(0, colon));
    auto password = percent_decode_strict(userinfo.substr(colon + 1));
    if (!password || password->empty()) return std::nullopt;
    endpoint.password = *password;
    rest.remove_prefix(at + 1);
  }
  std::string_view host;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    endpoint.host = std::string(host);
    in6_addr address{};
    if (inet_pton(AF_INET6, endpoint.host.c_str(), &address) != 1) return std::nullopt;
    rest.remove_prefix(close + 1);
  } else {
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = rest.substr(0, colon);
    if (!is_valid_host_name(host)) return std::nullopt;
    endpoint.host = std::string(host);
    rest.remove_prefix(colon);
  }

  if (rest.empty() || rest.front() != ':') return std::nullopt;
  rest.remove_prefix(1);
  const auto slash = rest.find('/');
  const auto port = parse_port(rest.substr(0, slash));
  if (!port) return std::nullopt;
  endpoint.port = *port;
  if (slash != std::string_view::npos) {
    const auto db = parse_unsigned(rest.substr(slash + 1));
    if (!db || *db > kMaxRedisDb) return std::nullopt;
    endpoint.db = static_cast<int>(*db);
  }
  return endpoint;
}

ConfigOutcome parse_config(int argc, const char* const* argv, const EnvLookup& env,
                           std::ostream& out, std::ostream& err) {
  ConfigOutcome outcome;
  Config& config = outcome.config;
  const Config defaults;

  CLI::App app{"One tandem HTTP app server instance (run several behind HAProxy).", kProgram};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.set_version_flag("--version", std::string(kProgram) + " " + kVersion,
                       "Print the version and exit");
  app.get_formatter()->column_width(34);
  app.footer(
      "Durations: 250ms, 2s, 1m, 1h, or a bare number of seconds. Each flag can also be set in\n"
      "the environment variable shown; a flag on the command line wins over the environment.");

  Settings settings;
  auto& port = settings.add(app, "port", "PORT", "TCP port to listen on (1-65535)",
                            std::to_string(defaults.port));
  auto& bind =
      settings.add(app, "bind", "ADDRESS", "IPv4 or IPv6 address to listen on", defaults.bind);
  auto& id = settings.add(app, "id", "ID",
                          "Instance id: HAProxy server name and cookie value, 1-64 of "
                          "[A-Za-z0-9_.-]",
                          "app-<port>");
  auto& session_store = settings.add(app, "session-store", "STORE",
                                     "Where sessions live: memory, or "
                                     "redis://[[user]:password@]host:port[/db] (db 0-15; "
                                     "percent-encode special characters in the password)",
                                     defaults.session_store);
  auto& max_sessions = settings.add(
      app, "max-sessions", "N",
      "Memory store: sessions kept (one-request sessions dropped first, then least recent)",
      std::to_string(defaults.max_sessions));
  auto& max_session_bytes = settings.add(app, "max-session-bytes", "BYTES",
                                         "Memory store: bytes of sessions kept, the same way "
                                         "(65536 at least)",
                                         std::to_string(defaults.max_session_bytes) + " (64 MiB)");
  auto& session_ttl = settings.add(app, "session-ttl", "DURATION",
                                   "Idle time before a session expires (whole seconds)",
                                   format_duration(defaults.session_ttl));
  auto& max_header_bytes = settings.add(app, "max-header-bytes", "BYTES",
                                        "Request line and headers at most, else 431 (1024-1048576)",
                                        std::to_string(defaults.max_header_bytes));
  auto& max_body_bytes =
      settings.add(app, "max-body-bytes", "BYTES",
                   "Request body at most on any route, else 413 (each route may take less: "
                   "POST /api/session 4096, GET routes none)",
                   std::to_string(defaults.max_body_bytes) + " (1 MiB)");
  auto& keepalive_timeout =
      settings.add(app, "keepalive-timeout", "DURATION", "Idle keep-alive connection lifetime",
                   format_duration(defaults.keepalive_timeout));
  auto& header_timeout =
      settings.add(app, "header-timeout", "DURATION", "Time a client has to send one whole request",
                   format_duration(defaults.header_timeout));
  auto& max_connections =
      settings.add(app, "max-connections", "N", "Open client connections at most",
                   std::to_string(defaults.max_connections));
  auto& drain_grace = settings.add(app, "drain-grace", "DURATION",
                                   "After SIGTERM, keep accepting this long (health says 503)",
                                   format_duration(defaults.drain_grace));
  auto& drain_timeout = settings.add(app, "drain-timeout", "DURATION",
                                     "After SIGTERM, exit by then at the latest (> drain-grace)",
                                     format_duration(defaults.drain_timeout));
  auto& worker_queue = settings.add(app, "worker-queue", "N",
                                    "CPU-bound requests queued or running on the instance's "
                                    "worker thread at most; past it they get 503 (1-65536)",
                                    std::to_string(defaults.worker_queue));
  auto& agent_port = settings.add(app, "agent-port", "PORT",
                                  "Port on --bind where HAProxy's agent check reads the weight "
                                  "the worker's load leaves (\"75%\"); 0: no agent",
                                  "0");
  auto& access_log = settings.add_flag(app, "access-log", "Log one JSON line per request");

  // Arguments go to CLI11 in reverse order, which is what its vector overload expects; building
  // the vector here also copes with argc == 0.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);

  try {
    try {
      app.parse(args);
    } catch (const CLI::CallForHelp&) {
      out << app.help();
      return outcome;
    } catch (const CLI::CallForVersion& version) {
      out << version.what() << '\n';
      return outcome;
    } catch (const CLI::ExtrasError&) {
      const auto extras = app.remaining();
      const std::string first = extras.empty() ? "" : extras.front();
      if (!first.empty() && first.front() == '-') {
        throw BadValue("unknown flag " + quote_value(first) + " (see --help)");
      }
      throw BadValue("unexpected argument " + quote_value(first) + " (flags only, see --help)");
    } catch (const CLI::ArgumentMismatch& error) {
      // CLI11 says "--port: 1 required PORT missing"; the flag's name is all that is worth
      // keeping from that.
      const std::string what = error.what();
      const auto colon = what.find(':');
      if (what.rfind("--", 0) == 0 && colon != std::string::npos) {
        throw BadValue(what.substr(0, colon) + ": needs a value (see --help)");
      }
      throw BadValue(one_line(what) + " (see --help)");
    } catch (const CLI::ParseError& error) {
      throw BadValue(one_line(error.what()) + " (see --help)");
    }

    settings.resolve(env);

    if (port.text) {
      const auto value = parse_port(*port.text);
      if (!value) port.fail("is not a port number (1-65535)");
      config.port = *value;
    }
    if (bind.text) {
      if (!is_ip_literal(*bind.text)) bind.fail("is not an IPv4 or IPv6 address");
      config.bind = *bind.text;
    }
    config.id = id.text ? *id.text : "app-" + std::to_string(config.port);
    if (!is_valid_instance_id(config.id)) {
      id.fail("is not an instance id (1-64 characters of A-Z a-z 0-9 _ . -)");
    }
    if (session_store.text) {
      if (*session_store.text != "memory" && !parse_redis_url(*session_store.text)) {
        session_store.fail(
            "is not a session store (memory, or redis://[[user]:password@]host:port[/db] with port "
            "1-65535 and db "
            "0-15)");
      }
      config.session_store = *session_store.text;
    }
    apply_count(max_sessions, config.max_sessions, 1, kMaxSessions, "a number");
    apply_count(max_session_bytes, config.max_session_bytes, kMinSessionBytes, kMaxSessionBytes,
                "a number of bytes");
    apply_count(worker_queue, config.worker_queue, 1, kMaxWorkerQueue, "a number");
    if (agent_port.text) {
      const auto value = parse_unsigned(*agent_port.text);
      if (!value || *value > 65535)
        agent_port.fail("is not a port number (1-65535), or 0 for none");
      config.agent_port = static_cast<uint16_t>(*value);
    }
    apply_seconds(session_ttl, config.session_ttl);
    apply_count(max_header_bytes, config.max_header_bytes, kMinHeaderBytes, kMaxHeaderBytes,
                "a number of bytes");
    apply_count(max_body_bytes, config.max_body_bytes, 1, kMaxBodyBytes, "a number of bytes");
    apply_duration(keepalive_timeout, config.keepalive_timeout);
    apply_duration(header_timeout, config.header_timeout);
    apply_count(max_connections, config.max_connections, 1, kMaxConnections, "a number");
    apply_duration(drain_grace, config.drain_grace);
    apply_duration(drain_timeout, config.drain_timeout);
    if (access_log.text) {
      const auto value = parse_bool(*access_log.text);
      if (!value) access_log.fail("is not a boolean (1/0, true/false, yes/no, on/off)");
      config.access_log = *value;
    }

    if (config.agent_port != 0 && config.agent_port == config.port) {
      throw BadValue(agent_port.origin() + " (" + std::to_string(config.agent_port) +
                     ") must differ from " + port.origin());
    }
    // The drain deadline counts from SIGTERM too, so it must leave room after the grace period.
    if (config.drain_timeout <= config.drain_grace) {
      throw BadValue(drain_timeout.origin() + " (" + format_duration(config.drain_timeout) +
                     ") must be greater than " + drain_grace.origin() + " (" +
                     format_duration(config.drain_grace) + ")");
    }
  } catch (const BadValue& problem) {
    err << kProgram << ": " << problem.what() << '\n';
    outcome.exit_code = 2;
    return outcome;
  }

  outcome.run = true;
  return outcome;
}

}  // namespace tandem
