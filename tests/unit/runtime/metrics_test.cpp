#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/metrics.hpp"
#include "runtime/process_stats.hpp"

namespace tandem {
namespace {

// One sample line of the text format, taken apart.
struct Sample {
  std::string name;
  std::string labels;  // Inside the braces, as written.
  double value = 0;
};

// What a scrape of render_prometheus() held, checked line by line against text format 0.0.4.
struct Scrape {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // Family name to type.
  std::map<std::string, int> helps;          // Family name to how many HELP lines.

  const Sample* find(const std::string& name, const std::string& labels = "") const {
    for (const auto& sample : samples) {
      if (sample.name == name && sample.labels == labels) return &sample;
    }
    return nullptr;
  }
  double value(const std::string& name, const std::string& labels = "") const {
    const Sample* sample = find(name, labels);
    BOOST_TEST_REQUIRE(sample != nullptr, name << "{" << labels << "} is missing");
    return sample->value;
  }
};

// The family a sample belongs to: histograms add _bucket, _sum and _count to the family's name.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string_view view = name;
    if (view.ends_with(suffix)) {
      const std::string base = name.substr(0, name.size() - std::strlen(suffix));
      const auto type = types.find(base);
      if (type != types.end() && type->second == "histogram") return base;
    }
  }
  return name;
}

Scrape parse_scrape(const std::string& text) {
  static const std::regex kSample(
      R"re(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)\})? ([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|NaN|[-+]Inf))re");
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");

  Scrape scrape;
  BOOST_TEST_REQUIRE(!text.empty());
  BOOST_TEST(text.back() == '\n');
  std::istringstream lines(text);
  std::set<std::string> families_seen;  // Families whose samples have started.
  std::string current_family;
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    BOOST_TEST_CONTEXT("line: " << line) {
      if (std::regex_match(line, match, kHelp)) {
        ++scrape.helps[match[1]];
      } else if (std::regex_match(line, match, kType)) {
        BOOST_TEST(scrape.types.count(match[1]) == 0u);
        scrape.types[match[1]] = match[2];
        current_family = match[1];
      } else if (std::regex_match(line, match, kSample)) {
        Sample sample{match[1], match[2], std::strtod(match[3].str().c_str(), nullptr)};
        // Every sample follows its own family's TYPE line, and a family's samples are together.
        BOOST_TEST(family_of(sample.name, scrape.types) == current_family);
        scrape.samples.push_back(std::move(sample));
      } else {
        BOOST_ERROR("not a valid line of the text format");
      }
    }
  }
  for (const auto& [family, count] : scrape.helps) {
    BOOST_TEST(count == 1, family);
    BOOST_TEST(scrape.types.count(family) == 1u, family);
  }
  for (const auto& [family, type] : scrape.types) BOOST_TEST(scrape.helps.count(family) == 1u);
  return scrape;
}

MetricsGauges sample_gauges() {
  MetricsGauges gauges;
  gauges.connections_open = 7;
  gauges.draining = false;
  gauges.uptime_seconds = 12.5;
  gauges.worker = CpuWorkerStats{32, 5, 100, 7, 2, 1.5};
  return gauges;
}

// What an application adds: a counter, and a gauge with a label, each read when rendered.
void add_application_metrics(Metrics& metrics, const double& items) {
  metrics.add_counter("app_items_total", "Items made.", [&items] { return items; });
  metrics.add_gauge(
      "app_store_up", "1 when the store works.", [] { return 1.0; }, "store=\"memory\"");
}

}  // namespace

