#include "app/sessions/sentinel_endpoint.hpp"

#include <algorithm>
#include <string_view>

namespace tandem {
namespace {

// More Sentinels than this is a typing error, not a deployment (one per host, three or five).
constexpr std::size_t kMaxSentinels = 16;

bool is_valid_master_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

}  // namespace

std::optional<SentinelEndpoint> parse_sentinel_url(const std::string& url) {
  std::string_view rest = url;
  RedisEndpoint credentials;
  if (!take_scheme(rest, "sentinel://") || !take_redis_credentials(rest, credentials)) {
    return std::nullopt;
  }
  SentinelEndpoint endpoint;
  endpoint.user = std::move(credentials.user);
  endpoint.password = std::move(credentials.password);

  // The master's name is required, so the list of Sentinels always ends at a '/'.
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view list = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  while (true) {
    const auto comma = list.find(',');
    auto address = parse_host_port(list.substr(0, comma));
    if (!address || endpoint.sentinels.size() == kMaxSentinels) return std::nullopt;
    endpoint.sentinels.push_back(std::move(*address));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }

  const auto db_slash = std::min(rest.find('/'), rest.size());
  const auto db = parse_redis_db_tail(rest.substr(db_slash));
  if (!is_valid_master_name(rest.substr(0, db_slash)) || !db) return std::nullopt;
  endpoint.master_name = std::string(rest.substr(0, db_slash));
  endpoint.db = *db;
  return endpoint;
}

}  // namespace tandem
