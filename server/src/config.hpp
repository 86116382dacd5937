#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

namespace tandem {

// Everything a tandem-server instance is told at start-up, as plain values.
struct Config {
  uint16_t port = 3001;                                // TCP port to listen on.
  std::string bind = "127.0.0.1";                      // Address to listen on.
  std::string id;                                      // Instance id; app-<port> if empty.
  std::string session_store = "memory";                // memory | redis://host:port[/db]
  std::size_t max_sessions = 100000;                   // Memory store: count bound.
  std::size_t max_session_bytes = 64 * 1024 * 1024;    // Memory store: byte bound.
  std::chrono::seconds session_ttl{1800};              // Idle time before a session expires.
  std::size_t max_header_bytes = 8192;                 // Request line + header section.
  std::size_t max_body_bytes = 1024 * 1024;            // Decoded body, any framing.
  std::chrono::milliseconds keepalive_timeout{60000};  // Idle keep-alive connection lifetime.
  std::chrono::milliseconds header_timeout{10000};     // Time to send one whole request.
  std::size_t max_connections = 16384;                 // Open client connections at most.
  std::chrono::milliseconds drain_grace{3000};         // Keep accepting after SIGTERM.
  std::chrono::milliseconds drain_timeout{15000};      // Hard stop, counted from SIGTERM.
  std::size_t worker_queue = 32;                       // CPU-bound requests held at most.
  uint16_t agent_port = 0;                             // HAProxy agent check; 0: off.
  bool access_log = false;                             // One JSON line per request.
};

// Looks up an environment variable by name; returns nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The environment of this process, for EnvLookup.
std::optional<std::string> process_env(const std::string& name);

// What main should do after the flags were read.
struct ConfigOutcome {
  bool run = false;   // true: start the server with `config`.
  int exit_code = 0;  // when !run: 0 after --help/--version, 2 after a bad flag or value.
  Config config;
};

// Parses flags (each also TANDEM_<NAME> in the environment; a flag wins over the environment).
// --help and --version print to `out`; a bad flag or value prints one line to `err`.
ConfigOutcome parse_config(int argc, const char* const* argv, const EnvLookup& env,
                           std::ostream& out, std::ostream& err);

// Parses "250ms", "2s", "1m", "1h", or a bare number of seconds; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

// Where a Redis session store lives, from --session-store redis://host:port[/db].
struct RedisEndpoint {
  std::string host;  // Name or IPv4 literal, or IPv6 literal without its brackets.
  uint16_t port = 0;
  int db = 0;            // 0..15.
  std::string user;      // Redis 6 ACL user; empty for the default user.
  std::string password;  // AUTH password; empty when the server needs none.
};

// Parses redis://[[user]:password@]host:port[/db] strictly (the password may be
// percent-encoded); nullopt when malformed (parse_config uses the same
// rules).
std::optional<RedisEndpoint> parse_redis_url(const std::string& url);

}  // namespace tandem
