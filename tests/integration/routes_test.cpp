// Every route of docs/design.md's HTTP contract, through libcurl against the built tandem-server:
// status codes, the exact JSON shapes, the headers every response carries, sessions by cookie and
// by header, both metrics formats, 404 and 405.
#define BOOST_TEST_MODULE routes
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "server_process.hpp"

using namespace tandem::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kId = "routes-it";

// The version `tandem-server --version` prints ("tandem-server <version>").
std::string binary_version() {
  RunResult run = run_to_exit({"--version"}, 5000ms);
  BOOST_REQUIRE(run.status.has_value());
  std::smatch match;
  static const std::regex kLine{R"(^tandem-server (\S+)\s*$)"};
  BOOST_REQUIRE_MESSAGE(std::regex_match(run.out, match, kLine),
                        "--version printed '" << run.out << "'");
  return match[1];
}

// A server with a fixed id and a keep-alive client for it.
struct ServerFixture {
  ServerProcess server{with_args({"--id", kId})};
  HttpClient client;

  HttpResponse get(const std::string& path) { return client.get(server.url(path)); }
  HttpResponse post_session(const std::string& body, std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: application/json");
    return client.post(server.url("/api/session"), body, headers);
  }
};

std::string session_body(const std::string& client_id, int request_num) {
  return R"({"clientId":")" + client_id + R"(","requestNum":)" + std::to_string(request_num) + "}";
}

// Checks an error answer: `status`, the contract headers, and {"error": "<words>"}.
void check_error(const HttpResponse& response, long status, const std::string& what) {
  BOOST_TEST_CONTEXT(what) {
    BOOST_TEST_REQUIRE(response.ok, response.error);
    BOOST_TEST(response.status == status, response.describe());
    CHECK_CONTRACT(response, kId);
    if (response.json_ok()) {
      Json::Value body = response.json();
      BOOST_TEST((body.isObject() && body["error"].isString()), response.body);
      if (body.isObject() && body["error"].isString()) {
        BOOST_TEST(!body["error"].asString().empty(), "empty error message");
      }
    }
  }
}

// Numeric leaves of a JSON document keyed by their path. Scalars that name an entry (strings, and
// numbers called status or code) are folded into the key of their siblings, so that
// [{"route":"/x","status":200,"count":3}] and {"/x":{"200":3}} both give a key naming /x and 200.
void flatten(const Json::Value& value, const std::string& path,
             std::map<std::string, double>* leaves) {
  if (value.isObject()) {
    std::string context = path;
    for (const auto& name : value.getMemberNames()) {
      const Json::Value& member = value[name];
      bool labels_entry =
          name.find("status") != std::string::npos || name.find("code") != std::string::npos;
      if (member.isString() || (member.isIntegral() && labels_entry)) {
        context += "|" + name + "=" + member.asString();
      }
    }
    for (const auto& name : value.getMemberNames())
      flatten(value[name], context + "/" + name, leaves);
  } else if (value.isArray()) {
    for (Json::ArrayIndex i = 0; i < value.size(); ++i) {
      flatten(value[i], path + (value[i].isObject() ? "[]" : "[" + std::to_string(i) + "]"),
              leaves);
    }
  } else if (value.isNumeric() || value.isBool()) {
    std::string key = path;
    while (leaves->count(key) != 0) key += "#";
    (*leaves)[key] = value.isBool() ? (value.asBool() ? 1 : 0) : value.asDouble();
  }
}

std::map<std::string, double> flatten(const Json::Value& value) {
  std::map<std::string, double> leaves;
  flatten(value, "", &leaves);
  return leaves;
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// One Prometheus sample: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> parse_prometheus(const std::string& text, std::vector<std::string>* errors) {
  std::vector<Sample> samples;
  static const std::regex kLine{R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$)"};
  static const std::regex kLabel{R"re(\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?)re"};
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? text.size() : end + 1;
    if (line.empty() || line[0] == '#') continue;
    std::smatch match;
    if (!std::regex_match(line, match, kLine)) {
      errors->push_back("unparsable line: " + line);
      continue;
    }
    Sample sample;
    sample.name = match[1];
    std::string labels = match[3];
    for (std::sregex_iterator it{labels.begin(), labels.end(), kLabel}, done; it != done; ++it) {
      sample.labels[(*it)[1]] = (*it)[2];
    }
    std::string value = match[4];
    try {
      sample.value = value == "+Inf" ? INFINITY : value == "NaN" ? NAN : std::stod(value);
    } catch (const std::exception&) {
      errors->push_back("bad value: " + line);
    }
    samples.push_back(sample);
  }
  return samples;
}

