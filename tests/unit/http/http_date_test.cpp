#define BOOST_TEST_MODULE http_date
#include "http/http_date.hpp"

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_CASE(formats_imf_fixdate) {
  BOOST_TEST(tandem::HttpDate::format(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  BOOST_TEST(tandem::HttpDate::format(1795717314) == "Thu, 26 Nov 2026 18:21:54 GMT");
}

BOOST_AUTO_TEST_CASE(cached_value_is_the_current_second) {
  tandem::HttpDate date;
  std::string first = date.now();
  std::time_t now = std::time(nullptr);
  std::string expected_a = tandem::HttpDate::format(now - 1);
  std::string expected_b = tandem::HttpDate::format(now);
  BOOST_TEST((first == expected_a || first == expected_b));
  BOOST_TEST(first.size() == 29u);
}
