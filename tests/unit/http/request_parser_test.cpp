#define BOOST_TEST_MODULE request_parser
#include "http/request_parser.hpp"

#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <utility>
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
  bool pause = false;
  std::size_t limit = SIZE_MAX;
  void on_request_started() override { ++started; }
  std::size_t body_limit(const Request&) override { return limit; }
  void on_expect_continue() override { ++continues; }
  Next on_request(Request&& request) override {
    requests.push_back(std::move(request));
    if (!keep_going) return Next::kStop;
    return pause ? Next::kPause : Next::kContinue;
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
  std::string input =
      "GET /a%20b?iterations=5 HTTP/1.1\r\nHost: a\r\nX-Long-Header-Name: value\r\n\r\n";
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
  parser.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
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
  std::string request = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(300, 'a') + "\r\n\r\n";
  auto error = parser.feed(request);
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 431);
  BOOST_TEST(error->message.find("256") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(many_small_headers_count_toward_the_limit) {
  Sink sink;
  RequestParser parser(limits(512), sink);
  std::string request = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 60; ++i) request += "A: b\r\n";  // 60 x 6 bytes = 360 + framing.
  request += "\r\n";
  BOOST_TEST(!parser.feed(request).has_value());
  Sink sink2;
  RequestParser parser2(limits(), sink2);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 101; ++i) many += "A: b\r\n";
  auto error = parser2.feed(many + "\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 431);
}