BOOST_AUTO_TEST_CASE(counts_requests_by_route_and_status) {
  Metrics metrics("1.2.3");
  BOOST_TEST(metrics.requests_total() == 0u);
  metrics.record_request("/api/whoami", 200, 0.001);
  metrics.record_request("/api/whoami", 200, 0.002);
  metrics.record_request("/api/whoami", 503, 0.002);
  metrics.record_request("unmatched", 404, 0.0001);
  const std::string long_route = "/a/route/too/long/for/the/small/string/buffer";
  metrics.record_request(long_route, 200, 0.5);
  metrics.record_request(long_route, 200, 0.5);
  BOOST_TEST(metrics.requests("/api/whoami", 200) == 2u);
  BOOST_TEST(metrics.requests("/api/whoami", 503) == 1u);
  BOOST_TEST(metrics.requests("/api/whoami", 404) == 0u);
  BOOST_TEST(metrics.requests("unmatched", 404) == 1u);
  BOOST_TEST(metrics.requests(long_route, 200) == 2u);
  BOOST_TEST(metrics.requests("/nothing", 200) == 0u);
  BOOST_TEST(metrics.requests_total() == 6u);
}

BOOST_AUTO_TEST_CASE(prometheus_text_is_well_formed_with_every_family) {
  Metrics metrics("1.2.3");
  metrics.record_request("/api/whoami", 200, 0.003);
  metrics.record_request("/health", 503, 0.0002);
  metrics.connection_accepted();
  metrics.connection_accepted();
  metrics.connection_rejected();
  metrics.bad_request();
  double items = 3;
  add_application_metrics(metrics, items);
  items = 10;  // Read at rendering, not at registration.
  const Scrape scrape = parse_scrape(metrics.render_prometheus(sample_gauges()));

  const std::map<std::string, std::string> expected_types = {
      {"tandem_http_requests_total", "counter"},
      {"tandem_http_request_duration_seconds", "histogram"},
      {"tandem_connections_open", "gauge"},
      {"tandem_connections_accepted_total", "counter"},
      {"tandem_connections_rejected_total", "counter"},
      {"tandem_bad_requests_total", "counter"},
      {"app_items_total", "counter"},
      {"app_store_up", "gauge"},
      {"tandem_worker_capacity", "gauge"},
      {"tandem_worker_in_flight", "gauge"},
      {"tandem_worker_jobs_total", "counter"},
      {"tandem_worker_busy_seconds_total", "counter"},
      {"tandem_draining", "gauge"},
      {"tandem_uptime_seconds", "gauge"},
      {"tandem_build_info", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
      {"process_start_time_seconds", "gauge"}};
  BOOST_TEST(scrape.types == expected_types);

  BOOST_TEST(scrape.value("tandem_http_requests_total", R"(route="/api/whoami",code="200")") == 1);
  BOOST_TEST(scrape.value("tandem_http_requests_total", R"(route="/health",code="503")") == 1);
  BOOST_TEST(scrape.value("tandem_connections_open") == 7);
  BOOST_TEST(scrape.value("tandem_connections_accepted_total") == 2);
  BOOST_TEST(scrape.value("tandem_connections_rejected_total") == 1);
  BOOST_TEST(scrape.value("tandem_bad_requests_total") == 1);
  BOOST_TEST(scrape.value("app_items_total") == 10);
  BOOST_TEST(scrape.value("app_store_up", R"(store="memory")") == 1);
  BOOST_TEST(scrape.value("tandem_worker_capacity") == 32);
  BOOST_TEST(scrape.value("tandem_worker_in_flight") == 5);
  BOOST_TEST(scrape.value("tandem_worker_jobs_total", R"(outcome="completed")") == 100);
  BOOST_TEST(scrape.value("tandem_worker_jobs_total", R"(outcome="rejected")") == 7);
  BOOST_TEST(scrape.value("tandem_worker_jobs_total", R"(outcome="cancelled")") == 2);
  BOOST_TEST(scrape.value("tandem_worker_busy_seconds_total") == 1.5);
  BOOST_TEST(scrape.value("tandem_draining") == 0);
  BOOST_TEST(scrape.value("tandem_uptime_seconds") == 12.5);
  BOOST_TEST(scrape.value("tandem_build_info", R"(version="1.2.3")") == 1);
  BOOST_TEST(scrape.value("process_resident_memory_bytes") > 0);
  BOOST_TEST(scrape.value("process_open_fds") > 0);
}

BOOST_AUTO_TEST_CASE(an_empty_scrape_is_well_formed) {
  const Metrics metrics("0.0.0");
  MetricsGauges gauges;
  gauges.draining = true;
  const Scrape scrape = parse_scrape(metrics.render_prometheus(gauges));
  BOOST_TEST(scrape.find("tandem_http_requests_total", "") == nullptr);
  BOOST_TEST(scrape.types.count("tandem_http_request_duration_seconds") == 1u);
  BOOST_TEST(scrape.value("tandem_draining") == 1);
}

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_and_inf_equals_count) {
  Metrics metrics("1");
  const std::vector<double> observations = {0.00005, 0.0001, 0.001, 0.0011, 0.3, 0.3, 5.0, -1.0};
  for (double seconds : observations) metrics.record_request("/api/load-test", 200, seconds);
  metrics.record_request("/health", 200, 0.01);
  const Scrape scrape = parse_scrape(metrics.render_prometheus(sample_gauges()));

  const std::string route = R"(route="/api/load-test")";
  std::vector<double> cumulative;
  for (const auto& sample : scrape.samples) {
    if (sample.name == "tandem_http_request_duration_seconds_bucket" &&
        sample.labels.rfind(route + ",le=", 0) == 0) {
      cumulative.push_back(sample.value);
    }
  }
  BOOST_TEST_REQUIRE(cumulative.size() == Metrics::kLatencyBuckets.size() + 1);
  for (std::size_t i = 1; i < cumulative.size(); ++i)
    BOOST_TEST(cumulative[i - 1] <= cumulative[i]);
  const double count = scrape.value("tandem_http_request_duration_seconds_count", route);
  BOOST_TEST(count == observations.size());
  BOOST_TEST(scrape.value("tandem_http_request_duration_seconds_bucket", route + R"(,le="+Inf")") ==
             count);
  // A bound counts the observations equal to it (le means "less than or equal").
  BOOST_TEST(
      scrape.value("tandem_http_request_duration_seconds_bucket", route + R"(,le="0.0001")") ==
      3);  // 0.00005, 0.0001, and the negative one clamped to 0.
  BOOST_TEST(
      scrape.value("tandem_http_request_duration_seconds_bucket", route + R"(,le="0.001")") == 4);
  BOOST_TEST(
      scrape.value("tandem_http_request_duration_seconds_bucket", route + R"(,le="0.00025")") == 3);
  BOOST_TEST(scrape.value("tandem_http_request_duration_seconds_bucket", route + R"(,le="0.5")") ==
             7);
  BOOST_TEST(scrape.value("tandem_http_request_duration_seconds_bucket", route + R"(,le="2.5")") ==
             7);
  BOOST_TEST(scrape.value("tandem_http_request_duration_seconds_sum", route) ==
                 0.00005 + 0.0001 + 0.001 + 0.0011 + 0.3 + 0.3 + 5.0,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(scrape.value("tandem_http_request_duration_seconds_count", R"(route="/health")") == 1);
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped) {
  Metrics metrics("v\"1\\\n");
  metrics.record_request("/a\"b\\c\nd", 200, 0.001);
  const std::string text = metrics.render_prometheus(sample_gauges());
  BOOST_TEST(text.find(R"(tandem_http_requests_total{route="/a\"b\\c\nd",code="200"} 1)") !=
             std::string::npos);
  BOOST_TEST(text.find(R"(tandem_build_info{version="v\"1\\\n"} 1)") != std::string::npos);
  parse_scrape(text);
}

