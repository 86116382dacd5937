#define BOOST_TEST_MODULE access_log
#include <json/reader.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>

#include "http_client.hpp"
#include "server_process.hpp"

using namespace tandem::test;

namespace {

// The stdout lines of `server` whose event is "request", parsed, without the readiness probes'
// GET /health.
std::vector<Json::Value> request_lines(const ServerProcess& server) {
  std::vector<Json::Value> found;
  Json::CharReaderBuilder builder;
  std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  for (const std::string& line : server.stdout_lines()) {
    Json::Value value;
    std::string errors;
    if (reader->parse(line.data(), line.data() + line.size(), &value, &errors) &&
        value["event"].asString() == "request" && value["target"].asString() != "/health") {
      found.push_back(value);
    }
  }
  return found;
}

}  // namespace

BOOST_AUTO_TEST_CASE(access_log_has_one_line_per_request_with_haproxys_request_id) {
  ServerProcess server(with_args({"--access-log", "all", "--id", "app-log"}));
  HttpClient client;
  BOOST_TEST_REQUIRE(client.get(server.url("/api/whoami"), {"X-Request-ID: req-42"}).status == 200);
  BOOST_TEST_REQUIRE(client.get(server.url("/nope?x=1")).status == 404);
  std::vector<Json::Value> lines;
  BOOST_TEST_REQUIRE(
      poll_until([&] { return (lines = request_lines(server)).size() >= 2; }, Millis{5000}));
  BOOST_TEST(lines.size() == 2u);
  BOOST_TEST(lines[0]["method"].asString() == "GET");
  BOOST_TEST(lines[0]["target"].asString() == "/api/whoami");
  BOOST_TEST(lines[0]["status"].asInt() == 200);
  BOOST_TEST(lines[0]["request_id"].asString() == "req-42");
  BOOST_TEST(lines[0]["instance"].asString() == "app-log");
  BOOST_TEST(lines[0]["duration_ms"].isNumeric());
  BOOST_TEST(lines[1]["target"].asString() == "/nope?x=1");
  BOOST_TEST(lines[1]["status"].asInt() == 404);
}

BOOST_AUTO_TEST_CASE(by_default_only_errors_and_slow_answers_are_logged) {
  // A request slower than --slow-request is logged; quick ones, even a 404, are only counted.
  ServerProcess server(with_args({"--slow-request", "5ms", "--id", "app-log"}));
  HttpClient client;
  for (int i = 0; i < 5; ++i)
    BOOST_TEST_REQUIRE(client.get(server.url("/api/whoami")).status == 200);
  BOOST_TEST_REQUIRE(client.get(server.url("/nope")).status == 404);
  BOOST_TEST_REQUIRE(
      client.get(server.url("/api/load-test?iterations=100000000"), {"X-Request-ID: slow-1"})
          .status == 200);
  std::vector<Json::Value> lines;
  BOOST_TEST_REQUIRE(
      poll_until([&] { return !(lines = request_lines(server)).empty(); }, Millis{5000}));
  BOOST_TEST(lines.size() == 1u);
  BOOST_TEST(lines[0]["request_id"].asString() == "slow-1");
  BOOST_TEST(lines[0]["duration_ms"].asDouble() >= 5.0);
}

BOOST_AUTO_TEST_CASE(access_log_off_logs_no_request) {
  ServerProcess server(with_args({"--access-log", "off", "--slow-request", "1ms"}));
  HttpClient client;
  BOOST_TEST_REQUIRE(client.get(server.url("/api/load-test?iterations=100000000")).status == 200);
  for (int i = 0; i < 5; ++i)
    BOOST_TEST_REQUIRE(client.get(server.url("/api/whoami")).status == 200);
  // The lifecycle lines are there; request lines are not.
  BOOST_TEST_REQUIRE(!server.stdout_lines().empty());
  BOOST_TEST(request_lines(server).empty());
}
