#include "runtime/dispatcher.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace tandem {
namespace {

// What the access log says of a request, kept until its answer.
struct AccessLine {
  std::string method;
  std::string target;
  std::string request_id;
};

}  // namespace

std::size_t Dispatcher::body_limit(const Request& head) const {
  RouteMatch match = router_.match(head.method, head.path());
  return match.status == 200 ? match.max_body_bytes : kUnroutedBodyLimit;
}

void Dispatcher::handle(const Request& request, Responder respond) {
  RouteMatch match = router_.match(request.method, request.path());
  auto started = request.started;
  // Route names are owned by the router, which outlives every request.
  std::string_view route = match.route;
  // What the access line needs, copied while the request exists: the answer may come later.
  std::optional<AccessLine> line;
  if (access_log_ != nullptr) {
    const std::string* id = request.header("x-request-id");
    line = AccessLine{request.method, request.target, id != nullptr ? *id : std::string()};
  }
  Responder counted = [this, route, started, line = std::move(line),
                       respond = std::move(respond)](Response response) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_.record_request(route, response.status, seconds);
    if (line && (log_every_ || response.status >= 500 || seconds >= slow_seconds_)) {
      access_log_->info("request", {{"method", line->method},
                                    {"target", line->target},
                                    {"status", response.status},
                                    {"duration_ms", seconds * 1000},
                                    {"request_id", line->request_id}});
    }
    respond(std::move(response));
  };
  if (match.status == 404) {
    counted(Response::error(404, "no route for " + std::string(request.path())));
    return;
  }
  if (match.status == 405) {
    Response response =
        Response::error(405, request.method + " is not allowed on " + std::string(match.route) +
                                 "; allowed: " + std::string(match.allow));
    response.headers.emplace_back("Allow", std::string(match.allow));
    counted(std::move(response));
    return;
  }
  (*match.handler)(request, std::move(counted));
}

void Dispatcher::count_error(int status) {
  metrics_.bad_request();
  metrics_.record_request("unmatched", status, 0);
}

}  // namespace tandem
