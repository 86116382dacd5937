#pragma once

#include <json/value.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

typedef void CURL;

namespace tandem::test {

// Response header fields in the order received; names are matched case-insensitively.
class Headers {
 public:
  void add(std::string name, std::string value);
  void clear() { fields_.clear(); }
  bool empty() const { return fields_.empty(); }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

  // The first value of `name`, or nullopt when the field is absent.
  std::optional<std::string> get(std::string_view name) const;
  // Every value of `name` (one per field line), in order.
  std::vector<std::string> all(std::string_view name) const;
  // True when some `name` field lists `token` in its comma-separated value (case-insensitive).
  bool has_token(std::string_view name, std::string_view token) const;
  // "Name: value" lines, for test messages.
  std::string to_string() const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// One HTTP response, from libcurl (HttpClient) or parsed off a raw socket (RawClient).
struct HttpResponse {
  bool ok = false;      // A whole response arrived; otherwise `error` says why not.
  std::string error;    // What went wrong when !ok (libcurl's message, "closed", "timeout").
  std::string version;  // "HTTP/1.1" (raw responses only).
  long status = 0;
  std::string reason;  // Reason phrase (raw responses only).
  Headers headers;
  std::string body;
  long connects = 0;     // New connections libcurl opened for this transfer.
  double seconds = 0.0;  // Wall time of the transfer.

  std::optional<std::string> header(std::string_view name) const { return headers.get(name); }
  // The body parsed as JSON; throws std::runtime_error (quoting the body) when it is not JSON.
  Json::Value json() const;
  // True when the body is one JSON value.
  bool json_ok() const;
  // "200 {...}" with headers, for test messages.
  std::string describe() const;
};

// Everything docs/design.md requires of every response: Content-Type application/json (unless
// `json_body` is false, as for /metrics), X-Container-Id equal to `container`, a Date header in
// HTTP date format near now, and a body that parses as JSON. Returns the violations, empty if
// none.
std::vector<std::string> contract_problems(const HttpResponse& response, std::string_view container,
                                           bool json_body = true);

// Joins lines with "; ", for test messages.
std::string join(const std::vector<std::string>& lines, std::string_view separator = "; ");

// In a Boost.Test case: fails the check with every violation of contract_problems() listed.
#define CHECK_CONTRACT(response, id)                                    \
  do {                                                                  \
    auto problems_ = tandem::test::contract_problems((response), (id)); \
    BOOST_TEST(problems_.empty(), tandem::test::join(problems_));       \
  } while (false)

// A libcurl easy handle kept across requests, so consecutive requests reuse one keep-alive
// connection the way a browser or load balancer would. Not thread-safe: one per thread.
class HttpClient {
 public:
  // With `cookies`, libcurl's cookie engine is on from the start.
  explicit HttpClient(bool cookies = false);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Turns libcurl's cookie engine on: Set-Cookie is stored and sent back as a browser would.
  void enable_cookies();
  // The cookie jar in Netscape format, one cookie per line.
  std::vector<std::string> cookies() const;
  // With `fresh`, every request opens a new connection and closes it afterwards.
  void set_fresh_connections(bool fresh) { fresh_ = fresh; }

  // Sends one request. `headers` are "Name: value" lines; a `body` is sent with Content-Length.
  HttpResponse request(std::string_view method, const std::string& url,
                       const std::vector<std::string>& headers = {},
                       const std::optional<std::string>& body = std::nullopt,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds{10000});
  HttpResponse get(const std::string& url, const std::vector<std::string>& headers = {});
  HttpResponse post(const std::string& url, const std::string& body,
                    const std::vector<std::string>& headers = {"Content-Type: application/json"});

  // Connections opened by this handle over all its requests.
  long total_connects() const { return total_connects_; }

 private:
  CURL* curl_ = nullptr;
  bool cookies_ = false;
  bool fresh_ = false;
  long total_connects_ = 0;
};

}  // namespace tandem::test
