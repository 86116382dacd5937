#pragma once

#include <json/value.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <vector>

#include "tandem/cpu_worker.hpp"
#include "tandem/metrics_registry.hpp"

namespace tandem {

// Values read at the moment metrics are rendered, owned by other parts of the server.
struct MetricsGauges {
  uint64_t connections_open = 0;
  bool draining = false;
  double uptime_seconds = 0;
  CpuWorkerStats worker;
};

// Request counters by (route, status), a latency histogram, connection counters, and the
// application's own metrics, rendered as Prometheus text (/metrics) or JSON (/api/metrics).
class Metrics final : public MetricsRegistry {
 public:
  // Upper bounds of the latency histogram's buckets, in seconds (+Inf is implicit).
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

  explicit Metrics(std::string version);

  // Counts one answered request. `route` is the route's path, or "unmatched" for unknown paths.
  void record_request(std::string_view route, int status, double seconds);
  void connection_accepted() { ++connections_accepted_; }
  void connection_rejected() { ++connections_rejected_; }  // Over --max-connections.
  void bad_request() { ++bad_requests_; }                  // Malformed, oversized, timed out.

  uint64_t requests_total() const;
  uint64_t requests(std::string_view route, int status) const;

  std::string render_prometheus(const MetricsGauges& gauges) const;
  Json::Value render_json(const MetricsGauges& gauges) const;

  // MetricsRegistry.
  void add_counter(const std::string& name, const std::string& help, Read read,
                   const std::string& labels = {}) override;
  void add_gauge(const std::string& name, const std::string& help, Read read,
                 const std::string& labels = {}) override;

 private:
  // One metric an application added.
  struct Added {
    std::string name;
    std::string type;  // "counter" | "gauge"
    std::string help;
    std::string labels;
    Read read;
  };

  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // Non-cumulative counts.
    uint64_t count = 0;
    double sum = 0;
  };

  std::string version_;
  std::map<std::pair<std::string, int>, uint64_t, std::less<>> requests_;
  std::map<std::string, Histogram, std::less<>> latency_;  // By route.
  uint64_t connections_accepted_ = 0;
  uint64_t connections_rejected_ = 0;
  uint64_t bad_requests_ = 0;
  std::vector<Added> added_;
};

}  // namespace tandem
