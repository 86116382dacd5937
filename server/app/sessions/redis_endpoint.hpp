#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tandem {

// Where a Redis session store lives, from --session-store redis://host:port[/db].
struct RedisEndpoint {
  std::string host;  // Name or IPv4 literal, or IPv6 literal without its brackets.
  uint16_t port = 0;
  int db = 0;            // 0..15.
  std::string user;      // Redis 6 ACL user; empty for the default user.
  std::string password;  // AUTH password; empty when the server needs none.
};

// Parses redis://[[user]:password@]host:port[/db] strictly (the password may be
// percent-encoded); nullopt when malformed.
std::optional<RedisEndpoint> parse_redis_url(const std::string& url);

}  // namespace tandem