// The sum of `name` over samples whose labels contain every (label, substring) pair given.
std::optional<double> sample_sum(const std::vector<Sample>& samples, const std::string& name,
                                 const std::map<std::string, std::string>& match = {}) {
  std::optional<double> sum;
  for (const auto& sample : samples) {
    if (sample.name != name) continue;
    bool matches = true;
    for (const auto& [label, needle] : match) {
      auto it = sample.labels.find(label);
      if (it == sample.labels.end() || !contains(it->second, needle)) matches = false;
    }
    if (matches) sum = sum.value_or(0) + sample.value;
  }
  return sum;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(routes, ServerFixture)

BOOST_AUTO_TEST_CASE(health_reports_healthy_with_container_version_uptime_connections) {
  const std::string version = binary_version();
  HttpResponse response = get("/health");
  BOOST_TEST_REQUIRE(response.ok, response.error);
  BOOST_TEST(response.status == 200, response.describe());
  CHECK_CONTRACT(response, kId);
  Json::Value body = response.json();
  BOOST_TEST(body["status"].asString() == "healthy", response.body);
  BOOST_TEST(body["container"].asString() == kId, response.body);
  BOOST_TEST(body["version"].isString(), response.body);
  BOOST_TEST(body["version"].asString() == version, "/health version vs --version");
  BOOST_TEST_REQUIRE(body["uptime"].isNumeric(), response.body);
  BOOST_TEST(body["uptime"].asDouble() >= 0);
  BOOST_TEST_REQUIRE(body["connections"].isIntegral(), response.body);
  // The connection this request came on is open.
  BOOST_TEST(body["connections"].asInt64() >= 1, response.body);

  // Uptime moves forward (whatever its unit, within a few seconds it must grow).
  double first = body["uptime"].asDouble();
  double last = first;
  bool grew = poll_until(
      [&] {
        HttpResponse again = get("/health");
        if (again.ok && again.json_ok()) last = again.json()["uptime"].asDouble();
        return last > first;
      },
      3000ms, 100ms);
  BOOST_TEST(grew, "uptime stayed at " << first << " (last " << last << ")");
}

BOOST_AUTO_TEST_CASE(whoami_reports_container_pid_hostname_and_timestamp_in_ms) {
  HttpResponse response = get("/api/whoami");
  BOOST_TEST_REQUIRE(response.ok, response.error);
  BOOST_TEST(response.status == 200, response.describe());
  CHECK_CONTRACT(response, kId);
  Json::Value body = response.json();
  BOOST_TEST(body["container"].asString() == kId, response.body);
  BOOST_TEST_REQUIRE(body["pid"].isIntegral(), response.body);
  BOOST_TEST(body["pid"].asInt64() == static_cast<int64_t>(server.pid()), response.body);
  char hostname[256] = {};
  ::gethostname(hostname, sizeof hostname - 1);
  BOOST_TEST(body["hostname"].isString(), response.body);
  BOOST_TEST(body["hostname"].asString() == std::string{hostname}, response.body);
  BOOST_TEST_REQUIRE(body["timestamp"].isIntegral(), response.body);
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  double skew_ms = std::fabs(static_cast<double>(body["timestamp"].asInt64() - now_ms));
  BOOST_TEST(skew_ms < 5000, "timestamp " << body["timestamp"].asInt64() << " vs now " << now_ms
                                          << " (a timestamp in seconds would be far off)");
}

BOOST_AUTO_TEST_CASE(default_container_id_is_app_dash_port) {
  ServerProcess plain{ServerOptions{}};
  const std::string expected = "app-" + std::to_string(plain.port());
  HttpClient other;
  HttpResponse response = other.get(plain.url("/health"));
  BOOST_TEST_REQUIRE(response.ok, response.error);
  CHECK_CONTRACT(response, expected);
  BOOST_TEST(response.json()["container"].asString() == expected, response.body);
  HttpResponse whoami = other.get(plain.url("/api/whoami"));
  CHECK_CONTRACT(whoami, expected);
  BOOST_TEST(whoami.json()["container"].asString() == expected, whoami.body);
}

BOOST_AUTO_TEST_CASE(load_test_answers_result_and_processing_time) {
  std::vector<double> results;
  for (int iterations : {1, 1000, 100000}) {
    BOOST_TEST_CONTEXT("iterations=" << iterations) {
      HttpResponse response = get("/api/load-test?iterations=" + std::to_string(iterations));
      BOOST_TEST_REQUIRE(response.ok, response.error);
      BOOST_TEST(response.status == 200, response.describe());
      CHECK_CONTRACT(response, kId);
      Json::Value body = response.json();
      BOOST_TEST(body["container"].asString() == kId, response.body);
      BOOST_TEST_REQUIRE(body["result"].isNumeric(), response.body);
      BOOST_TEST(std::isfinite(body["result"].asDouble()), response.body);
      BOOST_TEST(body["result"].asDouble() >= 0, response.body);
      BOOST_TEST_REQUIRE(body["processingTime"].isNumeric(), response.body);
      BOOST_TEST(body["processingTime"].asDouble() >= 0, response.body);
      results.push_back(body["result"].asDouble());
    }
  }
  // A sum of square roots grows with the number of terms.
  BOOST_TEST(results[1] > results[0]);
  BOOST_TEST(results[2] > results[1]);
}

BOOST_AUTO_TEST_CASE(load_test_rejects_bad_iterations_with_400) {
  for (std::string query :
       {"", "?", "?iterations=", "?iterations=abc", "?iterations=0", "?iterations=100000001",
        "?iterations=-5", "?iterations=12abc", "?iterations=1.5",
        "?iterations=99999999999999999999999", "?other=10"}) {
    check_error(get("/api/load-test" + query), 400, "GET /api/load-test" + query);
  }
}

BOOST_AUTO_TEST_CASE(new_session_gets_hex_id_in_cookie_and_header) {
  HttpResponse response = post_session(session_body("client-a", 1));
  BOOST_TEST_REQUIRE(response.ok, response.error);
  BOOST_TEST_REQUIRE(response.status == 200, response.describe());
  CHECK_CONTRACT(response, kId);
  Json::Value body = response.json();
  const std::string id = body["sessionId"].asString();
  BOOST_TEST(std::regex_match(id, std::regex{"[0-9a-fA-F]{32}"}),
             "sessionId '" << id << "' is not 128 bits of hex");
  BOOST_TEST(body["container"].asString() == kId, response.body);
  BOOST_TEST(body["requestCount"].isIntegral(), response.body);
  BOOST_TEST(body["requestCount"].asInt64() == 1, response.body);

  BOOST_TEST(response.header("X-Session-Id").value_or("") == id, response.describe());

  std::optional<std::string> cookie;
  for (const auto& value : response.headers.all("Set-Cookie")) {
    if (value.rfind("tandem_session=", 0) == 0) cookie = value;
  }
  BOOST_TEST_REQUIRE(cookie.has_value(),
                     "no Set-Cookie tandem_session=...: " << response.describe());
  // Attributes after the first ';', matched case-insensitively as browsers do.
  std::vector<std::string> parts;
  std::string rest = *cookie;
  for (std::size_t at = 0; at <= rest.size();) {
    auto semi = rest.find(';', at);
    std::string part = rest.substr(at, semi == std::string::npos ? std::string::npos : semi - at);
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    parts.push_back(part);
    if (semi == std::string::npos) break;
    at = semi + 1;
  }
  BOOST_TEST(parts[0] == "tandem_session=" + id, *cookie);
  auto has_attribute = [&](const std::string& wanted) {
    return std::any_of(parts.begin() + 1, parts.end(), [&](const std::string& part) {
      return std::regex_match(part, std::regex{wanted, std::regex::icase});
    });
  };
  BOOST_TEST(has_attribute("HttpOnly"), *cookie);
  BOOST_TEST(has_attribute("SameSite\\s*=\\s*Lax"), *cookie);
  BOOST_TEST(has_attribute("Path\\s*=\\s*/"), *cookie);
  // Plain HTTP (no X-Forwarded-Proto: https): a Secure cookie would never come back.
  BOOST_TEST(!has_attribute("Secure"), *cookie);

  // Another client without cookie or header gets another session.
  HttpClient stranger;
  HttpResponse other = stranger.post(server.url("/api/session"), session_body("client-b", 1));
  BOOST_TEST_REQUIRE(other.ok, other.error);
  BOOST_TEST(other.json()["sessionId"].asString() != id, other.body);
  BOOST_TEST(other.json()["requestCount"].asInt64() == 1, other.body);
}

BOOST_AUTO_TEST_CASE(session_cookie_is_secure_when_the_client_came_over_https) {
  // HAProxy says how the client reached it in X-Forwarded-Proto; over HTTPS the session cookie
  // must not travel over plain HTTP later, whatever case the header's value has.
  ServerProcess server{with_args({"--id", kId})};
  for (const char* proto : {"https", "HTTPS"}) {
    HttpClient client;
    HttpResponse response =
        client.post(server.url("/api/session"), session_body("client-s", 1),
                    {"Content-Type: application/json", std::string("X-Forwarded-Proto: ") + proto});
    BOOST_TEST_REQUIRE(response.ok, response.error);
    std::string cookie = response.headers.all("Set-Cookie").empty()
                             ? std::string()
                             : response.headers.all("Set-Cookie").front();
    BOOST_TEST(std::regex_search(cookie, std::regex{";\\s*Secure(;|$)"}), proto << ": " << cookie);
  }
  HttpClient plain;
  HttpResponse response = plain.post(server.url("/api/session"), session_body("client-p", 1),
                                     {"Content-Type: application/json", "X-Forwarded-Proto: http"});
  BOOST_TEST_REQUIRE(response.ok, response.error);
  BOOST_TEST_REQUIRE(!response.headers.all("Set-Cookie").empty(), response.describe());
  BOOST_TEST(response.headers.all("Set-Cookie").front().find("Secure") == std::string::npos,
             response.describe());
}

BOOST_AUTO_TEST_CASE(cookie_engine_keeps_one_session_across_20_posts) {
  HttpClient browser{true};
  std::string first_id;
  for (int i = 1; i <= 20; ++i) {
    HttpResponse response = browser.post(server.url("/api/session"), session_body("browser", i));
    BOOST_TEST_REQUIRE(response.ok, response.error);
    BOOST_TEST_REQUIRE(response.status == 200, response.describe());
    Json::Value body = response.json();
    if (i == 1) first_id = body["sessionId"].asString();
    BOOST_TEST(body["sessionId"].asString() == first_id, "request " << i << ": " << response.body);
    BOOST_TEST(body["requestCount"].asInt64() == i, "request " << i << ": " << response.body);
  }
  // libcurl stored the cookie as HttpOnly (Netscape format marks it "#HttpOnly_").
  bool stored = false;
  for (const auto& line : browser.cookies()) {
    if (line.find("tandem_session") != std::string::npos) {
      stored = true;
      BOOST_TEST(line.rfind("#HttpOnly_", 0) == 0, line);
      BOOST_TEST(line.find(first_id) != std::string::npos, line);
    }
  }
  BOOST_TEST(stored, "cookie jar: " << join(browser.cookies()));
}

BOOST_AUTO_TEST_CASE(x_session_id_header_selects_the_session) {
  HttpResponse first = post_session(session_body("header-client", 1));
  BOOST_TEST_REQUIRE(first.ok, first.error);
  const std::string id = first.json()["sessionId"].asString();
  for (int i = 2; i <= 4; ++i) {
    HttpClient fresh;  // No cookie: only the header names the session.
    HttpResponse response = fresh.post(server.url("/api/session"), session_body("header-client", i),
                                       {"Content-Type: application/json", "X-Session-Id: " + id});
    BOOST_TEST_REQUIRE(response.ok, response.error);
    BOOST_TEST(response.status == 200, response.describe());
    CHECK_CONTRACT(response, kId);
    BOOST_TEST(response.json()["sessionId"].asString() == id, response.body);
    BOOST_TEST(response.json()["requestCount"].asInt64() == i, response.body);
  }
  // And the cookie alone, set by hand, selects it too.
  HttpClient by_hand;
  HttpResponse cookie =
      by_hand.post(server.url("/api/session"), session_body("header-client", 5),
                   {"Content-Type: application/json", "Cookie: tandem_session=" + id});
  BOOST_TEST_REQUIRE(cookie.ok, cookie.error);
  BOOST_TEST(cookie.json()["sessionId"].asString() == id, cookie.body);
  BOOST_TEST(cookie.json()["requestCount"].asInt64() == 5, cookie.body);
}

BOOST_AUTO_TEST_CASE(session_rejects_invalid_json_and_wrong_types_with_400) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "invalid JSON"},
      {R"({"clientId":"a","requestNum":1)", "truncated JSON"},
      {R"({"clientId":true,"requestNum":1})", "clientId a boolean"},
      {R"({"clientId":")" + std::string(257, 'x') + R"(","requestNum":1})",
       "clientId of 257 bytes"},
      {R"({"clientId":"a","requestNum":-1})", "requestNum negative"},
      {R"({"clientId":"a","requestNum":1.5})", "requestNum a fraction"},
      {std::string(2000, '[') + std::string(2000, ']'), "nested 2000 deep"},
      {R"({"clientId":null,"requestNum":1})", "clientId null"},
      {R"({"clientId":["a"],"requestNum":1})", "clientId an array"},
      {R"({"clientId":"a","requestNum":"1"})", "requestNum a string"},
      {R"({"clientId":"a","requestNum":true})", "requestNum a boolean"},
      {R"({"clientId":"a","requestNum":{}})", "requestNum an object"},
      {R"([1,2])", "array body"},
      {R"("clientId")", "string body"},
      {"42", "number body"},
  };
  for (const auto& [body, what] : cases) {
    check_error(post_session(body), 400, what + ": " + body);
  }
  // The server still answers a good one afterwards.
  HttpResponse good = post_session(session_body("after-errors", 1));
  BOOST_TEST(good.status == 200, good.describe());
}

