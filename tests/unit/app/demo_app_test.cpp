#define BOOST_TEST_MODULE demo_app
#include "app/demo_app.hpp"

#include <json/reader.h>

#include <uv.h>

#include <boost/test/unit_test.hpp>
#include <memory>

#include "runtime/dispatcher.hpp"
#include "runtime/metrics.hpp"
#include "tandem/log.hpp"

using tandem::Request;
using tandem::Response;

namespace {

// The demo application installed as an instance installs it (a memory store of 100 sessions,
// a CPU worker of two slots, a loop of its own), requests dispatched as a connection dispatches
// them. call() turns the loop until the one answer arrives (at once for every route but the
// CPU-bound one).
struct Fixture {
  static constexpr std::size_t kWorkerSlots = 2;
  static constexpr const char* kInstance = "app-3007";

  uv_loop_t loop;
  std::FILE* log_sink = std::tmpfile();
  tandem::Log log{"test", log_sink};
  tandem::Metrics metrics{"9.9.9"};
  std::unique_ptr<tandem::CpuWorker> worker;
  std::string instance_id = kInstance;
  tandem::Router router;
  tandem::Dispatcher dispatcher{router, metrics};
  std::unique_ptr<tandem::Services> services;
  tandem::DemoApp app{tandem::DemoSettings{"memory", 100, 1024 * 1024, std::chrono::seconds(60)}};

  Fixture() {
    uv_loop_init(&loop);
    worker = std::make_unique<tandem::CpuWorker>(&loop, kWorkerSlots, log);
    services = std::make_unique<tandem::Services>(
        tandem::Services{&loop, instance_id, log, *worker, metrics});
    app.install(router, *services);
  }

  ~Fixture() {
    app.stop();
    worker->stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_CHECK_EQUAL(uv_loop_close(&loop), 0);
    std::fclose(log_sink);
  }

  tandem::SessionStoreStats stats() { return app.sessions()->stats(); }

  static Request make(std::string method, std::string target, std::string body,
                      std::vector<std::pair<std::string, std::string>> headers) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.headers = std::move(headers);
    request.started = std::chrono::steady_clock::now();
    return request;
  }

