#include "runtime/metrics.hpp"

#include "runtime/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

namespace tandem {
namespace {

// Looks a (route, status) pair up in the request map without building a std::string, through
// std::less<>'s transparent comparison: record_request runs for every request.
struct RouteStatus {
  std::string_view route;
  int status;

  friend bool operator<(const std::pair<std::string, int>& key, const RouteStatus& probe) {
    const int order = std::string_view(key.first).compare(probe.route);
    return order < 0 || (order == 0 && key.second < probe.status);
  }
  friend bool operator<(const RouteStatus& probe, const std::pair<std::string, int>& key) {
    const int order = probe.route.compare(key.first);
    return order < 0 || (order == 0 && probe.status < key.second);
  }
};

// A sample value as the text format wants it: shortest exact decimal, and NaN/+Inf/-Inf spelled
// the way Prometheus spells them.
std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// A bucket bound as plain decimal ("0.00025", not "2.5e-04"), the same in Prometheus and JSON.
std::string format_bound(double bound) {
  char buffer[64];
  const auto result =
      std::to_chars(buffer, buffer + sizeof buffer, bound, std::chars_format::fixed);
  return std::string(buffer, result.ptr);
}

// Label values escape backslash, double quote and newline (text format 0.0.4).
std::string escape_label(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// Builds the exposition text one metric family at a time.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    text_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
  }
  void sample(std::string_view name, std::string_view labels, const std::string& value) {
    text_ << name;
    if (!labels.empty()) text_ << '{' << labels << '}';
    text_ << ' ' << value << '\n';
  }
  void sample(std::string_view name, std::string_view labels, uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  void sample(std::string_view name, std::string_view labels, double value) {
    sample(name, labels, format_value(value));
  }
  // A family with exactly one sample, the common case.
  template <typename T>
  void single(std::string_view name, std::string_view type, std::string_view help, T value,
              std::string_view labels = {}) {
    family(name, type, help);
    sample(name, labels, value);
  }
  std::string str() const { return text_.str(); }

 private:
  std::ostringstream text_;
};

}  // namespace

Metrics::Metrics(std::string version) : version_(std::move(version)) {}

void Metrics::record_request(std::string_view route, int status, double seconds) {
  auto counter = requests_.find(RouteStatus{route, status});
  if (counter == requests_.end()) {
    counter = requests_.emplace(std::pair<std::string, int>(route, status), 0).first;
  }
  ++counter->second;

  auto histogram = latency_.find(route);
  if (histogram == latency_.end()) {
    histogram = latency_.emplace(std::string(route), Histogram{}).first;
  }
  // A clock that stepped back must not make a negative observation (or a NaN sum).
  if (!(seconds > 0)) seconds = 0;
  const auto bucket = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) -
                      kLatencyBuckets.begin();
  if (static_cast<std::size_t>(bucket) < kLatencyBuckets.size()) {
    ++histogram->second.buckets[static_cast<std::size_t>(bucket)];
  }
  ++histogram->second.count;
  histogram->second.sum += seconds;
}

void Metrics::add_counter(const std::string& name, const std::string& help, Read read,
                          const std::string& labels) {
  added_.push_back(Added{name, "counter", help, labels, std::move(read)});
}

void Metrics::add_gauge(const std::string& name, const std::string& help, Read read,
                        const std::string& labels) {
  added_.push_back(Added{name, "gauge", help, labels, std::move(read)});
}

uint64_t Metrics::requests_total() const {
  uint64_t total = 0;
  for (const auto& [key, count] : requests_) total += count;
  return total;
}

uint64_t Metrics::requests(std::string_view route, int status) const {
  const auto counter = requests_.find(RouteStatus{route, status});
  return counter == requests_.end() ? 0 : counter->second;
}

