#define BOOST_TEST_MODULE app
#include "app.hpp"

#include <json/reader.h>

#include <boost/test/unit_test.hpp>
#include <memory>

#include "memory_session_store.hpp"

using tandem::Request;
using tandem::Response;

namespace {

// An App over an in-memory store, answering synchronously into `last`.
struct Fixture {
  tandem::Config config;
  tandem::Metrics metrics{"9.9.9"};
  tandem::MemorySessionStore sessions{100, std::chrono::seconds(60)};
  tandem::ServerStatus status;
  std::unique_ptr<tandem::App> app;

  Fixture() {
    config.port = 3007;
    app = std::make_unique<tandem::App>(config, metrics, sessions, status);
  }

  Response call(std::string method, std::string target, std::string body = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.headers = std::move(headers);
    request.started = std::chrono::steady_clock::now();
    Response answer;
    int calls = 0;
    app->handle(request, [&](Response response) {
      answer = std::move(response);
      ++calls;
    });
    BOOST_TEST_REQUIRE(calls == 1);
    return answer;
  }
};

Json::Value parse(const std::string& text) {
  Json::Value value;
  Json::CharReaderBuilder builder;
  std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  std::string errors;
  BOOST_TEST_REQUIRE(reader->parse(text.data(), text.data() + text.size(), &value, &errors));
  return value;
}

std::string header(const Response& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return {};
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(app, Fixture)

BOOST_AUTO_TEST_CASE(container_id_defaults_to_app_port) {
  BOOST_TEST(app->container_id() == "app-3007");
}

BOOST_AUTO_TEST_CASE(health_reports_healthy_then_draining) {
  Response healthy = call("GET", "/health");
  BOOST_TEST(healthy.status == 200);
  Json::Value body = parse(healthy.body);
  BOOST_TEST(body["status"].asString() == "healthy");
  BOOST_TEST(body["container"].asString() == "app-3007");
  BOOST_TEST(body["version"].isString());
  BOOST_TEST(body["uptime"].isNumeric());
  BOOST_TEST(body["connections"].isIntegral());
  status.draining = true;
  Response draining = call("GET", "/health");
  BOOST_TEST(draining.status == 503);
  BOOST_TEST(parse(draining.body)["status"].asString() == "draining");
}

BOOST_AUTO_TEST_CASE(whoami_has_the_contract_fields) {
  Json::Value body = parse(call("GET", "/api/whoami").body);
  BOOST_TEST(body["container"].asString() == "app-3007");
  BOOST_TEST(body["pid"].asInt64() == static_cast<int64_t>(getpid()));
  BOOST_TEST(!body["hostname"].asString().empty());
  BOOST_TEST(body["timestamp"].asInt64() > 1700000000000LL);  // Milliseconds, not seconds.
}

BOOST_AUTO_TEST_CASE(session_counts_per_id_and_sets_cookie_and_header) {
  Response first = call("POST", "/api/session", R"({"clientId":"c1","requestNum":1})");
  BOOST_TEST_REQUIRE(first.status == 200);
  Json::Value body = parse(first.body);
  std::string id = body["sessionId"].asString();
  BOOST_TEST(id.size() == 32u);
  BOOST_TEST(body["requestCount"].asInt() == 1);
  BOOST_TEST(header(first, "X-Session-Id") == id);
  BOOST_TEST(header(first, "Set-Cookie") ==
             "tandem_session=" + id + "; HttpOnly; SameSite=Lax; Path=/");

  Response by_cookie = call("POST", "/api/session", "{}", {{"cookie", "tandem_session=" + id}});
  BOOST_TEST(parse(by_cookie.body)["requestCount"].asInt() == 2);
  Response by_header = call("POST", "/api/session", "", {{"x-session-id", id}});
  BOOST_TEST(parse(by_header.body)["requestCount"].asInt() == 3);
  BOOST_TEST(parse(by_header.body)["sessionId"].asString() == id);
}

BOOST_AUTO_TEST_CASE(session_refuses_bad_bodies_with_reasons) {
  Response invalid = call("POST", "/api/session", "{not json");
  BOOST_TEST(invalid.status == 400);
  BOOST_TEST(parse(invalid.body)["error"].asString().find("not valid JSON") != std::string::npos);
  Response array = call("POST", "/api/session", "[1,2]");
  BOOST_TEST(array.status == 400);
  BOOST_TEST(parse(array.body)["error"].asString().find("JSON object") != std::string::npos);
  Response client = call("POST", "/api/session", R"({"clientId":5})");
  BOOST_TEST(client.status == 400);
  BOOST_TEST(parse(client.body)["error"].asString() == "clientId must be a string");
  Response number = call("POST", "/api/session", R"({"requestNum":"one"})");
  BOOST_TEST(number.status == 400);
  BOOST_TEST(parse(number.body)["error"].asString() == "requestNum must be a number");
  Response bad_id = call("POST", "/api/session", "{}", {{"x-session-id", "no spaces allowed"}});
  BOOST_TEST(bad_id.status == 400);
  BOOST_TEST(sessions.stats().active == 0u);
}

BOOST_AUTO_TEST_CASE(a_foreign_cookie_gets_a_new_session) {
  Response response = call("POST", "/api/session", "{}", {{"cookie", "tandem_session=bad value!"}});
  BOOST_TEST(response.status == 200);
  BOOST_TEST(parse(response.body)["sessionId"].asString().size() == 32u);
}

BOOST_AUTO_TEST_CASE(load_test_validates_iterations) {
  Response ok = call("GET", "/api/load-test?iterations=100");
  BOOST_TEST_REQUIRE(ok.status == 200);
  Json::Value body = parse(ok.body);
  BOOST_TEST(body["container"].asString() == "app-3007");
  BOOST_TEST(body["result"].asDouble() > 600.0);  // Sum of sqrt(0..99) is about 661.46.
  BOOST_TEST(body["result"].asDouble() < 700.0);
  BOOST_TEST(body["processingTime"].isNumeric());
  for (const char* bad :
       {"/api/load-test", "/api/load-test?iterations=", "/api/load-test?iterations=abc",
        "/api/load-test?iterations=0", "/api/load-test?iterations=-5",
        "/api/load-test?iterations=100000001", "/api/load-test?iterations=12x",
        "/api/load-test?iterations=99999999999999999999999"}) {
    Response response = call("GET", bad);
    BOOST_TEST(response.status == 400, bad);
    BOOST_TEST(parse(response.body)["error"].asString().find("iterations") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(unknown_path_and_wrong_method) {
  Response missing = call("GET", "/nope");
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(parse(missing.body)["error"].isString());
  Response wrong = call("GET", "/api/session");
  BOOST_TEST(wrong.status == 405);
  BOOST_TEST(header(wrong, "Allow") == "POST");
}

BOOST_AUTO_TEST_CASE(requests_are_counted_by_route_and_status) {
  call("GET", "/api/whoami");
  call("GET", "/api/whoami");
  call("GET", "/nope");
  call("GET", "/api/load-test?iterations=0");
  BOOST_TEST(metrics.requests("/api/whoami", 200) == 2u);
  BOOST_TEST(metrics.requests("unmatched", 404) == 1u);
  BOOST_TEST(metrics.requests("/api/load-test", 400) == 1u);
  Json::Value counters = parse(call("GET", "/api/metrics").body);
  BOOST_TEST(counters["requests"]["byRoute"]["/api/whoami"]["200"].asUInt64() == 2u);
  Response text = call("GET", "/metrics");
  BOOST_TEST(text.content_type.find("text/plain") == 0u);
  BOOST_TEST(text.body.find("tandem_build_info{version=\"9.9.9\"} 1") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