BOOST_AUTO_TEST_CASE(long_url_counts_toward_the_limit) {
  Sink sink;
  RequestParser parser(limits(1024), sink);
  auto error = parser.feed("GET /" + std::string(2000, 'x') + " HTTP/1.1\r\nHost: a\r\n\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 431);
}

BOOST_AUTO_TEST_CASE(body_over_the_limit_by_content_length_is_a_413_before_the_body) {
  Sink sink;
  RequestParser parser(limits(8192, 100), sink);
  auto error = parser.feed("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 413);
}

BOOST_AUTO_TEST_CASE(body_over_the_limit_by_chunks_is_a_413) {
  Sink sink;
  RequestParser parser(limits(8192, 100), sink);
  std::string chunk = "40\r\n" + std::string(64, 'x') + "\r\n";
  BOOST_TEST(
      !parser.feed("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
           .has_value());
  auto error = parser.feed(chunk);
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 413);
}

BOOST_AUTO_TEST_CASE(body_at_the_limit_is_accepted) {
  Sink sink;
  RequestParser parser(limits(8192, 100), sink);
  auto error = parser.feed("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" +
                           std::string(100, 'b'));
  BOOST_TEST(!error.has_value());
  BOOST_TEST_REQUIRE(sink.requests.size() == 1u);
  BOOST_TEST(sink.requests[0].body.size() == 100u);
}

BOOST_AUTO_TEST_CASE(http10_and_connection_close_end_the_stream) {
  for (std::string head :
       {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}) {
    Sink sink;
    RequestParser parser(limits(), sink);
    BOOST_TEST(!parser.feed(head + "GET /second HTTP/1.1\r\nHost: a\r\n\r\n").has_value());
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
  BOOST_TEST(!parser.feed("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
                  .has_value());
  BOOST_TEST(sink.requests.size() == 1u);
  BOOST_TEST(parser.stopped());
}

BOOST_AUTO_TEST_CASE(expect_continue_is_reported_and_others_refused) {
  Sink sink;
  RequestParser parser(limits(), sink);
  parser.feed("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  BOOST_TEST(sink.continues == 1);
  BOOST_TEST(!parser.feed("{}").has_value());
  BOOST_TEST(sink.requests.size() == 1u);

  Sink other;
  RequestParser refusing(limits(), other);
  auto error =
      refusing.feed("POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 2\r\n\r\n");
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

namespace {

// Feeds `input` in two pieces cut at `cut`, resuming a paused parser with what it did not take,
// as the connection does with its backlog. Returns the first error.
std::optional<HttpError> feed_resuming(RequestParser& parser, const std::string& input,
                                       std::size_t cut) {
  for (std::string piece : {input.substr(0, cut), input.substr(cut)}) {
    while (true) {
      auto error = parser.feed(piece);
      if (error) return error;
      if (!parser.paused()) break;
      piece.erase(0, parser.consumed());
      parser.resume();
      if (piece.empty()) break;
    }
  }
  return std::nullopt;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_sink_that_pauses_after_each_request_gets_the_same_requests) {
  std::string input = kTwoRequests;
  input.replace(input.find("Content-Length: 13"), 18, "Content-Length: 14");
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    Sink sink;
    sink.pause = true;
    RequestParser parser(limits(), sink);
    BOOST_TEST_REQUIRE(!feed_resuming(parser, input, cut).has_value());
    BOOST_TEST_REQUIRE(sink.requests.size() == 2u);
    BOOST_TEST_REQUIRE(sink.requests[0].body == "{\"clientId\":1}");
    BOOST_TEST_REQUIRE(sink.requests[1].target == "/api/whoami");
    BOOST_TEST_REQUIRE(sink.requests[1].body == "abcde");
  }
}

BOOST_AUTO_TEST_CASE(a_pause_reports_what_was_consumed) {
  Sink sink;
  sink.pause = true;
  RequestParser parser(limits(), sink);
  const std::string first = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  BOOST_TEST(!parser.feed(first + second).has_value());
  BOOST_TEST(parser.paused());
  BOOST_TEST(parser.consumed() == first.size());
  BOOST_TEST(sink.requests.size() == 1u);
  // A paused parser takes nothing until resumed.
  BOOST_TEST(!parser.feed(second).has_value());
  BOOST_TEST(parser.consumed() == 0u);
  parser.resume();
  BOOST_TEST(!parser.feed(second).has_value());
  BOOST_TEST_REQUIRE(sink.requests.size() == 2u);
  BOOST_TEST(sink.requests[1].target == "/2");
}

BOOST_AUTO_TEST_CASE(http_0_9_is_refused_wherever_the_input_is_cut) {
  const std::string input = "GET /api/whoami\r\n\r\n";
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    Sink sink;
    RequestParser parser(limits(), sink);
    auto error = parser.feed(input.substr(0, cut));
    if (!error) error = parser.feed(input.substr(cut));
    BOOST_TEST_REQUIRE(error.has_value(), "cut at " << cut);
    BOOST_TEST(error->status == 400);
    BOOST_TEST(error->message.find("HTTP/0.9") != std::string::npos, error->message);
    BOOST_TEST(sink.requests.empty());
  }
}

BOOST_AUTO_TEST_CASE(absolute_form_becomes_origin_form) {
  for (const auto& [target, expected] : std::vector<std::pair<std::string, std::string>>{
           {"http://example.test/api/whoami?x=1", "/api/whoami?x=1"},
           {"HTTPS://example.test:8443/a", "/a"},
           {"http://example.test", "/"},
           {"http://example.test?x=1", "/?x=1"}}) {
    Sink sink;
    RequestParser parser(limits(), sink);
    BOOST_TEST(!parser.feed("GET " + target + " HTTP/1.1\r\nHost: example.test\r\n\r\n"));
    BOOST_TEST_REQUIRE(sink.requests.size() == 1u);
    BOOST_TEST(sink.requests[0].target == expected);
  }
}

BOOST_AUTO_TEST_CASE(the_sinks_body_limit_applies_to_both_framings) {
  Sink sink;
  sink.limit = 4;
  RequestParser by_length(limits(), sink);
  auto error = by_length.feed("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 413);
  BOOST_TEST(error->message.find("limit of 4 bytes for POST /x") != std::string::npos);
  RequestParser chunked(limits(), sink);
  error = chunked.feed(
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n");
  BOOST_TEST_REQUIRE(error.has_value());
  BOOST_TEST(error->status == 413);
  RequestParser fits(limits(), sink);
  BOOST_TEST(!fits.feed("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd"));
  BOOST_TEST(sink.requests.size() == 1u);
}
