#define BOOST_TEST_MODULE request
#include "tandem/request.hpp"

#include <boost/test/unit_test.hpp>

using tandem::Request;

namespace {

Request with_target(std::string target) {
  Request request;
  request.target = std::move(target);
  return request;
}

}  // namespace

BOOST_AUTO_TEST_CASE(path_stops_at_the_query) {
  BOOST_TEST(with_target("/api/load-test?iterations=5").path() == "/api/load-test");
  BOOST_TEST(with_target("/plain").path() == "/plain");
}

BOOST_AUTO_TEST_CASE(query_params_are_found_and_decoded) {
  Request request = with_target("/x?a=1&iterations=1%30&b=&flag&sp=a+b");
  BOOST_TEST(*request.query_param("iterations") == "10");
  BOOST_TEST(*request.query_param("a") == "1");
  BOOST_TEST(*request.query_param("b") == "");
  BOOST_TEST(*request.query_param("flag") == "");
  BOOST_TEST(*request.query_param("sp") == "a b");
  BOOST_TEST(!request.query_param("missing").has_value());
  BOOST_TEST(!with_target("/x").query_param("a").has_value());
  // A broken escape is handed on as sent, so the handler can quote it back.
  BOOST_TEST(*with_target("/x?n=5%G").query_param("n") == "5%G");
}

BOOST_AUTO_TEST_CASE(percent_decode_rejects_truncated_escapes) {
  BOOST_TEST(!tandem::percent_decode("%").has_value());
  BOOST_TEST(!tandem::percent_decode("%4").has_value());
  BOOST_TEST(*tandem::percent_decode("%41") == "A");
}

BOOST_AUTO_TEST_CASE(cookies_are_found_among_several) {
  Request request;
  request.headers = {{"cookie", "a=1; tandem_session=abc ; b=2"}, {"cookie", "c=\"quoted\""}};
  BOOST_TEST(*request.cookie("tandem_session") == "abc");
  BOOST_TEST(*request.cookie("b") == "2");
  BOOST_TEST(*request.cookie("c") == "quoted");
  BOOST_TEST(!request.cookie("tandem").has_value());
}

BOOST_AUTO_TEST_CASE(header_lookup_uses_lowercase_names) {
  Request request;
  request.headers = {{"x-session-id", "s1"}, {"x-session-id", "s2"}};
  BOOST_TEST(*request.header("x-session-id") == "s1");
  BOOST_TEST(request.header("host") == nullptr);
}

BOOST_AUTO_TEST_CASE(forwarded_https_reads_the_balancers_header) {
  Request request;
  BOOST_TEST(!request.forwarded_https());
  for (const char* yes : {"https", "HTTPS", "Https"}) {
    request.headers = {{"x-forwarded-proto", yes}};
    BOOST_TEST(request.forwarded_https(), yes);
  }
  for (const char* no : {"http", "", "httpsx", "https ", "wss"}) {
    request.headers = {{"x-forwarded-proto", no}};
    BOOST_TEST(!request.forwarded_https(), no);
  }
}
