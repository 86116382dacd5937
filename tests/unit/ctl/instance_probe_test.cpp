#define BOOST_TEST_MODULE instance_probe
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "http_get.hpp"
#include "instance_probe.hpp"

namespace tandem::ctl {
namespace {

BOOST_AUTO_TEST_CASE(prometheus_text_with_labels_and_escapes) {
  const auto samples = parse_metrics(
      "# HELP x y\n# TYPE x counter\n"
      "tandem_http_requests_total{route=\"/api/whoami\",code=\"200\"} 17\n"
      "tandem_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
      "odd{label=\"a \\\"quoted\\\" b\"} 1.5e-3\n"
      "tandem_sessions_active 4\n");
  BOOST_TEST_REQUIRE(samples.size() == 4u);
  BOOST_TEST(samples[0].labels.at("route") == "/api/whoami");
  BOOST_TEST(samples[0].value == 17);
  BOOST_TEST(samples[1].labels.at("le") == "+Inf");
  BOOST_TEST(samples[2].labels.at("label") == "a \"quoted\" b");
  BOOST_TEST(samples[2].value == 0.0015);
  BOOST_TEST(samples[3].name == "tandem_sessions_active");
}

BOOST_AUTO_TEST_CASE(quantile_interpolates_inside_the_bucket) {
  const double inf = std::numeric_limits<double>::infinity();
  // 100 answers: 50 under 1 ms, 99 under 2 ms, all under 4 ms.
  const std::map<double, double> increase{{0.001, 50}, {0.002, 99}, {0.004, 100}, {inf, 100}};
  BOOST_TEST(*quantile(0.5, increase) == 0.001, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(*quantile(0.99, increase) == 0.002, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(*quantile(0.75, increase) == 0.001 + 0.001 * 25 / 49,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(!quantile(0.99, {{0.001, 0}, {inf, 0}}).has_value());
  // Beyond the last finite bucket, the bucket's bound is the answer (as Prometheus does).
  BOOST_TEST(*quantile(0.99, {{0.001, 0}, {inf, 10}}) == 0.001);
}

BOOST_AUTO_TEST_CASE(rates_between_two_probes_and_none_across_a_restart) {
  InstanceProbe before, after;
  before.reachable = after.reachable = true;
  before.at = std::chrono::steady_clock::now();
  after.at = before.at + std::chrono::seconds(2);
  before.requests = 100;
  after.requests = 300;
  before.errors = 1;
  after.errors = 5;
  before.buckets = {{0.001, 90}, {0.01, 100}};
  after.buckets = {{0.001, 280}, {0.01, 300}};
  const InstanceRates rates = rates_between(before, after);
  BOOST_TEST(rates.requests_per_s == 100.0, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(rates.errors_per_s == 2.0, boost::test_tools::tolerance(1e-9));
  BOOST_TEST_REQUIRE(rates.p99_s.has_value());
  BOOST_TEST(*rates.p99_s > 0.001);
  after.requests = 10;  // The counters started again: a new process.
  BOOST_TEST(rates_between(before, after).requests_per_s == 0.0);
  BOOST_TEST(!rates_between(before, after).p99_s.has_value());
}

BOOST_AUTO_TEST_CASE(http_urls) {
  BOOST_TEST(parse_http_url("http://127.0.0.1:8080").port == 8080);
  BOOST_TEST(parse_http_url("http://lb.example/x").host == "lb.example");
  BOOST_TEST(parse_http_url("http://lb.example/x").port == 80);
  BOOST_TEST(parse_http_url("http://[::1]:81").host == "::1");
  BOOST_TEST(!parse_http_url("http://lb.example").tls);
  BOOST_TEST(parse_http_url("https://lb.example/x").tls);
  BOOST_TEST(parse_http_url("https://lb.example/x").port == 443);
  BOOST_TEST(parse_http_url("https://127.0.0.1:8443").port == 8443);
  BOOST_CHECK_THROW(parse_http_url("ftp://x"), std::exception);
  BOOST_CHECK_THROW(parse_http_url("http://:80"), std::exception);
}

BOOST_AUTO_TEST_CASE(an_instance_nobody_answers_for_is_unreachable) {
  // Port 1 on loopback: nothing listens there.
  const InstanceProbe probe = probe_instance("127.0.0.1", 1, 500);
  BOOST_TEST(!probe.reachable);
  BOOST_TEST(!probe.error.empty());
}

}  // namespace
}  // namespace tandem::ctl
