#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config.hpp"
#include "cpu_worker.hpp"
#include "metrics.hpp"
#include "request.hpp"
#include "request_handler.hpp"
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
class App final : public RequestHandler {
 public:
  // The body of POST /api/session is at most this long: a clientId of 256 bytes, escaped, plus
  // the requestNum and room for whitespace.
  static constexpr std::size_t kSessionBodyLimit = 4096;
  // A request for a path or method with no route may carry this much, so that it is answered
  // 404 or 405 rather than refused for its size.
  static constexpr std::size_t kUnroutedBodyLimit = 4096;
  static constexpr std::size_t kMaxClientIdBytes = 256;

  App(const Config& config, Metrics& metrics, SessionStore& sessions, CpuWorker& worker,
      const ServerStatus& status);
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  std::size_t body_limit(const Request& head) const override;
  // Answers `request` through `respond` (exactly once, now or later) and counts it in metrics.
  void handle(const Request& request, Responder respond) override;
  // Counts an answer the connection made itself (a 400 for malformed input, say): no route was
  // matched, so it is counted under "unmatched".
  void count_error(int status) override;

  const std::string& container_id() const { return container_id_; }

 private:
  void health(const Request& request, Responder& respond);
  void whoami(const Request& request, Responder& respond);
  void session(const Request& request, Responder& respond);
  void load_test(const Request& request, Responder& respond);
  void api_metrics(const Request& request, Responder& respond);
  void prometheus(const Request& request, Responder& respond);
  // Counts the request against `session_id`, or against a fresh session when the store does not
  // know it (`presented` ids only), and answers.
  void count_session(std::string session_id, bool presented, std::string client_id,
                     Responder respond);
  MetricsGauges gauges() const;
  double uptime_seconds() const;

  const Config& config_;
  Metrics& metrics_;
  SessionStore& sessions_;
  CpuWorker& worker_;
  const ServerStatus& status_;
  std::string container_id_;
  std::string hostname_;
  int64_t pid_;
  std::string whoami_prefix_;  // whoami's body up to the timestamp's value.
  Router router_;
};

}  // namespace tandem
