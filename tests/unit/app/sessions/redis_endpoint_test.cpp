#define BOOST_TEST_MODULE redis_endpoint
#include "app/sessions/redis_endpoint.hpp"

#include <boost/test/unit_test.hpp>
#include <string>

using tandem::parse_redis_url;

BOOST_AUTO_TEST_CASE(redis_urls_parse_strictly) {
  const auto plain = parse_redis_url("redis://cache.example:6379");
  BOOST_TEST_REQUIRE(plain.has_value());
  BOOST_TEST(plain->host == "cache.example");
  BOOST_TEST(plain->port == 6379);
  BOOST_TEST(plain->db == 0);
  const auto with_db = parse_redis_url("redis://10.0.0.5:1/15");
  BOOST_TEST_REQUIRE(with_db.has_value());
  BOOST_TEST(with_db->host == "10.0.0.5");
  BOOST_TEST(with_db->port == 1);
  BOOST_TEST(with_db->db == 15);
  const auto ipv6 = parse_redis_url("redis://[::1]:65535/0");
  BOOST_TEST_REQUIRE(ipv6.has_value());
  BOOST_TEST(ipv6->host == "::1");
  BOOST_TEST(ipv6->port == 65535);
  for (const std::string bad :
       {"memory", "redis://", "redis://host", "redis://:1", "redis://h:1/", "redis://h:1/16",
        "redis://h:x", "redis://-h:1", "redis://h_1:1", "redis://[::1]", "redis://[::1]6379",
        "redis://[]:1", "REDIS://h:1", "redis://h:1?db=1"}) {
    BOOST_TEST(!parse_redis_url(bad).has_value(), bad);
  }
}
