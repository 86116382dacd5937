// What the server does with clients that misbehave, over raw sockets: malformed requests, header
// sections and bodies over the limits, slow and idle clients, too many connections. After each,
// the server must go on serving everyone else.
#define BOOST_TEST_MODULE errors
#include <boost/test/unit_test.hpp>

#include <chrono>
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

constexpr const char* kId = "errors-it";

ServerOptions options(std::vector<std::string> extra = {}) {
  ServerOptions result;
  result.args = {"--id", kId};
  result.args.insert(result.args.end(), extra.begin(), extra.end());
  return result;
}

std::string get_request(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

// A well-formed JSON session body of exactly `size` bytes (padded with spaces).
std::string session_body_of_size(std::size_t size) {
  std::string body = R"({"clientId":"big","requestNum":1})";
  BOOST_REQUIRE(size >= body.size());
  body.append(size - body.size(), ' ');
  return body;
}

// Checks a JSON error answer with `status` and the contract headers.
void check_error(const HttpResponse& response, long status) {
  BOOST_TEST(response.status == status, response.describe());
  CHECK_CONTRACT(response, kId);
  if (response.json_ok()) {
    Json::Value body = response.json();
    BOOST_TEST((body.isObject() && body["error"].isString() && !body["error"].asString().empty()),
               response.body);
  }
}

// A fresh client gets a normal answer: the server survived whatever came before.
void check_still_serving(const ServerProcess& server) {
  HttpClient client;
  HttpResponse response = client.get(server.url("/health"));
  BOOST_TEST(response.ok, response.error);
  BOOST_TEST(response.status == 200, response.describe());
}

// Sends `request` on a new connection; expects `status` as a JSON error, and then (when
// `then_close`) the server's close.
void expect_rejected(const ServerProcess& server, const std::string& request, long status,
                     bool then_close) {
  RawClient client{server.host(), server.port()};
  // The server may answer and close before reading everything; a failed write is fine then.
  client.send(request);
  auto response = client.read_response(5000ms);
  BOOST_TEST_REQUIRE(response.has_value(), "no answer (status "
                                               << static_cast<int>(client.last_status())
                                               << "); buffered: " << client.buffered());
  check_error(*response, status);
  if (then_close) {
    BOOST_TEST(client.wait_closed(5000ms),
               "connection left open after a " << response->status << " answer");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(malformed_requests_get_400_json_then_close) {
  ServerProcess server{options()};
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not a request line", "this is not http\r\n\r\n"},
      {"unknown protocol", "GET /health HTTX/1.1\r\nHost: x\r\n\r\n"},
      {"bad version", "GET /health HTTP/1.x\r\nHost: x\r\n\r\n"},
      {"extra token in request line", "GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n"},
      {"space in method", "G T /health HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"header without colon", "GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"},
      {"bad Content-Length",
       "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"},
      {"bad chunk size",
       "POST /api/session HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
      {"control bytes", std::string{"GET /\x01\x02 HTTP/1.1\r\n\r\n", 20}},
  };
  for (const auto& [what, request] : cases) {
    BOOST_TEST_CONTEXT(what) {
      expect_rejected(server, request, 400, true);
      check_still_serving(server);
    }
  }
}

BOOST_AUTO_TEST_CASE(whitespace_between_header_name_and_colon_gets_400) {
  // RFC 9112 section 5.1: a server MUST reject such a request with 400 (a smuggling vector when a
  // proxy in front reads the field differently).
  ServerProcess server{options()};
  expect_rejected(server, "GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400, true);
  expect_rejected(server, "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}",
                  400, true);
  check_still_serving(server);
}

BOOST_AUTO_TEST_CASE(malformed_request_after_a_good_one_on_the_same_connection) {
  ServerProcess server{options()};
  RawClient client{server.host(), server.port()};
  BOOST_TEST_REQUIRE(client.send(get_request("/health") + "BROKEN\r\n\r\n"));
  auto first = client.read_response(5000ms);
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST(first->status == 200, first->describe());
  auto second = client.read_response(5000ms);
  BOOST_TEST_REQUIRE(second.has_value(),
                     "no 400 for the broken second request; buffered: " << client.buffered());
  check_error(*second, 400);
  BOOST_TEST(client.wait_closed(5000ms));
  check_still_serving(server);
}

BOOST_AUTO_TEST_CASE(header_section_over_max_header_bytes_gets_431) {
  ServerProcess server{options({"--max-header-bytes", "1024"})};
  // Well under the limit: served.
  {
    HttpResponse response =
        raw_exchange(server.host(), server.port(),
                     get_request("/health", "X-Pad: " + std::string(600, 'a') + "\r\n"));
    BOOST_TEST(response.status == 200, response.describe());
  }
  // One big header.
  expect_rejected(server, get_request("/health", "X-Big: " + std::string(2000, 'a') + "\r\n"), 431,
                  false);
  check_still_serving(server);
  // Many small headers.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "X-H" + std::to_string(i) + ": 0123456789\r\n";
  expect_rejected(server, get_request("/health", many), 431, false);
  check_still_serving(server);
  // A huge header trickled in pieces is caught too, without waiting for its end.
  {
    RawClient client{server.host(), server.port()};
    client.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ");
    for (int i = 0; i < 8 && !client.peer_closed(); ++i) {
      client.send(std::string(512, 'b'));
      std::this_thread::sleep_for(5ms);
    }
    auto response = client.read_response(5000ms);
    BOOST_TEST_REQUIRE(response.has_value(), "no answer to an unterminated 4 KiB header");
    check_error(*response, 431);
  }
  check_still_serving(server);
}

BOOST_AUTO_TEST_CASE(default_max_header_bytes_is_8k) {
  ServerProcess server{options()};
  HttpResponse fits =
      raw_exchange(server.host(), server.port(),
                   get_request("/health", "X-Pad: " + std::string(6000, 'a') + "\r\n"));
  BOOST_TEST(fits.status == 200, fits.describe());
  expect_rejected(server, get_request("/health", "X-Pad: " + std::string(10000, 'a') + "\r\n"), 431,
                  false);
  check_still_serving(server);
}

BOOST_AUTO_TEST_CASE(body_over_max_body_bytes_gets_413) {
  ServerProcess server{options({"--max-body-bytes", "1024"})};
  auto post = [](const std::string& body) {
    return "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  // Just under the limit: served.
  HttpResponse fits = raw_exchange(server.host(), server.port(), post(session_body_of_size(1000)));
  BOOST_TEST(fits.status == 200, fits.describe());

  BOOST_TEST_CONTEXT("by Content-Length") {
    expect_rejected(server, post(session_body_of_size(2048)), 413, false);
    check_still_serving(server);
  }
  BOOST_TEST_CONTEXT("by Content-Length alone, body not sent") {
    expect_rejected(server,
                    "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100000000\r\n\r\n",
                    413, false);
    check_still_serving(server);
  }
  BOOST_TEST_CONTEXT("by chunked encoding") {
    const std::string body = session_body_of_size(2048);
    std::string request =
        "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    for (std::size_t at = 0; at < body.size(); at += 256) {
      std::string chunk = body.substr(at, 256);
      char size[16];
      std::snprintf(size, sizeof size, "%zx", chunk.size());
      request += std::string{size} + "\r\n" + chunk + "\r\n";
    }
    request += "0\r\n\r\n";
    expect_rejected(server, request, 413, false);
    check_still_serving(server);
  }
}

BOOST_AUTO_TEST_CASE(trickled_headers_are_cut_off_after_header_timeout) {
  ServerProcess server{options({"--header-timeout", "1s"})};
  RawClient client{server.host(), server.port()};
  auto start = Clock::now();
  client.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  // One byte every 200 ms: each byte is progress, but the request never completes.
  double closed_after = -1;
  while (elapsed_ms(start) < 6000) {
    if (client.wait_closed(200ms)) {
      closed_after = elapsed_ms(start);
      break;
    }
    if (!client.send("a")) {
      client.wait_closed(1000ms);
      closed_after = elapsed_ms(start);
      break;
    }
  }
  BOOST_TEST_REQUIRE(closed_after >= 0, "a client trickling its headers was not cut off in 6 s");
  BOOST_TEST_MESSAGE("trickling client cut off after " << closed_after << " ms");
  BOOST_TEST(closed_after >= 800, "closed after " << closed_after << " ms, before the 1 s timeout");
  BOOST_TEST(closed_after <= 3000, "closed after " << closed_after << " ms for a 1 s timeout");
  // Whatever came before the close (a 408, say) is a JSON answer with the usual headers.
  if (!client.buffered().empty()) {
    auto response = client.read_response(0ms);
    BOOST_TEST_REQUIRE(response.has_value(), "garbage before the close: " << client.buffered());
    CHECK_CONTRACT(*response, kId);
  }
  check_still_serving(server);
}

BOOST_AUTO_TEST_CASE(idle_keep_alive_connection_is_closed_after_keepalive_timeout) {
  ServerProcess server{options({"--keepalive-timeout", "1s", "--header-timeout", "10s"})};
  RawClient client{server.host(), server.port()};
  // Requests 500 ms apart keep it alive for longer than the timeout: the timer counts idleness.
  for (int i = 0; i < 3; ++i) {
    if (i > 0) BOOST_TEST_REQUIRE(!client.wait_closed(500ms), "closed while in use, round " << i);
    BOOST_TEST_REQUIRE(client.send(get_request("/health")));
    auto response = client.read_response(5000ms);
    BOOST_TEST_REQUIRE(response.has_value(), "no answer in round " << i);
    BOOST_TEST(response->status == 200);
  }
  auto idle_since = Clock::now();
  BOOST_TEST_REQUIRE(client.wait_closed(6000ms), "idle keep-alive connection still open after 6 s");
  double closed_after = elapsed_ms(idle_since);
  BOOST_TEST_MESSAGE("idle keep-alive connection closed after " << closed_after << " ms");
  BOOST_TEST(closed_after >= 800, "closed after " << closed_after << " ms idle, timeout is 1 s");
  BOOST_TEST(closed_after <= 3000, "closed after " << closed_after << " ms idle, timeout is 1 s");
  check_still_serving(server);
}

BOOST_AUTO_TEST_CASE(max_connections_refuses_the_one_too_many) {
  constexpr int kMax = 3;
  ServerProcess server{options({"--max-connections", std::to_string(kMax)})};
  // Open kMax connections and prove each is being served. The readiness probe's connection may
  // take a moment to be counted as gone, hence the retries.
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < kMax; ++i) {
    bool served = poll_until(
        [&] {
          auto client = RawClient::try_connect(server.host(), server.port());
          if (!client || !client->send(get_request("/health"))) return false;
          auto response = client->read_response(2000ms);
          if (!response || response->status != 200) return false;
          held.push_back(std::move(client));
          return true;
        },
        3000ms, 20ms);
    BOOST_TEST_REQUIRE(served, "connection " << i + 1 << " of " << kMax << " not served");
  }

  // The next one is turned away: refused, or accepted and closed (a 503 first is allowed),
  // never served.
  {
    std::string error;
    auto extra = RawClient::try_connect(server.host(), server.port(), 2000ms, &error);
    if (extra) {
      extra->send(get_request("/health"));
      auto response = extra->read_response(5000ms);
      if (response) {
        BOOST_TEST(response->status == 503,
                   "connection " << kMax + 1 << " was answered: " << response->describe());
        CHECK_CONTRACT(*response, kId);
      }
      BOOST_TEST(extra->wait_closed(5000ms),
                 "connection " << kMax + 1 << " neither refused nor closed");
    }
  }

  // The held connections still work.
  for (int i = 0; i < kMax; ++i) {
    BOOST_TEST_REQUIRE(held[i]->send(get_request("/api/whoami")), "held connection " << i);
    auto response = held[i]->read_response(5000ms);
    BOOST_TEST_REQUIRE(response.has_value(), "held connection " << i << " no longer served");
    BOOST_TEST(response->status == 200, response->describe());
  }

  // With one of them gone, a new client gets in again.
  held.pop_back();
  bool admitted = poll_until(
      [&] {
        HttpResponse response = raw_exchange(
            server.host(), server.port(), get_request("/health", "Connection: close\r\n"), 1000ms);
        return response.ok && response.status == 200;
      },
      5000ms, 20ms);
  BOOST_TEST(admitted, "no new connection served after one of the " << kMax << " closed");
}

BOOST_AUTO_TEST_CASE(half_request_then_close_does_not_disturb_the_server) {
  ServerProcess server{options()};
  {
    RawClient client{server.host(), server.port()};
    client.send("POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"cli");
    client.shutdown_write();
    // The server may answer 400 or just close; it must not hang on to the connection forever.
    BOOST_TEST(client.wait_closed(5000ms), "half request after shutdown(SHUT_WR) kept open");
  }
  {
    RawClient client{server.host(), server.port()};
    client.send("GET /heal");
  }  // Closed mid-request-line.
  check_still_serving(server);
}
