#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config.hpp"
#include "metrics.hpp"
#include "request.hpp"
#include "response.hpp"
#include "router.hpp"
#include "session_store.hpp"

namespace tandem {

// What the server tells the handlers about itself; the server keeps it current.
struct ServerStatus {
  bool draining = false;
  uint64_t connections_open = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// The application: the routes of DESIGN.md and their handlers. It knows nothing of sockets.
class App {
 public:
  App(const Config& config, Metrics& metrics, SessionStore& sessions, const ServerStatus& status);
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Answers `request` through `respond` (exactly once, now or later) and counts it in metrics.
  void handle(const Request& request, Responder respond);
  // Counts an answer the connection made itself (a 400 for malformed input, say): no route was
  // matched, so it is counted under "unmatched".
  void count_error(int status);

  const std::string& container_id() const { return container_id_; }

 private:
  void health(const Request& request, Responder& respond);
  void whoami(const Request& request, Responder& respond);
  void session(const Request& request, Responder& respond);
  void load_test(const Request& request, Responder& respond);
  void api_metrics(const Request& request, Responder& respond);
  void prometheus(const Request& request, Responder& respond);
  MetricsGauges gauges() const;
  double uptime_seconds() const;

  const Config& config_;
  Metrics& metrics_;
  SessionStore& sessions_;
  const ServerStatus& status_;
  std::string container_id_;
  std::string hostname_;
  int64_t pid_;
  std::string whoami_prefix_;  // whoami's body up to the timestamp's value.
  Router router_;
};

}  // namespace tandem
