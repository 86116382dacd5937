#include "runtime/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "runtime/command_line.hpp"
#include "tandem/flags.hpp"

namespace tandem {
namespace {

constexpr std::size_t kMaxIdLength = 64;
constexpr std::size_t kMaxHostLength = 253;
constexpr uint64_t kMinHeaderBytes = 1024;
constexpr uint64_t kMaxHeaderBytes = 1024 * 1024;
constexpr uint64_t kMaxBodyBytes = 1024 * 1024 * 1024;
// The kernel's own ceiling on open files (fs.nr_open) is 1048576 by default.
constexpr uint64_t kMaxConnections = 1024 * 1024;
constexpr uint64_t kMaxWorkerQueue = 65536;

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

}  // namespace

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

bool is_valid_host_name(std::string_view host) {
  return !host.empty() && host.size() <= kMaxHostLength && host.front() != '.' &&
         host.front() != '-' && std::all_of(host.begin(), host.end(), [](char c) {
           return is_ascii_alnum(c) || c == '.' || c == '-';
         });
}

std::string format_duration(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
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

std::optional<AccessLog> parse_access_log(std::string_view given) {
  std::string text(given);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text == "errors") return AccessLog::kErrors;
  if (text == "all") return AccessLog::kAll;
  // The switch words (on, yes, 1 / off, no, 0) mean every answer or none.
  if (auto on = parse_switch(text)) return *on ? AccessLog::kAll : AccessLog::kOff;
  return std::nullopt;
}

void add_runtime_flags(Flags& flags, Config& config) {
  flags.add_port("port", "TCP port to listen on (1-65535)", &config.port, false);
  flags.add_text("bind", "ADDRESS", "IPv4 or IPv6 address to listen on", &config.bind,
                 [](const std::string& text) -> std::optional<std::string> {
                   if (is_ip_literal(text)) return std::nullopt;
                   return "is not an IPv4 or IPv6 address";
                 });
  flags.add_text("id", "ID",
                 "Instance id: HAProxy server name and cookie value, 1-64 of [A-Za-z0-9_.-]",
                 &config.instance_id, [](const std::string& text) -> std::optional<std::string> {
                   if (is_valid_instance_id(text)) return std::nullopt;
                   return "is not an instance id (1-64 characters of A-Z a-z 0-9 _ . -)";
                 });
  flags.show_default("id", "app-<port>");
  flags.add_count("max-header-bytes", "BYTES",
                  "Request line and headers at most, else 431 (1024-1048576)",
                  &config.max_header_bytes, kMinHeaderBytes, kMaxHeaderBytes);
  flags.add_count("max-body-bytes", "BYTES",
                  "Request body at most on any route, else 413 (each route may take less)",
                  &config.max_body_bytes, 1, kMaxBodyBytes);
  flags.show_default("max-body-bytes", std::to_string(config.max_body_bytes) + " (1 MiB)");
  flags.add_duration("keepalive-timeout", "Idle keep-alive connection lifetime",
                     &config.keepalive_timeout, false);
  flags.add_duration("header-timeout", "Time a client has to send one whole request",
                     &config.header_timeout, false);
  flags.add_count("max-connections", "N", "Open client connections at most",
                  &config.max_connections, 1, kMaxConnections);
  flags.add_duration("drain-grace", "After SIGTERM, keep accepting this long (health says 503)",
                     &config.drain_grace, false);
  flags.add_duration("drain-timeout", "After SIGTERM, exit by then at the latest (> drain-grace)",
                     &config.drain_timeout, false);
  flags.add_count("worker-queue", "N",
                  "CPU-bound requests queued or running on the instance's worker thread at most; "
                  "past it they get 503 (1-65536)",
                  &config.worker_queue, 1, kMaxWorkerQueue);
  flags.add_port("agent-port",
                 "Port on --bind where HAProxy's agent check reads the weight the worker's load "
                 "leaves (\"75%\"); 0: no agent",
                 &config.agent_port, true);
  flags.add_text(
      "access-log", "WHICH",
      "Answers logged, one JSON line each with the request id: errors (a 5xx, or one slower than "
      "--slow-request), all, or off; every answer is counted in /metrics either way",
      &config.access_log_flag, [](const std::string& text) -> std::optional<std::string> {
        if (parse_access_log(text)) return std::nullopt;
        return "is not errors, all or off";
      });
  flags.add_duration("slow-request", "With --access-log errors, log answers at least this slow",
                     &config.slow_request, false);
}

void check_runtime_config(const CommandLine& command_line, Config& config) {
  if (config.instance_id.empty()) config.instance_id = "app-" + std::to_string(config.port);
  config.access_log = parse_access_log(config.access_log_flag).value_or(AccessLog::kErrors);
  if (config.agent_port != 0 && config.agent_port == config.port) {
    throw BadValue(command_line.origin("agent-port") + " (" + std::to_string(config.agent_port) +
                   ") must differ from " + command_line.origin("port"));
  }
  // The drain deadline counts from SIGTERM too, so it must leave room after the grace period.
  if (config.drain_timeout <= config.drain_grace) {
    throw BadValue(command_line.origin("drain-timeout") + " (" +
                   format_duration(config.drain_timeout) + ") must be greater than " +
                   command_line.origin("drain-grace") + " (" + format_duration(config.drain_grace) +
                   ")");
  }
}

}  // namespace tandem
