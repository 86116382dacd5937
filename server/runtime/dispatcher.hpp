#pragma once

#include <chrono>
#include <cstddef>

#include "http/request_handler.hpp"
#include "runtime/config.hpp"
#include "runtime/metrics.hpp"
#include "tandem/log.hpp"
#include "tandem/router.hpp"

namespace tandem {

// What the connections hand requests to: finds the route (the runtime's and the application's
// are on one router), counts every answer by route and status with its latency, logs it when
// there is an access log, and answers 404 and 405 itself.
class Dispatcher final : public RequestHandler {
 public:
  // A request for a path or method with no route may carry this much, so that it is answered
  // 404 or 405 rather than refused for its size.
  static constexpr std::size_t kUnroutedBodyLimit = 4096;

  // With `access_log`, one line per answer `which` selects (every one, or a 5xx or one at least
  // `slow`): method, target, status, duration and the request id HAProxy sent (X-Request-ID),
  // which joins the balancer's log line to the instance's.
  Dispatcher(const Router& router, Metrics& metrics, Log* access_log = nullptr,
             AccessLog which = AccessLog::kAll,
             std::chrono::milliseconds slow = std::chrono::milliseconds(1000))
      : router_(router),
        metrics_(metrics),
        access_log_(which == AccessLog::kOff ? nullptr : access_log),
        log_every_(which == AccessLog::kAll),
        slow_seconds_(std::chrono::duration<double>(slow).count()) {}

  std::size_t body_limit(const Request& head) const override;
  void handle(const Request& request, Responder respond) override;
  // Counted under the route "unmatched", as no route was found for it.
  void count_error(int status) override;

 private:
  const Router& router_;
  Metrics& metrics_;
  Log* access_log_;
  bool log_every_;
  double slow_seconds_;
};

}  // namespace tandem
