// What RFC 9112 asks of an HTTP/1.1 server, over raw sockets: absolute-form targets accepted,
// Host required once, versions other than 1.0 and 1.1 refused with 505, HTTP/0.9 refused at once,
// CRLF required after chunk data (else a request can be smuggled past a proxy), and bodies on
// routes that take none refused before they are read.
#define BOOST_TEST_MODULE strict_http
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "http_client.hpp"
#include "raw_client.hpp"
#include "server_process.hpp"

using namespace tandem::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kId = "strict-it";

// A header timeout far above every wait below: an answer that comes is not the timeout's 408.
ServerProcess start() { return ServerProcess{with_args({"--id", kId, "--header-timeout", "60s"})}; }

// Sends `request` on a new connection and returns the one answer, which must be followed by the
// server's close.
HttpResponse answer_then_close(const ServerProcess& server, const std::string& request) {
  RawClient client{server.host(), server.port()};
  client.send(request);
  auto response = client.read_response(5000ms);
  BOOST_TEST_REQUIRE(response.has_value(),
                     "no answer within 5 s (header timeout 60 s); buffered: " << client.buffered());
  BOOST_TEST(client.wait_closed(5000ms), "left open after " << response->describe());
  return *response;
}

void check_error(const HttpResponse& response, long status, const std::string& words) {
  BOOST_TEST(response.status == status, response.describe());
  CHECK_CONTRACT(response, kId);
  BOOST_TEST_REQUIRE(response.json_ok(), response.body);
  BOOST_TEST(response.json()["error"].asString().find(words) != std::string::npos, response.body);
}

}  // namespace

BOOST_AUTO_TEST_CASE(absolute_form_targets_are_served_as_their_path) {
  ServerProcess server = start();
  for (const std::string& target : {std::string("http://example.test/api/whoami"),
                                    std::string("HTTP://example.test:80/api/whoami"),
                                    std::string("https://example.test/api/whoami?x=1")}) {
    HttpResponse response = raw_exchange(
        server.host(), server.port(),
        "GET " + target + " HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n");
    BOOST_TEST(response.status == 200, target << ": " << response.describe());
    BOOST_TEST(response.json()["container"].asString() == kId, response.body);
  }
  HttpResponse no_path = raw_exchange(server.host(), server.port(),
                                      "GET http://example.test HTTP/1.1\r\nHost: example.test\r\n"
                                      "Connection: close\r\n\r\n");
  check_error(no_path, 404, "no route for /");
}

BOOST_AUTO_TEST_CASE(targets_that_are_not_paths_get_400) {
  ServerProcess server = start();
  for (const std::string& line :
       {std::string("CONNECT example.test:443 HTTP/1.1"),
        std::string("GET ftp://example.test/api/whoami HTTP/1.1"), std::string("GET * HTTP/1.1")}) {
    check_error(answer_then_close(server, line + "\r\nHost: example.test\r\n\r\n"), 400,
                "must be a path");
  }
  // llhttp itself refuses a target that is neither a path nor a URI.
  check_error(answer_then_close(
                  server, "GET example.test/api/whoami HTTP/1.1\r\nHost: example.test\r\n\r\n"),
              400, "malformed");
}

