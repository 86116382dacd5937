#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tandem::ctl {

// One sample of a Prometheus text exposition: name, labels, value.
struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<MetricSample> parse_metrics(const std::string& text);

// What an instance says about itself at one moment: its /health and the counters of its /metrics
// that tandemctl turns into rates, over the application's routes (not /health nor /metrics).
struct InstanceProbe {
  bool reachable = false;
  std::string error;      // Why not, when not reachable.
  int health_status = 0;  // 200 healthy, 503 draining.
  std::string state;      // "healthy", "draining".
  std::string version;
  double uptime_s = 0;
  long long connections = 0;         // Open on the instance itself.
  long long sessions = -1;           // tandem_sessions_active; -1 when the application has none.
  double requests = 0;               // tandem_http_requests_total over the routes.
  double errors = 0;                 // Of which 5xx.
  std::map<double, double> buckets;  // le → cumulative count, summed over the routes.
  std::chrono::steady_clock::time_point at;
};

// /health and /metrics of the instance at address:port, each bounded by timeout_ms.
InstanceProbe probe_instance(const std::string& address, int port, int timeout_ms);

// Rates between two probes of one instance (the later one second).
struct InstanceRates {
  double requests_per_s = 0;
  double errors_per_s = 0;
  std::optional<double> p99_s;  // None when no request was answered in between.
  // Whether the rates are a measure: both probes answered and no restart reset the counters in
  // between. Otherwise they are 0 for want of one, which a live view shows as "-".
  bool measured = false;
};
InstanceRates rates_between(const InstanceProbe& before, const InstanceProbe& after);

// The q-quantile of a cumulative histogram's increase (le → count), interpolated inside the
// bucket as Prometheus's histogram_quantile does; none when the increase is 0.
std::optional<double> quantile(double q, const std::map<double, double>& increase);

}  // namespace tandem::ctl