BOOST_AUTO_TEST_CASE(session_takes_the_seed_clients_numbers_and_cookie_jar) {
  // A client that sends clientId and requestNum as numbers and keeps cookies.
  HttpClient browser{true};
  for (int i = 1; i <= 3; ++i) {
    HttpResponse response = browser.post(
        server.url("/api/session"), R"({"clientId":42,"requestNum":)" + std::to_string(i) + "}",
        {"Content-Type: application/json"});
    BOOST_TEST_REQUIRE(response.status == 200, response.describe());
    BOOST_TEST(response.json()["requestCount"].asInt64() == i, response.body);
  }
}

BOOST_AUTO_TEST_CASE(an_id_the_server_never_issued_is_replaced_not_adopted) {
  for (const std::string& presented :
       {std::string("X-Session-Id: attacker-chosen-id-123"),
        std::string("Cookie: tandem_session=attacker-chosen-id-123")}) {
    HttpClient victim;
    HttpResponse response = victim.post(server.url("/api/session"), session_body("victim", 1),
                                        {"Content-Type: application/json", presented});
    BOOST_TEST_REQUIRE(response.status == 200, response.describe());
    const std::string id = response.json()["sessionId"].asString();
    BOOST_TEST(id != "attacker-chosen-id-123", response.body);
    BOOST_TEST(std::regex_match(id, std::regex{"[0-9a-f]{32}"}), id);
    BOOST_TEST(response.header("X-Session-Id").value_or("") == id, response.describe());
    bool cookie_is_the_new_id = false;
    for (const auto& value : response.headers.all("Set-Cookie")) {
      if (value.rfind("tandem_session=" + id + ";", 0) == 0) cookie_is_the_new_id = true;
      BOOST_TEST(value.find("attacker-chosen") == std::string::npos, value);
    }
    BOOST_TEST(cookie_is_the_new_id, response.describe());
  }
  HttpResponse metrics = get("/metrics");
  std::vector<std::string> errors;
  auto rejected =
      sample_sum(parse_prometheus(metrics.body, &errors), "tandem_sessions_rejected_total");
  BOOST_TEST_REQUIRE(rejected.has_value(), metrics.body);
  BOOST_TEST(*rejected >= 2);
}

