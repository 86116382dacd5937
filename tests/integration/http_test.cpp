// HTTP/1.1 connection handling over real sockets: pipelining, long keep-alive runs, HTTP/1.0,
// Connection: close, chunked request bodies and requests split across many writes.
#define BOOST_TEST_MODULE http
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "raw_client.hpp"
#include "server_process.hpp"

using namespace tandem::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kId = "http-it";

struct ServerFixture {
  // Room on the worker for a request of each of the hundred interleaved connections at once.
  ServerProcess server{with_args({"--id", kId, "--worker-queue", "128"})};

  std::unique_ptr<RawClient> connect() {
    return std::make_unique<RawClient>(server.host(), server.port());
  }
};

std::string get_request(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

std::string session_request(const std::string& body, const std::string& extra = "") {
  return "POST /api/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http, ServerFixture)

BOOST_AUTO_TEST_CASE(ten_pipelined_requests_are_answered_in_order) {
  // Ten different requests in one write. Each answer is recognisable by its status and shape,
  // and the load-test answers grow with their iteration count, so any reordering shows.
  struct Expected {
    std::string request;
    long status;
    std::string key;  // A member only this route's answer has.
  };
  const std::vector<Expected> expected = {
      {get_request("/health"), 200, "uptime"},
      {get_request("/api/whoami"), 200, "pid"},
      {get_request("/api/load-test?iterations=10"), 200, "result"},
      {get_request("/no/such/path"), 404, "error"},
      {session_request(R"({"clientId":"pipe","requestNum":1})"), 200, "sessionId"},
      {get_request("/api/load-test?iterations=2000"), 200, "result"},
      {"DELETE /api/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, "error"},
      {get_request("/api/load-test?iterations=300000"), 200, "result"},
      {get_request("/api/metrics"), 200, ""},
      {get_request("/health"), 200, "status"},
  };
  std::string batch;
  for (const auto& e : expected) batch += e.request;

  auto client = connect();
  BOOST_TEST_REQUIRE(client->send(batch));
  auto responses = client->read_responses(expected.size(), 10000ms);
  BOOST_TEST_REQUIRE(responses.size() == expected.size(),
                     "got " << responses.size()
                            << " answers; last read: " << static_cast<int>(client->last_status())
                            << "; buffered: " << client->buffered());
  std::vector<double> results;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    BOOST_TEST_CONTEXT("answer " << i << " to " << expected[i].request.substr(0, 40)) {
      const HttpResponse& response = responses[i];
      BOOST_TEST(response.status == expected[i].status, response.describe());
      CHECK_CONTRACT(response, kId);
      if (!expected[i].key.empty() && response.json_ok()) {
        BOOST_TEST(response.json().isMember(expected[i].key), response.body);
      }
      if (expected[i].key == "result" && response.json_ok()) {
        results.push_back(response.json()["result"].asDouble());
      }
    }
  }
  BOOST_TEST_REQUIRE(results.size() == 3u);
  BOOST_TEST(results[0] < results[1]);
  BOOST_TEST(results[1] < results[2]);
  // The connection is still usable afterwards.
  BOOST_TEST_REQUIRE(client->send(get_request("/health")));
  auto after = client->read_response(5000ms);
  BOOST_TEST_REQUIRE(after.has_value());
  BOOST_TEST(after->status == 200);
}

BOOST_AUTO_TEST_CASE(thousand_keep_alive_requests_share_one_connection) {
  HttpClient client;
  constexpr int kRequests = 1000;
  int failures = 0;
  std::string first_failure;
  for (int i = 0; i < kRequests; ++i) {
    HttpResponse response = client.get(server.url(i % 2 == 0 ? "/health" : "/api/whoami"));
    if (!response.ok || response.status != 200) {
      if (failures++ == 0)
        first_failure = "request " + std::to_string(i) + ": " + response.describe();
    }
  }
  BOOST_TEST(failures == 0, first_failure);
  BOOST_TEST(client.total_connects() == 1, "libcurl opened " << client.total_connects()
                                                             << " connections for " << kRequests
                                                             << " keep-alive requests");
}

BOOST_AUTO_TEST_CASE(keep_alive_survives_404_and_405) {
  auto client = connect();
  for (const std::string& request :
       {get_request("/nope"), std::string{"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n"},
        get_request("/health")}) {
    BOOST_TEST_REQUIRE(client->send(request), "connection closed before " << request);
    auto response = client->read_response(5000ms);
    BOOST_TEST_REQUIRE(response.has_value(),
                       "no answer on the kept-alive connection to " << request);
    BOOST_TEST(!response->headers.has_token("Connection", "close"), response->describe());
  }
}

BOOST_AUTO_TEST_CASE(http_1_0_without_keep_alive_gets_an_answer_then_close) {
  auto client = connect();
  BOOST_TEST_REQUIRE(client->send("GET /health HTTP/1.0\r\n\r\n"));
  auto response = client->read_response(5000ms);
  BOOST_TEST_REQUIRE(response.has_value(), "no answer; buffered: " << client->buffered());
  BOOST_TEST(response->status == 200, response->describe());
  CHECK_CONTRACT(*response, kId);
  BOOST_TEST(!response->headers.has_token("Connection", "keep-alive"), response->describe());
  BOOST_TEST(client->wait_closed(5000ms), "HTTP/1.0 connection left open");
  BOOST_TEST(client->buffered().empty(), "bytes after the answer: " << client->buffered());
}

BOOST_AUTO_TEST_CASE(connection_close_is_honoured) {
  auto client = connect();
  // A second request in the same write must not be answered: the first said close.
  BOOST_TEST_REQUIRE(
      client->send(get_request("/api/whoami", "Connection: close\r\n") + get_request("/health")));
  auto response = client->read_response(5000ms);
  BOOST_TEST_REQUIRE(response.has_value(), "no answer; buffered: " << client->buffered());
  BOOST_TEST(response->status == 200, response->describe());
  CHECK_CONTRACT(*response, kId);
  BOOST_TEST(response->headers.has_token("Connection", "close"), response->describe());
  BOOST_TEST(client->wait_closed(5000ms), "connection left open after Connection: close");
  BOOST_TEST(client->buffered().empty(), "answered past Connection: close: " << client->buffered());
}

BOOST_AUTO_TEST_CASE(chunked_request_body_is_accepted) {
  auto client = connect();
  const std::string head =
      "POST /api/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  // The JSON split over chunks, one with an extension, sent in separate writes.
  auto chunk = [](const std::string& data, const std::string& extension = "") {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", data.size());
    return std::string{size} + extension + "\r\n" + data + "\r\n";
  };
  const std::vector<std::string> pieces = {head, chunk(R"({"clientId")"),
                                           chunk(R"(:"chunky")", ";ext=1"),
                                           chunk(R"(,"requestNum":7})"), "0\r\n\r\n"};
  for (const auto& piece : pieces) BOOST_TEST_REQUIRE(client->send(piece));
  auto response = client->read_response(5000ms);
  BOOST_TEST_REQUIRE(response.has_value(), "no answer; buffered: " << client->buffered());
  BOOST_TEST(response->status == 200, response->describe());
  CHECK_CONTRACT(*response, kId);
  if (response->json_ok()) {
    BOOST_TEST(response->json()["requestCount"].asInt64() == 1, response->body);
    BOOST_TEST(response->json()["sessionId"].asString().size() == 32u, response->body);
  }
  // Keep-alive continues after a chunked body.
  BOOST_TEST_REQUIRE(client->send(get_request("/health")));
  auto next = client->read_response(5000ms);
  BOOST_TEST_REQUIRE(next.has_value());
  BOOST_TEST(next->status == 200);
}

BOOST_AUTO_TEST_CASE(request_written_one_byte_at_a_time_is_parsed) {
  // Every token (method, path, header names and values, body) is split across reads.
  const std::string body = R"({"clientId":"bytes","requestNum":3})";
  const std::string request = session_request(body, "X-Some-Long-Header-Name: some value\r\n");
  auto client = connect();
  for (char byte : request) {
    BOOST_TEST_REQUIRE(client->send(std::string_view{&byte, 1}));
    // Pace the writes so that they reach the server as separate segments.
    std::this_thread::sleep_for(1ms);
  }
  auto response = client->read_response(5000ms);
  BOOST_TEST_REQUIRE(response.has_value(), "no answer; buffered: " << client->buffered());
  BOOST_TEST(response->status == 200, response->describe());
  CHECK_CONTRACT(*response, kId);
}

BOOST_AUTO_TEST_CASE(hundred_interleaved_connections_are_each_answered_their_own_request) {
  // Each connection first sends half its request, then all send the rest: every connection's
  // parser state is its own, and each gets the answer to its own request.
  constexpr int kConnections = 100;
  std::vector<std::unique_ptr<RawClient>> clients;
  std::vector<std::string> requests;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(connect());
    requests.push_back(get_request("/api/load-test?iterations=" + std::to_string(i + 1)));
    BOOST_TEST_REQUIRE(clients[i]->send(std::string_view{requests[i]}.substr(0, 20)));
  }
  for (int i = 0; i < kConnections; ++i) {
    BOOST_TEST_REQUIRE(clients[i]->send(std::string_view{requests[i]}.substr(20)));
  }
  double previous = -1;
  for (int i = 0; i < kConnections; ++i) {
    auto response = clients[i]->read_response(10000ms);
    BOOST_TEST_REQUIRE(response.has_value(), "connection " << i << " got no answer");
    BOOST_TEST_REQUIRE(response->status == 200, response->describe());
    double result = response->json()["result"].asDouble();
    // iterations = i + 1, so the results grow strictly with i if each got its own answer.
    BOOST_TEST(result > previous, "connection " << i << ": " << response->body);
    previous = result;
  }
}

BOOST_AUTO_TEST_SUITE_END()
