#define BOOST_TEST_MODULE sentinel_endpoint
#include "app/sessions/sentinel_endpoint.hpp"

#include <boost/test/unit_test.hpp>
#include <string>

using tandem::parse_sentinel_url;

BOOST_AUTO_TEST_CASE(one_sentinel_and_a_name) {
  const auto endpoint = parse_sentinel_url("sentinel://s1.example:26379/mymaster");
  BOOST_TEST_REQUIRE(endpoint.has_value());
  BOOST_TEST_REQUIRE(endpoint->sentinels.size() == 1u);
  BOOST_TEST(endpoint->sentinels[0].host == "s1.example");
  BOOST_TEST(endpoint->sentinels[0].port == 26379);
  BOOST_TEST(endpoint->master_name == "mymaster");
  BOOST_TEST(endpoint->db == 0);
  BOOST_TEST(endpoint->user.empty());
  BOOST_TEST(endpoint->password.empty());
}

BOOST_AUTO_TEST_CASE(several_sentinels_credentials_and_a_database) {
  const auto endpoint = parse_sentinel_url(
      "sentinel://app:p%40ss@10.0.0.1:1,[::1]:65535,s3:26379/tandem.main_1-a/15");
  BOOST_TEST_REQUIRE(endpoint.has_value());
  BOOST_TEST_REQUIRE(endpoint->sentinels.size() == 3u);
  BOOST_TEST(endpoint->sentinels[0].host == "10.0.0.1");
  BOOST_TEST(endpoint->sentinels[0].port == 1);
  BOOST_TEST(endpoint->sentinels[1].host == "::1");
  BOOST_TEST(endpoint->sentinels[1].port == 65535);
  BOOST_TEST(endpoint->sentinels[2].host == "s3");
  BOOST_TEST(endpoint->master_name == "tandem.main_1-a");
  BOOST_TEST(endpoint->db == 15);
  BOOST_TEST(endpoint->user == "app");
  BOOST_TEST(endpoint->password == "p@ss");
  // The node a Sentinel names inherits the database and the one secret.
  const auto node = endpoint->node({"10.0.0.9", 6380});
  BOOST_TEST(node.host == "10.0.0.9");
  BOOST_TEST(node.port == 6380);
  BOOST_TEST(node.db == 15);
  BOOST_TEST(node.password == "p@ss");
  BOOST_TEST(parse_sentinel_url("sentinel://:secret@h:1/m")->password == "secret");
}

BOOST_AUTO_TEST_CASE(malformed_urls_are_refused) {
  for (const std::string bad : {
           "memory",
           "redis://h:1/m",             // Another scheme.
           "SENTINEL://h:1/m",          // Schemes are lower case.
           "sentinel://",               // Nothing.
           "sentinel://h:1",            // No master name.
           "sentinel://h:1/",           // An empty master name.
           "sentinel://h/m",            // No port.
           "sentinel://h:/m",           // An empty port.
           "sentinel://h:0/m",          // Port out of range.
           "sentinel://h:65536/m",      // Port out of range.
           "sentinel://h:x/m",          // Port not a number.
           "sentinel://h:+1/m",         // Port with a sign.
           "sentinel://:1/m",           // No host.
           "sentinel://-h:1/m",         // Not a host name.
           "sentinel://h_1:1/m",        // Not a host name.
           "sentinel://[::1]/m",        // IPv6 without a port.
           "sentinel://[]:1/m",         // An empty IPv6 literal.
           "sentinel://[::g]:1/m",      // Not an IPv6 literal.
           "sentinel://h:1,/m",         // An empty Sentinel after a comma.
           "sentinel://,h:1/m",         // An empty Sentinel before.
           "sentinel://h:1,,h:2/m",     // An empty Sentinel between.
           "sentinel://h:1,h2/m",       // The second Sentinel without a port.
           "sentinel://h:1/my master",  // A space in the name.
           "sentinel://h:1/m:x",        // A colon in the name.
           "sentinel://h:1/m/",         // An empty database.
           "sentinel://h:1/m/16",       // Database out of range.
           "sentinel://h:1/m/-1",       // Database with a sign.
           "sentinel://h:1/m/1/2",      // Trailing path.
           "sentinel://h:1/m?db=1",     // A query string.
           "sentinel://user@h:1/m",     // A user without a password.
           "sentinel://user:@h:1/m",    // An empty password.
           "sentinel://u:%zz@h:1/m",    // A malformed escape.
           "sentinel://u:%4@h:1/m",     // A truncated escape.
           "sentinel://h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9,h:10,h:11,h:12,h:13,h:14,h:15,h:16,"
           "h:17/m",  // More Sentinels than any deployment has.
       }) {
    BOOST_TEST(!parse_sentinel_url(bad).has_value(), bad);
  }
}