std::string Metrics::render_prometheus(const MetricsGauges& gauges) const {
  Exposition out;

  out.family("tandem_http_requests_total", "counter",
             "HTTP requests answered, by route and status.");
  for (const auto& [key, count] : requests_) {
    out.sample(
        "tandem_http_requests_total",
        "route=\"" + escape_label(key.first) + "\",code=\"" + std::to_string(key.second) + "\"",
        count);
  }

  constexpr std::string_view kDuration = "tandem_http_request_duration_seconds";
  out.family(kDuration, "histogram", "Time from a request's first byte to its answer, by route.");
  for (const auto& [route, histogram] : latency_) {
    const std::string route_label = "route=\"" + escape_label(route) + "\"";
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += histogram.buckets[i];
      out.sample("tandem_http_request_duration_seconds_bucket",
                 route_label + ",le=\"" + format_bound(kLatencyBuckets[i]) + "\"", cumulative);
    }
    out.sample("tandem_http_request_duration_seconds_bucket", route_label + ",le=\"+Inf\"",
               histogram.count);
    out.sample("tandem_http_request_duration_seconds_sum", route_label, histogram.sum);
    out.sample("tandem_http_request_duration_seconds_count", route_label, histogram.count);
  }

  out.single("tandem_connections_open", "gauge", "Client connections open now.",
             gauges.connections_open);
  out.single("tandem_connections_accepted_total", "counter", "Client connections accepted.",
             connections_accepted_);
  out.single("tandem_connections_rejected_total", "counter",
             "Client connections refused because --max-connections were open.",
             connections_rejected_);
  out.single("tandem_bad_requests_total", "counter",
             "Requests refused as malformed, oversized or too slow.", bad_requests_);

  for (const Added& metric : added_) {
    out.single(metric.name, metric.type, metric.help, metric.read(), metric.labels);
  }

  const CpuWorkerStats& worker = gauges.worker;
  out.single("tandem_worker_capacity", "gauge",
             "CPU-bound requests the worker holds at most (--worker-queue).", worker.capacity);
  out.single("tandem_worker_in_flight", "gauge",
             "CPU-bound requests queued or running on the worker now.", worker.in_flight);
  out.family("tandem_worker_jobs_total", "counter",
             "CPU-bound requests by outcome: completed, rejected (worker full: 503), cancelled.");
  out.sample("tandem_worker_jobs_total", "outcome=\"completed\"", worker.completed);
  out.sample("tandem_worker_jobs_total", "outcome=\"rejected\"", worker.rejected);
  out.sample("tandem_worker_jobs_total", "outcome=\"cancelled\"", worker.cancelled);
  out.single("tandem_worker_busy_seconds_total", "counter",
             "Seconds the worker thread spent on CPU-bound requests.", worker.busy_seconds);

  out.single("tandem_draining", "gauge", "1 while the instance drains after SIGTERM, else 0.",
             uint64_t{gauges.draining ? 1u : 0u});
  out.single("tandem_uptime_seconds", "gauge", "Seconds since the instance started.",
             gauges.uptime_seconds);
  out.single("tandem_build_info", "gauge", "Always 1; the version is in the label.", uint64_t{1},
             "version=\"" + escape_label(version_) + "\"");

  const ProcessStats process = read_process_stats();
  out.single("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
             process.cpu_seconds);
  out.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
             process.resident_bytes);
  out.single("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
             process.virtual_bytes);
  out.single("process_open_fds", "gauge", "Number of open file descriptors.", process.open_fds);
  out.single("process_max_fds", "gauge", "Maximum number of open file descriptors.",
             process.max_fds);
  out.single("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.", process.start_time_seconds);
  return out.str();
}

Json::Value Metrics::render_json(const MetricsGauges& gauges) const {
  Json::Value root(Json::objectValue);

  Json::Value& requests = root["requests"];
  requests["total"] = Json::UInt64{requests_total()};
  Json::Value& by_route = requests["byRoute"];
  by_route = Json::Value(Json::objectValue);
  for (const auto& [key, count] : requests_) {
    by_route[key.first][std::to_string(key.second)] = Json::UInt64{count};
  }

  Json::Value& latency = root["latency"];
  latency = Json::Value(Json::objectValue);
  for (const auto& [route, histogram] : latency_) {
    Json::Value& entry = latency[route];
    entry["count"] = Json::UInt64{histogram.count};
    entry["sum"] = histogram.sum;
    Json::Value& buckets = entry["buckets"];
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += histogram.buckets[i];
      buckets[format_bound(kLatencyBuckets[i])] = Json::UInt64{cumulative};
    }
    buckets["+Inf"] = Json::UInt64{histogram.count};
  }

  Json::Value& connections = root["connections"];
  connections["open"] = Json::UInt64{gauges.connections_open};
  connections["accepted"] = Json::UInt64{connections_accepted_};
  connections["rejected"] = Json::UInt64{connections_rejected_};
  root["badRequests"] = Json::UInt64{bad_requests_};

  // The application's metrics by name, with the labels when there are any.
  Json::Value& added = root["app"];
  added = Json::Value(Json::objectValue);
  for (const Added& metric : added_) {
    std::string key = metric.labels.empty() ? metric.name : metric.name + "{" + metric.labels + "}";
    added[key] = metric.read();
  }

  Json::Value& worker = root["worker"];
  worker["capacity"] = Json::UInt64{gauges.worker.capacity};
  worker["inFlight"] = Json::UInt64{gauges.worker.in_flight};
  worker["completed"] = Json::UInt64{gauges.worker.completed};
  worker["rejected"] = Json::UInt64{gauges.worker.rejected};
  worker["cancelled"] = Json::UInt64{gauges.worker.cancelled};
  worker["busySeconds"] = gauges.worker.busy_seconds;

  root["draining"] = gauges.draining;
  root["uptime"] = gauges.uptime_seconds;
  return root;
}

}  // namespace tandem