BOOST_AUTO_TEST_CASE(bodies_over_the_routes_limit_are_refused_before_they_are_read) {
  // POST /api/session takes 4 KiB; a 1 MB clientId is refused from its Content-Length alone.
  std::string big = R"({"clientId":")" + std::string(1000000, 'x') + R"(","requestNum":1})";
  check_error(post_session(big), 413, "1 MB session body");
  HttpResponse good = post_session(session_body("after-413", 1));
  BOOST_TEST(good.status == 200, good.describe());
}

BOOST_AUTO_TEST_CASE(unavailable_session_store_answers_503_json) {
  // A Redis store where nothing listens: the server runs, and sessions are refused with 503.
  ServerProcess no_redis{with_args(
      {"--id", kId, "--session-store", "redis://127.0.0.1:" + std::to_string(free_port())})};
  HttpClient other;
  for (int i = 0; i < 3; ++i) {
    HttpResponse response = other.post(no_redis.url("/api/session"), session_body("no-redis", i),
                                       {"Content-Type: application/json"});
    check_error(response, 503,
                "POST /api/session without a session store, try " + std::to_string(i));
  }
  // Routes that need no session store still work.
  HttpResponse whoami = other.get(no_redis.url("/api/whoami"));
  BOOST_TEST(whoami.status == 200, whoami.describe());
}