BOOST_AUTO_TEST_CASE(host_is_required_once_on_http_1_1) {
  ServerProcess server = start();
  check_error(answer_then_close(server, "GET /api/whoami HTTP/1.1\r\n\r\n"), 400,
              "needs a Host header");
  check_error(answer_then_close(server, "GET /api/whoami HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
              400, "2 Host headers");
  check_error(answer_then_close(server, "GET /api/whoami HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n"),
              400, "2 Host headers");
  // HTTP/1.0 predates Host: it may leave it out.
  HttpResponse old = raw_exchange(server.host(), server.port(), "GET /api/whoami HTTP/1.0\r\n\r\n");
  BOOST_TEST(old.status == 200, old.describe());
}

BOOST_AUTO_TEST_CASE(versions_other_than_1_0_and_1_1_get_505) {
  ServerProcess server = start();
  for (const char* version : {"HTTP/2.0", "HTTP/3.5", "HTTP/1.2", "HTTP/0.9"}) {
    BOOST_TEST_CONTEXT(version) {
      check_error(answer_then_close(
                      server, std::string("GET /api/whoami ") + version + "\r\nHost: a\r\n\r\n"),
                  505, "only HTTP/1.0 and HTTP/1.1");
    }
  }
  // The HTTP/2 connection preface (prior knowledge) on this HTTP/1 port.
  check_error(answer_then_close(server, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505, "HTTP/2");
  // A malformed version is malformed, not unsupported.
  check_error(answer_then_close(server, "GET /api/whoami HTTP/1.x\r\nHost: a\r\n\r\n"), 400,
              "malformed");
}

BOOST_AUTO_TEST_CASE(http_0_9_is_refused_at_once) {
  ServerProcess server = start();
  // Whole, or with the line end arriving in a read of its own: either way the answer comes now,
  // not after the header timeout (60 s here).
  check_error(answer_then_close(server, "GET /api/whoami\r\n"), 400, "HTTP/0.9");
  RawClient split{server.host(), server.port()};
  split.send("GET /api/whoami");
  BOOST_TEST(!split.wait_closed(300ms));
  split.send("\r\n");
  auto response = split.read_response(5000ms);
  BOOST_TEST_REQUIRE(response.has_value(), "no answer; buffered: " << split.buffered());
  check_error(*response, 400, "HTTP/0.9");
  BOOST_TEST(split.wait_closed(5000ms));
}

BOOST_AUTO_TEST_CASE(chunk_data_must_end_with_crlf_so_nothing_is_smuggled) {
  ServerProcess server = start();
  // "abc" then "XX" where CRLF belongs: a lenient parser skips the two bytes, and the "0\r\n\r\n"
  // that follows, read by a proxy as the end of the body, would end it here too, while the
  // request the attacker placed after it would be taken as a second one.
  const std::string smuggled = "GET /api/whoami HTTP/1.1\r\nHost: a\r\nX-Smuggled: yes\r\n\r\n";
  RawClient client{server.host(), server.port()};
  client.send(
      "POST /api/session HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n" +
      smuggled);
  auto responses = client.read_responses(2, 3000ms);
  BOOST_TEST_REQUIRE(responses.size() == 1u, "answers: " << responses.size());
  check_error(responses[0], 400, "malformed");
  BOOST_TEST(client.wait_closed(5000ms));
  // The same body with CRLF is fine.
  HttpResponse good = raw_exchange(server.host(), server.port(),
                                   "POST /api/session HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
  BOOST_TEST(good.status == 200, good.describe());
}

BOOST_AUTO_TEST_CASE(bare_lf_line_ends_are_refused) {
  ServerProcess server = start();
  check_error(answer_then_close(server, "GET /api/whoami HTTP/1.1\nHost: a\n\n"), 400, "malformed");
}

BOOST_AUTO_TEST_CASE(a_body_on_a_route_that_takes_none_is_refused_unread) {
  ServerProcess server = start();
  // The body is announced, not sent: the 413 comes from the headers alone.
  check_error(
      answer_then_close(server, "GET /api/whoami HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
      413, "limit of 0 bytes for GET /api/whoami");
  HttpResponse empty = raw_exchange(
      server.host(), server.port(),
      "GET /api/whoami HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  BOOST_TEST(empty.status == 200, empty.describe());
  // The session route takes 4 KiB.
  check_error(answer_then_close(server,
                                "POST /api/session HTTP/1.1\r\nHost: a\r\n"
                                "Content-Length: 1000000\r\n\r\n"),
              413, "limit of 4096 bytes for POST /api/session");
}
