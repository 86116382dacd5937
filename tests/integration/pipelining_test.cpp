// What one connection's pipelined requests may cost everyone else, over raw sockets: CPU-bound
// requests go to the instance's worker, never onto the loop, so /health answers while they run;
// a connection holds at most Connection::kMaxPipelined of them; a full worker answers 503 with
// Retry-After; and however many requests arrive in one read, each is answered, in order.
#define BOOST_TEST_MODULE pipelining
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "raw_client.hpp"
#include "server_process.hpp"

using namespace tandem::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kId = "pipelining-it";
// About 0.1 s of CPU each on this machine's cores; 20 of them keep the worker busy for seconds.
constexpr const char* kHeavy = "/api/load-test?iterations=30000000";
// Connection::kMaxPipelined.
constexpr unsigned kMaxPipelined = 16;

std::string get_request(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
}

std::string repeated(const std::string& request, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += request;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(health_answers_while_one_connection_pipelines_cpu_work) {
  ServerProcess server{with_args({"--id", kId})};
  RawClient attacker{server.host(), server.port()};
  BOOST_TEST_REQUIRE(attacker.send(repeated(get_request(kHeavy), 20)));

  // While the 20 answers are being computed, a second client asks for /health again and again.
  // The loop never runs the work, so each is answered; and the worker never holds more of the
  // attacker's requests than one connection may have in flight.
  HttpClient health_client;
  int answered_meanwhile = 0;
  unsigned most_in_flight = 0;
  std::vector<HttpResponse> heavy;
  auto deadline = Clock::now() + 60s;
  while (heavy.size() < 20 && Clock::now() < deadline) {
    HttpResponse health = health_client.get(server.url("/health"));
    BOOST_TEST_REQUIRE(health.status == 200, health.describe());
    most_in_flight = std::max(most_in_flight, health.json()["worker"]["inFlight"].asUInt());
    auto batch = attacker.read_responses(20 - heavy.size(), 20ms);
    if (heavy.size() + batch.size() < 20) ++answered_meanwhile;
    heavy.insert(heavy.end(), batch.begin(), batch.end());
  }
  BOOST_TEST_REQUIRE(heavy.size() == 20u, "answers: " << heavy.size());
  for (const auto& response : heavy) BOOST_TEST(response.status == 200, response.describe());
  BOOST_TEST_MESSAGE("/health answered " << answered_meanwhile
                                         << " times while the pipelined work ran; at most "
                                         << most_in_flight << " on the worker at once");
  BOOST_TEST(answered_meanwhile >= 5);
  BOOST_TEST(most_in_flight >= 1u);
  BOOST_TEST(most_in_flight <= kMaxPipelined);
}

BOOST_AUTO_TEST_CASE(a_full_worker_answers_503_with_retry_after_and_recovers) {
  ServerProcess server{with_args({"--id", kId, "--worker-queue", "2"})};
  RawClient first{server.host(), server.port()};
  RawClient second{server.host(), server.port()};
  BOOST_TEST_REQUIRE(first.send(repeated(get_request(kHeavy), 4)));
  BOOST_TEST_REQUIRE(second.send(repeated(get_request(kHeavy), 4)));
  auto answers = first.read_responses(4, 30000ms);
  auto more = second.read_responses(4, 30000ms);
  answers.insert(answers.end(), more.begin(), more.end());
  BOOST_TEST_REQUIRE(answers.size() == 8u);
  int ok = 0;
  int busy = 0;
  for (const auto& response : answers) {
    CHECK_CONTRACT(response, kId);
    if (response.status == 200) {
      ++ok;
    } else {
      BOOST_TEST(response.status == 503, response.describe());
      BOOST_TEST(response.header("Retry-After").value_or("") == "1", response.describe());
      BOOST_TEST(response.json()["error"].asString().find("CPU worker is full") !=
                 std::string::npos);
      ++busy;
    }
  }
  BOOST_TEST_MESSAGE(ok << " computed, " << busy << " refused with the worker's 2 slots");
  BOOST_TEST(ok >= 2);
  BOOST_TEST(busy >= 1);
  // Once the queue has room again, the route works.
  HttpClient later;
  HttpResponse after = later.get(server.url("/api/load-test?iterations=1000"));
  BOOST_TEST(after.status == 200, after.describe());
  HttpResponse metrics = later.get(server.url("/metrics"));
  BOOST_TEST(metrics.body.find("tandem_worker_jobs_total{outcome=\"rejected\"} " +
                               std::to_string(busy)) != std::string::npos,
             metrics.body);
}

BOOST_AUTO_TEST_CASE(a_thousand_pipelined_requests_in_one_write_are_answered_in_order) {
  ServerProcess server{with_args({"--id", kId})};
  RawClient client{server.host(), server.port()};
  std::string batch;
  for (int i = 0; i < 1000; ++i) {
    batch += get_request("/api/load-test?iterations=" + std::to_string(i + 1));
  }
  BOOST_TEST_REQUIRE(client.send(batch));
  auto answers = client.read_responses(1000, 30000ms);
  BOOST_TEST_REQUIRE(answers.size() == 1000u);
  double previous = -1;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    BOOST_TEST_REQUIRE(answers[i].status == 200, i << ": " << answers[i].describe());
    // iterations = i + 1: the results grow strictly if every answer is its own request's.
    double result = answers[i].json()["result"].asDouble();
    BOOST_TEST_REQUIRE(result > previous, "answer " << i << " out of order");
    previous = result;
  }
}
