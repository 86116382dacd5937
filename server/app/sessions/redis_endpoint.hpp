#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem {

// Where a Redis session store lives, from --session-store redis://host:port[/db].
struct RedisEndpoint {
  std::string host;  // Name or IPv4 literal, or IPv6 literal without its brackets.
  uint16_t port = 0;
  int db = 0;            // 0..15.
  std::string user;      // Redis 6 ACL user; empty for the default user.
  std::string password;  // AUTH password; empty when the server needs none.
};

// One host:port of a URL.
struct HostPort {
  std::string host;  // As in RedisEndpoint::host.
  uint16_t port = 0;
};

// Parses redis://[[user]:password@]host:port[/db] strictly (the password may be
// percent-encoded); nullopt when malformed.
std::optional<RedisEndpoint> parse_redis_url(const std::string& url);

// Takes `scheme` ("redis://") off the front of `rest`; false when `rest` does not start with it.
bool take_scheme(std::string_view& rest, std::string_view scheme);

// Takes "[[user]:password@]" off the front of `rest` into `endpoint`'s user and password (the
// password percent-decoded, never empty); false when malformed. Shared by the URL parsers.
bool take_redis_credentials(std::string_view& rest, RedisEndpoint& endpoint);

// Parses host:port (an IPv6 literal in brackets, the port 1..65535); nullopt when malformed.
std::optional<HostPort> parse_host_port(std::string_view text);

// Parses the end of a URL after its last part: empty (database 0) or "/" and a database number
// 0..15; nullopt when malformed.
std::optional<int> parse_redis_db_tail(std::string_view tail);

}  // namespace tandem