BOOST_AUTO_TEST_CASE(unavailable_sentinel_store_answers_503_and_is_named_in_health) {
  // Sentinels where nothing listens: sessions are refused with 503, and /health and /metrics
  // name the store "sentinel" and say it cannot be used.
  const std::string sentinels =
      "127.0.0.1:" + std::to_string(free_port()) + ",127.0.0.1:" + std::to_string(free_port());
  ServerProcess no_sentinel{
      with_args({"--id", kId, "--session-store", "sentinel://" + sentinels + "/tandem"})};
  HttpClient other;
  HttpResponse refused = other.post(no_sentinel.url("/api/session"), session_body("sentinel", 1),
                                    {"Content-Type: application/json"});
  check_error(refused, 503, "POST /api/session with no Sentinel");
  HttpResponse health = other.get(no_sentinel.url("/health"));
  BOOST_TEST_REQUIRE(health.status == 200, health.describe());
  BOOST_TEST(health.json()["sessionStore"]["kind"].asString() == "sentinel", health.body);
  BOOST_TEST(health.json()["sessionStore"]["state"].asString() != "ok", health.body);
  HttpResponse metrics = other.get(no_sentinel.url("/metrics"));
  BOOST_TEST(
      metrics.body.find("tandem_session_store_up{store=\"sentinel\"} 0") != std::string::npos,
      metrics.body);
}