BOOST_AUTO_TEST_CASE(json_has_the_documented_shape) {
  Metrics metrics("1.2.3");
  metrics.record_request("/api/whoami", 200, 0.0004);
  metrics.record_request("/api/whoami", 200, 0.02);
  metrics.record_request("/api/whoami", 404, 3);
  metrics.record_request("unmatched", 404, 0.001);
  metrics.connection_accepted();
  metrics.connection_rejected();
  metrics.bad_request();
  metrics.bad_request();
  double items = 4;
  add_application_metrics(metrics, items);
  MetricsGauges gauges = sample_gauges();
  gauges.draining = true;
  const Json::Value json = metrics.render_json(gauges);

  BOOST_TEST(json["requests"]["total"].asUInt64() == 4u);
  BOOST_TEST(json["requests"]["byRoute"]["/api/whoami"]["200"].asUInt64() == 2u);
  BOOST_TEST(json["requests"]["byRoute"]["/api/whoami"]["404"].asUInt64() == 1u);
  BOOST_TEST(json["requests"]["byRoute"]["unmatched"]["404"].asUInt64() == 1u);
  BOOST_TEST(json["requests"]["byRoute"].size() == 2u);

  const Json::Value& whoami = json["latency"]["/api/whoami"];
  BOOST_TEST(whoami["count"].asUInt64() == 3u);
  BOOST_TEST(whoami["sum"].asDouble() == 3.0204, boost::test_tools::tolerance(1e-9));
  const Json::Value& buckets = whoami["buckets"];
  BOOST_TEST(buckets.size() == Metrics::kLatencyBuckets.size() + 1);
  BOOST_TEST(buckets["0.0001"].asUInt64() == 0u);
  BOOST_TEST(buckets["0.0005"].asUInt64() == 1u);
  BOOST_TEST(buckets["0.025"].asUInt64() == 2u);
  BOOST_TEST(buckets["2.5"].asUInt64() == 2u);
  BOOST_TEST(buckets["+Inf"].asUInt64() == 3u);
  BOOST_TEST(json["latency"]["unmatched"]["count"].asUInt64() == 1u);

  BOOST_TEST(json["connections"]["open"].asUInt64() == 7u);
  BOOST_TEST(json["connections"]["accepted"].asUInt64() == 1u);
  BOOST_TEST(json["connections"]["rejected"].asUInt64() == 1u);
  BOOST_TEST(json["badRequests"].asUInt64() == 2u);

  BOOST_TEST(json["app"]["app_items_total"].asDouble() == 4.0);
  BOOST_TEST(json["app"]["app_store_up{store=\"memory\"}"].asDouble() == 1.0);

  BOOST_TEST(json["draining"].isBool());
  BOOST_TEST(json["draining"].asBool());
  BOOST_TEST(json["uptime"].isDouble());
  BOOST_TEST(json["uptime"].asDouble() == 12.5);
}

