#define BOOST_TEST_MODULE request_parser
#include "request_parser.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using tandem::HttpError;
using tandem::Request;
using tandem::RequestParser;

namespace {

// Collects what the parser delivers.
struct Sink : tandem::RequestSink {
  std::vector<Request> requests;
  int started = 0;
  int continues = 0;
  bool keep_going = true;
  void on_request_started() override { ++started; }
  void on_expect_continue() override { ++continues; }
  bool on_request(Request&& request) override {
    requests.push_back(std::move(request));
    return keep_going;
  }
};

RequestParser::Limits limits(std::size_t header_bytes = 8192, std::size_t body_bytes = 1024) {
  return RequestParser::Limits{header_bytes, body_bytes, 100};
}

const std::string kTwoRequests =
    "POST /api/session?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    "Cookie: tandem_session=abc\r\nContent-Length: 13\r\n\r\n{\"clientId\":1}"
    "GET /api/whoami HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";

}  // namespace

BOOST_AUTO_TEST_CASE(parses_pipelined_requests_fed_at_once) {
  Sink sink;
  RequestParser parser(limits(), sink);
  // The first body is 14 bytes but Content-Length says 13, so its last byte starts the next
  // request line: that must be a 400, not a silently shifted stream.
  std::string good = kTwoRequests;
  good.replace(good.find("Content-Length: 13"), 18, "Content-Length: 14");
  BOOST_TEST(!parser.feed(good).has_value());
  BOOST_TEST_REQUIRE(sink.requests.size() == 2u);
  const Request& first = sink.requests[0];
  BOOST_TEST(first.method == "POST");
  BOOST_TEST(first.target == "/api/session?x=1");
  BOOST_TEST(first.path() == "/api/session");
  BOOST_TEST(first.body == "{\"clientId\":1}");
  BOOST_TEST(*first.header("content-type") == "application/json");
  BOOST_TEST(first.keep_alive);
  BOOST_TEST(sink.requests[1].body == "abcde");  // De-chunked.
  BOOST_TEST(sink.started == 2);
  BOOST_TEST(!parser.in_request());
}

BOOST_AUTO_TEST_CASE(gives_the_same_requests_for_every_split_of_the_input) {
  std::string input = kTwoRequests;
  input.replace(input.find("Content-Length: 13"), 18, "Content-Length: 14");
  for (std::size_t cut1 = 0; cut1 <= input.size(); cut1 += 1) {
    for (std::size_t cut2 = cut1; cut2 <= input.size(); cut2 += 7) {
      Sink sink;
      RequestParser parser(limits(), sink);
      BOOST_TEST_REQUIRE(!parser.feed(input.substr(0, cut1)).has_value());
      BOOST_TEST_REQUIRE(!parser.feed(input.substr(cut1, cut2 - cut1)).has_value());
      BOOST_TEST_REQUIRE(!parser.feed(input.substr(cut2)).has_value());
      BOOST_TEST_REQUIRE(sink.requests.size() == 2u);
      BOOST_TEST_REQUIRE(sink.requests[0].target == "/api/session?x=1");
      BOOST_TEST_REQUIRE(*sink.requests[0].header("cookie") == "tandem_session=abc");
      BOOST_TEST_REQUIRE(sink.requests[0].body == "{\"clientId\":1}");
      BOOST_TEST_REQUIRE(sink.requests[1].body == "abcde");
    }
  }
}

BOOST_AUTO_TEST_CASE(one_byte_at_a_time) {
  std::string input = "GET /a%20b?iterations=5 HTTP/1.1\r\nX-Long-Header-Name: value\r\n\r\n";
  Sink sink;
  RequestParser parser(limits(), sink);
  for (char c : input) BOOST_TEST_REQUIRE(!parser.feed(std::string(1, c)).has_value());
  BOOST_TEST_REQUIRE(sink.requests.size() == 1u);
  BOOST_TEST(*sink.requests[0].header("x-long-header-name") == "value");
  BOOST_TEST(*sink.requests[0].query_param("iterations") == "5");
}

BOOST_AUTO_TEST_CASE(malformed_request_is_a_400) {
  Sink sink;
  RequestParser parser(limits(), sink);
  auto error = parser.feed("GARBAGE\r\n\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 400);
  BOOST_TEST(error->message.find("malformed") != std::string::npos);
  BOOST_TEST(parser.stopped());
  // Once broken, the parser ignores anything else instead of resynchronising on garbage.
  parser.feed("GET / HTTP/1.1\r\n\r\n");
  BOOST_TEST(sink.requests.empty());
}

BOOST_AUTO_TEST_CASE(content_length_mismatch_is_a_400) {
  Sink sink;
  RequestParser parser(limits(), sink);
  auto error = parser.feed(kTwoRequests);  // Content-Length 13 for a 14-byte body.
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 400);
  BOOST_TEST(sink.requests.size() == 1u);
}

BOOST_AUTO_TEST_CASE(header_section_over_the_limit_is_a_431) {
  Sink sink;
  RequestParser parser(limits(256), sink);
  std::string request = "GET / HTTP/1.1\r\nX-Big: " + std::string(300, 'a') + "\r\n\r\n";
  auto error = parser.feed(request);
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 431);
  BOOST_TEST(error->message.find("256") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(many_small_headers_count_toward_the_limit) {
  Sink sink;
  RequestParser parser(limits(512), sink);
  std::string request = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 60; ++i) request += "A: b\r\n";  // 60 x 6 bytes = 360 + framing.
  request += "\r\n";
  BOOST_TEST(!parser.feed(request).has_value());
  Sink sink2;
  RequestParser parser2(limits(), sink2);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "A: b\r\n";
  auto error = parser2.feed(many + "\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 431);
}

BOOST_AUTO_TEST_CASE(long_url_counts_toward_the_limit) {
  Sink sink;
  RequestParser parser(limits(1024), sink);
  auto error = parser.feed("GET /" + std::string(2000, 'x') + " HTTP/1.1\r\n\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 431);
}

BOOST_AUTO_TEST_CASE(body_over_the_limit_by_content_length_is_a_413_before_the_body) {
  Sink sink;
  RequestParser parser(limits(8192, 100), sink);
  auto error = parser.feed("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 413);
}

BOOST_AUTO_TEST_CASE(body_over_the_limit_by_chunks_is_a_413) {
  Sink sink;
  RequestParser parser(limits(8192, 100), sink);
  std::string chunk = "40\r\n" + std::string(64, 'x') + "\r\n";
  BOOST_TEST(
      !parser.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk).has_value());
  auto error = parser.feed(chunk);
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 413);
}

BOOST_AUTO_TEST_CASE(body_at_the_limit_is_accepted) {
  Sink sink;
  RequestParser parser(limits(8192, 100), sink);
  auto error =
      parser.feed("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'));
  BOOST_TEST(!error.has_value());
  BOOST_TEST_REQUIRE(sink.requests.size() == 1u);
  BOOST_TEST(sink.requests[0].body.size() == 100u);
}

BOOST_AUTO_TEST_CASE(http10_and_connection_close_end_the_stream) {
  for (std::string head :
       {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"}) {
    Sink sink;
    RequestParser parser(limits(), sink);
    BOOST_TEST(!parser.feed(head + "GET /second HTTP/1.1\r\n\r\n").has_value());
    BOOST_TEST(sink.requests.size() == 1u);
    BOOST_TEST(!sink.requests[0].keep_alive);
    BOOST_TEST(parser.stopped());
  }
  Sink sink;
  RequestParser parser(limits(), sink);
  parser.feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  BOOST_TEST_REQUIRE(sink.requests.size() == 1u);
  BOOST_TEST(sink.requests[0].keep_alive);
  BOOST_TEST(sink.requests[0].http_minor == 0);
}

BOOST_AUTO_TEST_CASE(sink_can_stop_the_parser) {
  Sink sink;
  sink.keep_going = false;
  RequestParser parser(limits(), sink);
  BOOST_TEST(!parser.feed("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n").has_value());
  BOOST_TEST(sink.requests.size() == 1u);
  BOOST_TEST(parser.stopped());
}

BOOST_AUTO_TEST_CASE(expect_continue_is_reported_and_others_refused) {
  Sink sink;
  RequestParser parser(limits(), sink);
  parser.feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  BOOST_TEST(sink.continues == 1);
  BOOST_TEST(!parser.feed("{}").has_value());
  BOOST_TEST(sink.requests.size() == 1u);

  Sink other;
  RequestParser refusing(limits(), other);
  auto error = refusing.feed("POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 2\r\n\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 417);
}

BOOST_AUTO_TEST_CASE(eof_in_the_middle_of_a_request_is_reported) {
  Sink sink;
  RequestParser parser(limits(), sink);
  parser.feed("GET / HTTP/1.1\r\nHost:");
  BOOST_TEST(parser.in_request());
  BOOST_TEST(parser.finish().has_value());
  Sink idle_sink;
  RequestParser idle(limits(), idle_sink);
  BOOST_TEST(!idle.finish().has_value());
}

BOOST_AUTO_TEST_CASE(whitespace_before_a_header_colon_is_a_400) {
  for (std::string head :
       {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"}) {
    Sink sink;
    RequestParser parser(limits(), sink);
    auto error = parser.feed(head);
    BOOST_TEST_REQUIRE(error.has_value());
    BOOST_TEST(error->status == 400);
    BOOST_TEST(sink.requests.empty());
  }
}