BOOST_AUTO_TEST_CASE(idle_session_expires_after_session_ttl) {
  ServerProcess short_lived{with_args({"--id", kId, "--session-ttl", "1"})};
  HttpClient browser{true};
  for (int i = 1; i <= 2; ++i) {
    HttpResponse response = browser.post(short_lived.url("/api/session"), session_body("ttl", i));
    BOOST_TEST_REQUIRE(response.status == 200, response.describe());
    BOOST_TEST(response.json()["requestCount"].asInt64() == i, response.body);
  }
  // Idleness is what is under test, so this waits (TTL plus margin) without touching the session.
  std::this_thread::sleep_for(2500ms);
  HttpResponse after = browser.post(short_lived.url("/api/session"), session_body("ttl", 3));
  BOOST_TEST_REQUIRE(after.status == 200, after.describe());
  BOOST_TEST(after.json()["requestCount"].asInt64() == 1,
             "session outlived a 1 s TTL by 1.5 s: " << after.body);
}

BOOST_AUTO_TEST_CASE(max_sessions_bounds_the_sessions_kept) {
  ServerProcess bounded{with_args({"--id", kId, "--max-sessions", "2"})};
  std::vector<std::unique_ptr<HttpClient>> browsers;
  for (int i = 0; i < 3; ++i) {
    browsers.push_back(std::make_unique<HttpClient>(true));
    HttpResponse response = browsers.back()->post(bounded.url("/api/session"),
                                                  session_body("bounded-" + std::to_string(i), 1));
    BOOST_TEST_REQUIRE(response.status == 200, response.describe());
  }
  // The newest session lives on ...
  HttpResponse newest =
      browsers.back()->post(bounded.url("/api/session"), session_body("bounded-2", 2));
  BOOST_TEST(newest.json()["requestCount"].asInt64() == 2, newest.body);
  // ... and no more than two are kept.
  HttpResponse metrics = browsers.back()->get(bounded.url("/metrics"));
  std::vector<std::string> errors;
  auto active = sample_sum(parse_prometheus(metrics.body, &errors), "tandem_sessions_active");
  BOOST_TEST_REQUIRE(active.has_value(), metrics.body);
  BOOST_TEST(*active <= 2, "tandem_sessions_active " << *active << " with --max-sessions 2");
}

