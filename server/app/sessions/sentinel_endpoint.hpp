#pragma once

#include <optional>
#include <string>
#include <vector>

#include "app/sessions/redis_endpoint.hpp"

namespace tandem {

// A Redis master found through Redis Sentinel, from --session-store sentinel://...
// One secret serves both: the credentials authenticate to the Sentinels (Sentinel 6.2+'s
// `requirepass`) and to the data nodes (`requirepass`/`masterauth`, or an ACL user).
struct SentinelEndpoint {
  std::vector<HostPort> sentinels;  // Asked in this order; at least one.
  std::string master_name;          // The name the Sentinels monitor: [A-Za-z0-9._-]+.
  int db = 0;                       // 0..15, SELECTed on the master.
  std::string user;                 // ACL user; empty for the default user.
  std::string password;             // AUTH password; empty when nothing needs one.

  // The master at `address`, with this endpoint's database and credentials.
  RedisEndpoint node(const HostPort& address) const {
    return RedisEndpoint{address.host, address.port, db, user, password};
  }
};

// Parses sentinel://[[user]:password@]host:port[,host:port...]/master-name[/db] strictly (ports
// required, the password may be percent-encoded); nullopt when malformed.
std::optional<SentinelEndpoint> parse_sentinel_url(const std::string& url);

}  // namespace tandem
