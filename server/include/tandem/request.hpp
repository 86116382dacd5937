#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem {

// One parsed HTTP request, owning all of its bytes (nothing points into a read buffer).
struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // The request-target as sent: path and query.
  std::vector<std::pair<std::string, std::string>> headers;  // Names lowercased, in order.
  std::string body;                                          // Decoded (de-chunked) body.
  uint8_t http_major = 1;
  uint8_t http_minor = 1;
  bool keep_alive = true;  // Whether the client allows the connection to stay open after it.
  std::chrono::steady_clock::time_point started;  // When its first byte arrived.

  // The target up to '?'.
  std::string_view path() const;
  // The first value of header `lowercase_name`, or null.
  const std::string* header(std::string_view lowercase_name) const;
  // The percent-decoded value of query parameter `name`, or nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
  // The value of cookie `name` from the Cookie header(s), or nullopt when absent.
  std::optional<std::string> cookie(std::string_view name) const;
  // Whether the client reached the balancer over HTTPS: X-Forwarded-Proto is "https" (any case).
  // HAProxy sets the header on every request, replacing the client's; an instance listens on
  // loopback or a private network only, so the header is the balancer's word. A cookie meant for
  // HTTPS clients is marked Secure when this holds.
  bool forwarded_https() const;
};

// Decodes %XX escapes and '+' (as a space); nullopt when an escape is malformed.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace tandem