BOOST_AUTO_TEST_CASE(api_metrics_counts_requests_by_route_and_status) {
  HttpResponse before = get("/api/metrics");
  BOOST_TEST_REQUIRE(before.ok, before.error);
  BOOST_TEST_REQUIRE(before.status == 200, before.describe());
  CHECK_CONTRACT(before, kId);
  Json::Value before_json = before.json();
  BOOST_TEST_REQUIRE(before_json.isObject(), before.body);

  constexpr int kWhoami = 5;
  for (int i = 0; i < kWhoami; ++i) BOOST_TEST(get("/api/whoami").status == 200);
  BOOST_TEST(get("/no/such/path").status == 404);
  BOOST_TEST(post_session(session_body("metrics", 1)).status == 200);

  HttpResponse after = get("/api/metrics");
  BOOST_TEST_REQUIRE(after.ok, after.error);
  auto old_leaves = flatten(before_json);
  auto new_leaves = flatten(after.json());
  auto grew_by = [&](const std::vector<std::string>& needles, double at_least) {
    for (const auto& leaf : new_leaves) {
      // Not a structured binding: clang 14 cannot capture those in the lambda below.
      const std::string& key = leaf.first;
      double value = leaf.second;
      bool all = std::all_of(needles.begin(), needles.end(),
                             [&](const std::string& needle) { return contains(key, needle); });
      double old = old_leaves.count(key) != 0 ? old_leaves[key] : 0;
      if (all && value - old >= at_least) return true;
    }
    return false;
  };
  BOOST_TEST(grew_by({"whoami", "200"}, kWhoami),
             "no counter for /api/whoami and 200 grew by " << kWhoami << ": " << after.body);
  BOOST_TEST(grew_by({"404"}, 1), "no counter for 404 grew: " << after.body);
  BOOST_TEST(grew_by({"session", "200"}, 1),
             "no counter for /api/session 200 grew: " << after.body);
  // Connections, sessions, draining and uptime are reported.
  for (const std::string key : {"connection", "session", "draining", "uptime"}) {
    bool present = std::any_of(new_leaves.begin(), new_leaves.end(), [&](const auto& leaf) {
      std::string lower = leaf.first;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      return contains(lower, key);
    });
    BOOST_TEST(present, "no '" << key << "' figure in " << after.body);
  }
}