BOOST_AUTO_TEST_CASE(empty_json_still_has_objects_not_nulls) {
  const Metrics metrics("1");
  const Json::Value json = metrics.render_json(MetricsGauges{});
  BOOST_TEST(json["requests"]["total"].asUInt64() == 0u);
  BOOST_TEST(json["requests"]["byRoute"].isObject());
  BOOST_TEST(json["latency"].isObject());
  BOOST_TEST(!json["draining"].asBool());
}

BOOST_AUTO_TEST_CASE(process_stats_are_plausible) {
  const ProcessStats stats = read_process_stats();
  BOOST_TEST(stats.resident_bytes > 0u);
  BOOST_TEST(stats.virtual_bytes >= stats.resident_bytes);
  BOOST_TEST(stats.open_fds > 0u);
  BOOST_TEST(stats.max_fds >= stats.open_fds);
  BOOST_TEST(stats.cpu_seconds >= 0);
  const double now = static_cast<double>(std::time(nullptr));
  BOOST_TEST(stats.start_time_seconds > now - 3600);
  BOOST_TEST(stats.start_time_seconds <= now + 1);

  // Opening a descriptor shows up in the count.
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  BOOST_TEST_REQUIRE(fd >= 0);
  BOOST_TEST(read_process_stats().open_fds == stats.open_fds + 1);
  close(fd);
}

}  // namespace tandem
