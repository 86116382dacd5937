#define BOOST_TEST_MODULE response
#include "tandem/response.hpp"

#include <boost/test/unit_test.hpp>

using tandem::Response;
using tandem::ResponseFrame;

BOOST_AUTO_TEST_CASE(serialises_status_headers_and_body) {
  Response response = Response::error(404, "no route for /x");
  response.headers.emplace_back("Allow", "GET");
  std::string out;
  tandem::append_response(out, response, ResponseFrame{"app-1", "DATE", true, false, false});
  BOOST_TEST(out ==
             "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
             "Date: DATE\r\nX-Container-Id: app-1\r\nAllow: GET\r\n\r\n"
             "{\"error\":\"no route for /x\"}");
}

BOOST_AUTO_TEST_CASE(connection_header_follows_the_frame) {
  Response response = Response::json(200, Json::Value(Json::objectValue));
  std::string closing;
  tandem::append_response(closing, response, ResponseFrame{"a", "d", false, false, false});
  BOOST_TEST(closing.find("Connection: close\r\n") != std::string::npos);
  std::string http10;
  tandem::append_response(http10, response, ResponseFrame{"a", "d", true, false, true});
  BOOST_TEST(http10.find("Connection: keep-alive\r\n") != std::string::npos);
  response.close = true;
  std::string forced;
  tandem::append_response(forced, response, ResponseFrame{"a", "d", true, false, false});
  BOOST_TEST(forced.find("Connection: close\r\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(head_answers_carry_the_length_but_no_body) {
  Response response = Response::error(200, "x");
  std::string out;
  tandem::append_response(out, response, ResponseFrame{"a", "d", true, true, false});
  BOOST_TEST(out.find("Content-Length: 13\r\n") != std::string::npos);
  BOOST_TEST(out.substr(out.size() - 4) == "\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(json_is_compact_and_escaped) {
  Json::Value value(Json::objectValue);
  value["text"] = "quote \" and newline \n";
  value["ratio"] = 0.5;
  std::string json = tandem::to_json(value);
  BOOST_TEST(json == "{\"ratio\":0.5,\"text\":\"quote \\\" and newline \\n\"}");
}
