#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem {

class CommandLine;
class Flags;

// Which answers the access log records: none, the interesting ones (a 5xx, or slower than
// --slow-request), or every one. Every answer is counted in /metrics whatever this says.
enum class AccessLog { kOff, kErrors, kAll };
// "off", "errors", "all"; also the switch words (on/true/yes/1: all, off/false/no/0: off).
std::optional<AccessLog> parse_access_log(std::string_view text);

// What the runtime of an instance is told at start-up, as plain values. An application's own
// settings are its own (Application::add_flags).
struct Config {
  uint16_t port = 3001;                                // TCP port to listen on.
  std::string bind = "127.0.0.1";                      // Address to listen on.
  std::string instance_id;                             // --id; app-<port> unless given.
  std::size_t max_header_bytes = 8192;                 // Request line + header section.
  std::size_t max_body_bytes = 1024 * 1024;            // Decoded body, any framing, any route.
  std::chrono::milliseconds keepalive_timeout{60000};  // Idle keep-alive connection lifetime.
  std::chrono::milliseconds header_timeout{10000};     // Time to send one whole request.
  std::size_t max_connections = 16384;                 // Open client connections at most.
  std::chrono::milliseconds drain_grace{3000};         // Keep accepting after SIGTERM.
  std::chrono::milliseconds drain_timeout{15000};      // Hard stop, counted from SIGTERM.
  std::size_t worker_queue = 32;                       // CPU-bound requests held at most.
  uint16_t agent_port = 0;                             // HAProxy agent check; 0: off.
  std::string access_log_flag = "errors";              // --access-log as given.
  AccessLog access_log = AccessLog::kErrors;           // The same, read by check_runtime_config.
  std::chrono::milliseconds slow_request{1000};        // Logged as slow from this long on.
};

class Application;

// Declares the runtime's flags, each writing into `config` (whose values are the defaults).
void add_runtime_flags(Flags& flags, Config& config);
// What no one flag can check, once all are read: fills the instance id's default and refuses
// settings that contradict each other (throws BadValue, naming the flags as they were given).
void check_runtime_config(const CommandLine& command_line, Config& config);

// Parses "250ms", "2s", "1m", "1h", or a bare number of seconds; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);
// The shortest exact spelling of a duration ("30m", "250ms"), for --help and messages.
std::string format_duration(std::chrono::milliseconds duration);
// Digits only: no sign, no spaces, no hex, so "+5", " 5" and "5x" are all refused.
std::optional<uint64_t> parse_unsigned(std::string_view text);
// Whether `text` is a host name: letters, digits, dots and dashes, not starting with either.
bool is_valid_host_name(std::string_view host);

}  // namespace tandem