  Response call(std::string method, std::string target, std::string body = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request request =
        make(std::move(method), std::move(target), std::move(body), std::move(headers));
    Response answer;
    int calls = 0;
    dispatcher.handle(request, [&](Response response) {
      answer = std::move(response);
      ++calls;
    });
    // Bounded: a CPU-bound answer comes once the worker is done, in one turn or a few.
    for (int turns = 0; calls == 0 && turns < 1000; ++turns) uv_run(&loop, UV_RUN_ONCE);
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

BOOST_AUTO_TEST_CASE(whoami_has_the_contract_fields) {
  Json::Value body = parse(call("GET", "/api/whoami").body);
  BOOST_TEST(body["container"].asString() == kInstance);
  BOOST_TEST(body["pid"].asInt64() == static_cast<int64_t>(getpid()));
  BOOST_TEST(!body["hostname"].asString().empty());
  BOOST_TEST(body["timestamp"].asInt64() > 1700000000000LL);  // Milliseconds, not seconds.
}

BOOST_AUTO_TEST_CASE(session_counts_per_id_and_sets_cookie_when_new) {
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
  // The client has the cookie already: it is set only with a new session.
  BOOST_TEST(header(by_cookie, "Set-Cookie").empty());
  BOOST_TEST(header(by_cookie, "X-Session-Id") == id);
  Response by_header = call("POST", "/api/session", "", {{"x-session-id", id}});
  BOOST_TEST(parse(by_header.body)["requestCount"].asInt() == 3);
  BOOST_TEST(parse(by_header.body)["sessionId"].asString() == id);
}

BOOST_AUTO_TEST_CASE(an_id_the_server_never_issued_is_not_adopted) {
  for (auto presented : std::vector<std::pair<std::string, std::string>>{
           {"x-session-id", "attacker-chosen-id-123"},
           {"cookie", "tandem_session=attacker-chosen-id-123"}}) {
    Response response = call("POST", "/api/session", "{}", {presented});
    BOOST_TEST_REQUIRE(response.status == 200);
    Json::Value body = parse(response.body);
    std::string id = body["sessionId"].asString();
    BOOST_TEST(id != "attacker-chosen-id-123");
    BOOST_TEST(id.size() == 32u);
    BOOST_TEST(body["requestCount"].asInt() == 1);
    BOOST_TEST(header(response, "X-Session-Id") == id);
    BOOST_TEST(header(response, "Set-Cookie").find("tandem_session=" + id + ";") == 0u);
  }
  BOOST_TEST(stats().rejected == 2u);
  BOOST_TEST(stats().active == 2u);
  BOOST_TEST(metrics.render_prometheus({}).find("tandem_sessions_rejected_total 2") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(session_takes_the_seed_clients_shapes) {
  // Clients may send both fields as numbers.
  Response numbers = call("POST", "/api/session", R"({"clientId":7,"requestNum":3})");
  BOOST_TEST(numbers.status == 200, numbers.body);
  Response strings = call("POST", "/api/session", R"({"clientId":"c7","requestNum":0})");
  BOOST_TEST(strings.status == 200, strings.body);
  Response longest =
      call("POST", "/api/session", R"({"clientId":")" + std::string(256, 'x') + R"("})");
  BOOST_TEST(longest.status == 200, longest.body);
}

BOOST_AUTO_TEST_CASE(session_refuses_bad_bodies_with_reasons) {
  auto error_of = [&](const std::string& body) {
    Response response = call("POST", "/api/session", body);
    BOOST_TEST(response.status == 400, body);
    return parse(response.body)["error"].asString();
  };
  BOOST_TEST(error_of("{not json").find("not valid JSON") != std::string::npos);
  BOOST_TEST(error_of("[1,2]").find("JSON object") != std::string::npos);
  for (const char* body : {R"({"clientId":true})", R"({"clientId":null})", R"({"clientId":[1]})",
                           R"({"clientId":{"a":1}})"}) {
    BOOST_TEST(error_of(body) == "clientId must be a string or a number");
  }
  BOOST_TEST(error_of(R"({"clientId":")" + std::string(257, 'x') + R"("})") ==
             "clientId must be at most 256 bytes, not 257");
  for (const char* body : {R"({"requestNum":"one"})", R"({"requestNum":-1})",
                           R"({"requestNum":1.5})", R"({"requestNum":true})"}) {
    BOOST_TEST(error_of(body) == "requestNum must be a whole number from 0");
  }
  // A body nested past the depth limit is refused by name, not with an internal error.
  BOOST_TEST(error_of(std::string(100000, '[')).find("deeper than 32") != std::string::npos);
  Response bad_id = call("POST", "/api/session", "{}", {{"x-session-id", "no spaces allowed"}});
  BOOST_TEST(bad_id.status == 400);
  BOOST_TEST(stats().active == 0u);
}

BOOST_AUTO_TEST_CASE(a_foreign_cookie_gets_a_new_session) {
  Response response = call("POST", "/api/session", "{}", {{"cookie", "tandem_session=bad value!"}});
  BOOST_TEST(response.status == 200);
  BOOST_TEST(parse(response.body)["sessionId"].asString().size() == 32u);
}

BOOST_AUTO_TEST_CASE(routes_say_how_large_a_body_they_take) {
  BOOST_TEST(dispatcher.body_limit(make("POST", "/api/session", "", {})) ==
             tandem::DemoApp::kSessionBodyLimit);
  BOOST_TEST(dispatcher.body_limit(make("GET", "/api/whoami", "", {})) == 0u);
  BOOST_TEST(dispatcher.body_limit(make("GET", "/api/load-test?iterations=5", "", {})) == 0u);
  BOOST_TEST(dispatcher.body_limit(make("PUT", "/nope", "", {})) ==
             tandem::Dispatcher::kUnroutedBodyLimit);
}

BOOST_AUTO_TEST_CASE(load_test_runs_on_the_worker_and_a_full_worker_answers_503) {
  // The loop is not turned while these are submitted: the first two take the worker's slots.
  std::vector<Response> answers;
  for (int i = 0; i < 3; ++i) {
    dispatcher.handle(make("GET", "/api/load-test?iterations=2000000", "", {}),
                      [&](Response response) { answers.push_back(std::move(response)); });
  }
  BOOST_TEST_REQUIRE(answers.size() == 1u);  // The third, refused at once.
  BOOST_TEST(answers[0].status == 503);
  BOOST_TEST(header(answers[0], "Retry-After") == "1");
  BOOST_TEST(parse(answers[0].body)["error"].asString().find("CPU worker is full") !=
             std::string::npos);
  BOOST_TEST(worker->stats().in_flight == kWorkerSlots);
  for (int turns = 0; answers.size() < 3 && turns < 1000; ++turns) uv_run(&loop, UV_RUN_ONCE);
  BOOST_TEST_REQUIRE(answers.size() == 3u);
  BOOST_TEST(answers[1].status == 200);
  BOOST_TEST(answers[2].status == 200);
  tandem::CpuWorkerStats stats = worker->stats();
  BOOST_TEST(stats.completed == 2u);
  BOOST_TEST(stats.rejected == 1u);
  BOOST_TEST(stats.in_flight == 0u);
}

BOOST_AUTO_TEST_CASE(load_test_validates_iterations) {
  Response ok = call("GET", "/api/load-test?iterations=100");
  BOOST_TEST_REQUIRE(ok.status == 200);
  Json::Value body = parse(ok.body);
  BOOST_TEST(body["container"].asString() == kInstance);
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
  Json::Value counters = metrics.render_json({});
  BOOST_TEST(counters["requests"]["byRoute"]["/api/whoami"]["200"].asUInt64() == 2u);
  // The application's own metrics are there too, read when rendered.
  BOOST_TEST(counters["app"]["tandem_session_store_up{store=\"memory\"}"].asDouble() == 1.0);
  std::string text = metrics.render_prometheus({});
  BOOST_TEST(text.find("tandem_build_info{version=\"9.9.9\"} 1") != std::string::npos);
  BOOST_TEST(text.find("tandem_sessions_active 0") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
