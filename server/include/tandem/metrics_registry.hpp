#pragma once

#include <functional>
#include <string>

namespace tandem {

// What an application adds to /metrics (Prometheus text) and /api/metrics (JSON, under "app"):
// each metric is read when it is rendered, from a function the application gives, so it never
// has to push numbers anywhere.
class MetricsRegistry {
 public:
  using Read = std::function<double()>;

  virtual ~MetricsRegistry() = default;

  // A counter (only ever grows) or a gauge, named in Prometheus's style ("notes_total"), with an
  // optional label set in the text format's syntax (store="memory").
  virtual void add_counter(const std::string& name, const std::string& help, Read read,
                           const std::string& labels = {}) = 0;
  virtual void add_gauge(const std::string& name, const std::string& help, Read read,
                         const std::string& labels = {}) = 0;
};

}  // namespace tandem
