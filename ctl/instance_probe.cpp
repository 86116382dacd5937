#include "instance_probe.hpp"

#include <json/json.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "error.hpp"
#include "http_get.hpp"

namespace tandem::ctl {
namespace {

bool is_status_route(const std::map<std::string, std::string>& labels) {
  auto route = labels.find("route");
  return route != labels.end() && (route->second == "/health" || route->second == "/metrics");
}

double parse_value(const std::string& text) {
  if (text == "+Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  return std::stod(text);
}

}  // namespace

std::vector<MetricSample> parse_metrics(const std::string& text) {
  std::vector<MetricSample> samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    MetricSample sample;
    std::size_t position = line.find_first_of("{ ");
    if (position == std::string::npos) continue;
    sample.name = line.substr(0, position);
    if (line[position] == '{') {
      ++position;
      while (position < line.size() && line[position] != '}') {
        const auto equals = line.find('=', position);
        if (equals == std::string::npos || equals + 1 >= line.size() || line[equals + 1] != '"') {
          break;
        }
        std::string value;
        std::size_t i = equals + 2;
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) ++i;
          value += line[i];
        }
        sample.labels[line.substr(position, equals - position)] = value;
        position = i + 1;
        if (position < line.size() && line[position] == ',') ++position;
      }
      position = line.find(' ', position);
      if (position == std::string::npos) continue;
    }
    std::istringstream rest(line.substr(position + 1));
    std::string value;
    rest >> value;
    try {
      sample.value = parse_value(value);
    } catch (const std::exception&) {
      continue;
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

InstanceProbe probe_instance(const std::string& address, int port, int timeout_ms) {
  InstanceProbe probe;
  probe.at = std::chrono::steady_clock::now();
  const Endpoint endpoint{address, port};
  try {
    const HttpAnswer health = http_get(endpoint, "/health", timeout_ms);
    probe.health_status = health.status;
    Json::Value body;
    Json::CharReaderBuilder builder;
    std::string errors;
    std::istringstream stream(health.body);
    if (Json::parseFromStream(builder, stream, &body, &errors) && body.isObject()) {
      probe.state = body.get("status", "").asString();
      probe.version = body.get("version", "").asString();
      probe.uptime_s = body.get("uptime", 0).asDouble();
      probe.connections = body.get("connections", 0).asInt64();
    }
    const HttpAnswer metrics = http_get(endpoint, "/metrics", timeout_ms);
    for (const auto& sample : parse_metrics(metrics.body)) {
      if (sample.name == "tandem_sessions_active") {
        probe.sessions = static_cast<long long>(sample.value);
      } else if (sample.name == "tandem_http_requests_total" && !is_status_route(sample.labels)) {
        probe.requests += sample.value;
        auto code = sample.labels.find("code");
        if (code != sample.labels.end() && !code->second.empty() && code->second[0] == '5') {
          probe.errors += sample.value;
        }
      } else if (sample.name == "tandem_http_request_duration_seconds_bucket" &&
                 !is_status_route(sample.labels)) {
        auto le = sample.labels.find("le");
        if (le != sample.labels.end()) probe.buckets[parse_value(le->second)] += sample.value;
      }
    }
    probe.reachable = true;
  } catch (const CtlError& error) {
    probe.error = error.what();
  } catch (const std::exception& error) {
    probe.error = std::string("unreadable answer: ") + error.what();
  }
  return probe;
}

std::optional<double> quantile(double q, const std::map<double, double>& increase) {
  if (increase.empty()) return std::nullopt;
  const double total = increase.rbegin()->second;
  if (total <= 0) return std::nullopt;
  const double rank = q * total;
  double lower_bound = 0, lower_count = 0;
  for (const auto& [le, count] : increase) {
    if (count >= rank) {
      if (std::isinf(le)) return lower_bound;  // Beyond the last finite bucket: its bound.
      if (count == lower_count) return le;
      return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count);
    }
    lower_bound = le;
    lower_count = count;
  }
  return lower_bound;
}

InstanceRates rates_between(const InstanceProbe& before, const InstanceProbe& after) {
  InstanceRates rates;
  const double seconds = std::chrono::duration<double>(after.at - before.at).count();
  // A restart in between resets the counters: no rate until the next pair.
  if (!before.reachable || !after.reachable || seconds <= 0 || after.requests < before.requests) {
    return rates;
  }
  rates.requests_per_s = (after.requests - before.requests) / seconds;
  rates.errors_per_s = (after.errors - before.errors) / seconds;
  std::map<double, double> increase;
  for (const auto& [le, count] : after.buckets) {
    auto earlier = before.buckets.find(le);
    increase[le] = count - (earlier == before.buckets.end() ? 0 : earlier->second);
  }
  rates.p99_s = quantile(0.99, increase);
  rates.measured = true;
  return rates;
}

}  // namespace tandem::ctl
