#include "app/sessions/redis_endpoint.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <string_view>

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
  const auto port = parse_unsigned(rest.substr(0, slash));
  if (!port || *port < 1 || *port > 65535) return std::nullopt;
  endpoint.port = static_cast<uint16_t>(*port);
  if (slash != std::string_view::npos) {
    const auto db = parse_unsigned(rest.substr(slash + 1));
    if (!db || *db > kMaxRedisDb) return std::nullopt;
    endpoint.db = static_cast<int>(*db);
  }
  return endpoint;
}

}  // namespace tandem
