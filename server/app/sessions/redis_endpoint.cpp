#include "app/sessions/redis_endpoint.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include "runtime/config.hpp"

namespace tandem {
namespace {

constexpr int kMaxRedisDb = 15;

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

bool take_scheme(std::string_view& rest, std::string_view scheme) {
  if (rest.substr(0, scheme.size()) != scheme) return false;
  rest.remove_prefix(scheme.size());
  return true;
}

bool take_redis_credentials(std::string_view& rest, RedisEndpoint& endpoint) {
  // Credentials, if any, end at the last '@' before the host.
  const auto at = rest.rfind('@');
  if (at == std::string_view::npos) return true;
  std::string_view userinfo = rest.substr(0, at);
  const auto colon = userinfo.find(':');
  if (colon == std::string_view::npos) return false;  // A password is required.
  endpoint.user = std::string(userinfo.substr(0, colon));
  auto password = percent_decode_strict(userinfo.substr(colon + 1));
  if (!password || password->empty()) return false;
  endpoint.password = *password;
  rest.remove_prefix(at + 1);
  return true;
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  HostPort result;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    result.host = std::string(text.substr(1, close - 1));
    in6_addr address{};
    if (inet_pton(AF_INET6, result.host.c_str(), &address) != 1) return std::nullopt;
    text.remove_prefix(close + 1);
  } else {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    if (!is_valid_host_name(text.substr(0, colon))) return std::nullopt;
    result.host = std::string(text.substr(0, colon));
    text.remove_prefix(colon);
  }
  if (text.empty() || text.front() != ':') return std::nullopt;
  const auto port = parse_unsigned(text.substr(1));
  if (!port || *port < 1 || *port > 65535) return std::nullopt;
  result.port = static_cast<uint16_t>(*port);
  return result;
}

std::optional<int> parse_redis_db_tail(std::string_view tail) {
  if (tail.empty()) return 0;
  if (tail.front() != '/') return std::nullopt;
  const auto db = parse_unsigned(tail.substr(1));
  if (!db || *db > kMaxRedisDb) return std::nullopt;
  return static_cast<int>(*db);
}

std::optional<RedisEndpoint> parse_redis_url(const std::string& url) {
  std::string_view rest = url;
  RedisEndpoint endpoint;
  if (!take_scheme(rest, "redis://") || !take_redis_credentials(rest, endpoint)) {
    return std::nullopt;
  }
  const auto slash = std::min(rest.find('/'), rest.size());
  auto address = parse_host_port(rest.substr(0, slash));
  const auto db = parse_redis_db_tail(rest.substr(slash));
  if (!address || !db) return std::nullopt;
  endpoint.host = std::move(address->host);
  endpoint.port = address->port;
  endpoint.db = *db;
  return endpoint;
}

}  // namespace tandem