BOOST_AUTO_TEST_CASE(prometheus_metrics_expose_the_documented_families) {
  const std::string version = binary_version();
  auto scrape = [&](std::vector<Sample>* samples) {
    HttpResponse response = get("/metrics");
    BOOST_TEST_REQUIRE(response.ok, response.error);
    BOOST_TEST_REQUIRE(response.status == 200, response.describe());
    // Prometheus text, not JSON, but still the instance headers.
    auto problems = contract_problems(response, kId, false);
    BOOST_TEST(problems.empty(), join(problems));
    std::vector<std::string> errors;
    *samples = parse_prometheus(response.body, &errors);
    BOOST_TEST(errors.empty(), join(errors));
    return response.body;
  };
  std::vector<Sample> before;
  scrape(&before);

  constexpr int kWhoami = 7;
  for (int i = 0; i < kWhoami; ++i) BOOST_TEST(get("/api/whoami").status == 200);
  BOOST_TEST(post_session(session_body("prometheus", 1)).status == 200);

  std::vector<Sample> after;
  const std::string text = scrape(&after);
  BOOST_TEST_CONTEXT(text) {
    auto old_count =
        sample_sum(before, "tandem_http_requests_total", {{"route", "whoami"}, {"code", "200"}})
            .value_or(0);
    auto new_count =
        sample_sum(after, "tandem_http_requests_total", {{"route", "whoami"}, {"code", "200"}});
    BOOST_TEST_REQUIRE(new_count.has_value(),
                       "no tandem_http_requests_total{route=~whoami,code=200}");
    BOOST_TEST(*new_count - old_count >= kWhoami);

    // The latency histogram: buckets with le, a +Inf bucket equal to _count, and _sum.
    auto inf = sample_sum(after, "tandem_http_request_duration_seconds_bucket", {{"le", "+Inf"}});
    auto count = sample_sum(after, "tandem_http_request_duration_seconds_count");
    BOOST_TEST_REQUIRE(inf.has_value(),
                       "no tandem_http_request_duration_seconds_bucket{le=\"+Inf\"}");
    BOOST_TEST_REQUIRE(count.has_value(), "no tandem_http_request_duration_seconds_count");
    BOOST_TEST(*inf == *count);
    BOOST_TEST(*count >= kWhoami);
    BOOST_TEST(sample_sum(after, "tandem_http_request_duration_seconds_sum").has_value());
    std::size_t buckets = 0;
    for (const auto& sample : after) {
      if (sample.name == "tandem_http_request_duration_seconds_bucket") ++buckets;
    }
    BOOST_TEST(buckets > 1);

    auto open = sample_sum(after, "tandem_connections_open");
    BOOST_TEST_REQUIRE(open.has_value(), "no tandem_connections_open");
    BOOST_TEST(*open >= 1);
    auto sessions = sample_sum(after, "tandem_sessions_active");
    BOOST_TEST_REQUIRE(sessions.has_value(), "no tandem_sessions_active");
    BOOST_TEST(*sessions >= 1);
    auto draining = sample_sum(after, "tandem_draining");
    BOOST_TEST_REQUIRE(draining.has_value(), "no tandem_draining");
    BOOST_TEST(*draining == 0);
    auto build = sample_sum(after, "tandem_build_info", {{"version", version}});
    BOOST_TEST_REQUIRE(build.has_value(), "no tandem_build_info{version=\"" << version << "\"}");
    BOOST_TEST(*build == 1);
    auto rss = sample_sum(after, "process_resident_memory_bytes");
    BOOST_TEST_REQUIRE(rss.has_value(), "no process_resident_memory_bytes");
    BOOST_TEST(*rss > 0);
  }
}

BOOST_AUTO_TEST_CASE(unknown_paths_answer_404_json) {
  for (const std::string path :
       {"/", "/nope", "/api", "/api/whoami/extra", "/healthz", "/api/sessions", "/metrics/x"}) {
    check_error(get(path), 404, "GET " + path);
  }
  check_error(client.request("POST", server.url("/nope"), {}, std::string{"{}"}), 404,
              "POST /nope");
  // A query string does not change which route a path is.
  HttpResponse query = get("/api/whoami?x=1");
  BOOST_TEST(query.status == 200, query.describe());
  CHECK_CONTRACT(query, kId);
}

BOOST_AUTO_TEST_CASE(wrong_method_answers_405_with_allow) {
  struct Case {
    std::string method;
    std::string path;
    std::string allowed;      // Must be listed in Allow.
    std::string not_allowed;  // Must not be listed.
  };
  const std::vector<Case> cases = {
      {"DELETE", "/api/whoami", "GET", "DELETE"},
      {"POST", "/api/whoami", "GET", "POST"},
      {"GET", "/api/session", "POST", "GET"},
      {"PUT", "/api/session", "POST", "PUT"},
      {"POST", "/health", "GET", "POST"},
      {"PUT", "/api/load-test?iterations=5", "GET", "PUT"},
      {"DELETE", "/api/metrics", "GET", "DELETE"},
      {"POST", "/metrics", "GET", "POST"},
  };
  for (const auto& c : cases) {
    std::optional<std::string> body;
    if (c.method == "POST" || c.method == "PUT") body = session_body("x", 1);
    HttpResponse response = client.request(c.method, server.url(c.path), {}, body);
    check_error(response, 405, c.method + " " + c.path);
    BOOST_TEST_CONTEXT(c.method << " " << c.path) {
      BOOST_TEST(response.headers.has_token("Allow", c.allowed), response.describe());
      BOOST_TEST(!response.headers.has_token("Allow", c.not_allowed), response.describe());
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
