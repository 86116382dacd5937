#include "app.hpp"

#include <unistd.h>

#include <array>
#include <charconv>
#include <cmath>
#include <memory>
#include <optional>

#include "json_input.hpp"
#include "version.hpp"

namespace tandem {
namespace {

constexpr const char* kSessionCookie = "tandem_session";
constexpr int64_t kMaxIterations = 100000000;

std::string read_hostname() {
  std::array<char, 256> buffer{};
  if (gethostname(buffer.data(), buffer.size() - 1) != 0) return "unknown";
  return buffer.data();
}

int64_t unix_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// The text a clientId is kept as: a string as it is, a number as JSON writes it.
std::optional<std::string> client_id_text(const Json::Value& value) {
  if (value.isString()) return value.asString();
  if (value.isNumeric() && !value.isBool()) return to_json(value);
  return std::nullopt;
}

}  // namespace

App::App(const Config& config, Metrics& metrics, SessionStore& sessions, CpuWorker& worker,
         const ServerStatus& status)
    : config_(config),
      metrics_(metrics),
      sessions_(sessions),
      worker_(worker),
      status_(status),
      container_id_(config.id.empty() ? "app-" + std::to_string(config.port) : config.id),
      hostname_(read_hostname()),
      pid_(static_cast<int64_t>(getpid())) {
  // {"container":...,"hostname":...,"pid":...,"timestamp": in jsoncpp's key order; whoami() adds
  // the number and the closing brace.
  Json::Value fixed(Json::objectValue);
  fixed["container"] = container_id_;
  fixed["hostname"] = hostname_;
  fixed["pid"] = Json::Int64(pid_);
  whoami_prefix_ = to_json(fixed);
  whoami_prefix_.back() = ',';
  whoami_prefix_ += "\"timestamp\":";

  auto bind = [this](void (App::*member)(const Request&, Responder&)) {
    return [this, member](const Request& request, Responder respond) {
      (this->*member)(request, respond);
    };
  };
  router_.add("GET", "/health", bind(&App::health));
  router_.add("GET", "/api/whoami", bind(&App::whoami));
  router_.add("POST", "/api/session", bind(&App::session), kSessionBodyLimit);
  router_.add("GET", "/api/load-test", bind(&App::load_test));
  router_.add("GET", "/api/metrics", bind(&App::api_metrics));
  router_.add("GET", "/metrics", bind(&App::prometheus));
}

std::size_t App::body_limit(const Request& head) const {
  RouteMatch match = router_.match(head.method, head.path());
  return match.status == 200 ? match.max_body_bytes : kUnroutedBodyLimit;
}

void App::handle(const Request& request, Responder respond) {
  RouteMatch match = router_.match(request.method, request.path());
  auto started = request.started;
  // Route names are owned by the router, which outlives every request.
  std::string_view route = match.route;
  Responder counted = [this, route, started, respond = std::move(respond)](Response response) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_.record_request(route, response.status, seconds);
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

void App::count_error(int status) {
  metrics_.bad_request();
  metrics_.record_request("unmatched", status, 0);
}

double App::uptime_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - status_.started).count();
}

MetricsGauges App::gauges() const {
  MetricsGauges gauges;
  gauges.connections_open = status_.connections_open;
  gauges.draining = status_.draining;
  gauges.uptime_seconds = uptime_seconds();
  gauges.sessions = sessions_.stats();
  gauges.session_store_kind = sessions_.kind();
  gauges.session_store_state = sessions_.state();
  gauges.worker = worker_.stats();
  return gauges;
}

void App::health(const Request&, Responder& respond) {
  Json::Value body(Json::objectValue);
  body["status"] = status_.draining ? "draining" : "healthy";
  body["container"] = container_id_;
  body["version"] = kVersion;
  body["uptime"] = uptime_seconds();
  body["connections"] = Json::UInt64(status_.connections_open);
  Json::Value store(Json::objectValue);
  store["kind"] = sessions_.kind();
  store["state"] = sessions_.state();
  body["sessionStore"] = store;
  CpuWorkerStats worker = worker_.stats();
  Json::Value cpu(Json::objectValue);
  cpu["inFlight"] = Json::UInt64(worker.in_flight);
  cpu["capacity"] = Json::UInt64(worker.capacity);
  body["worker"] = cpu;
  respond(Response::json(status_.draining ? 503 : 200, body));
}

void App::whoami(const Request&, Responder& respond) {
  // The hottest route: everything but the timestamp was serialised (by jsoncpp) at start-up.
  Response response;
  response.body.reserve(whoami_prefix_.size() + 24);
  response.body.append(whoami_prefix_);
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, unix_millis());
  response.body.append(digits, end);
  response.body.push_back('}');
  respond(std::move(response));
}

void App::session(const Request& request, Responder& respond) {
  Json::Value input(Json::objectValue);
  if (!request.body.empty()) {
    std::string error;
    if (!parse_json(request.body, input, error)) {
      respond(Response::error(400, "the body is not valid JSON: " + error));
      return;
    }
  }
  if (!input.isObject()) {
    respond(Response::error(400,
                            "the body must be a JSON object like "
                            "{\"clientId\": \"c1\", \"requestNum\": 1}"));
    return;
  }
  std::string client_id;
  if (input.isMember("clientId")) {
    std::optional<std::string> text = client_id_text(input["clientId"]);
    if (!text) {
      respond(Response::error(400, "clientId must be a string or a number"));
      return;
    }
    if (text->size() > kMaxClientIdBytes) {
      respond(Response::error(400, "clientId must be at most " + std::to_string(kMaxClientIdBytes) +
                                       " bytes, not " + std::to_string(text->size())));
      return;
    }
    client_id = std::move(*text);
  }
  if (input.isMember("requestNum")) {
    const Json::Value& number = input["requestNum"];
    if (!number.isUInt64() || number.isBool()) {
      respond(Response::error(400, "requestNum must be a whole number from 0"));
      return;
    }
  }

  // The id a client presents is only a lookup key: the store decides whether it is a session this
  // service issued (count_session). A malformed header is the client's to fix; a malformed cookie
  // is not (it may be another site's), so it is simply not used.
  if (auto cookie = request.cookie(kSessionCookie); cookie && is_valid_session_id(*cookie)) {
    count_session(*cookie, true, std::move(client_id), std::move(respond));
    return;
  }
  if (const std::string* header = request.header("x-session-id"); header != nullptr) {
    if (!is_valid_session_id(*header)) {
      respond(Response::error(400,
                              "X-Session-Id must be 1 to 128 characters of A-Z, a-z, 0-9, "
                              "'_' or '-'"));
      return;
    }
    count_session(*header, true, std::move(client_id), std::move(respond));
    return;
  }
  count_session(new_session_id(), false, std::move(client_id), std::move(respond));
}

void App::count_session(std::string session_id, bool presented, std::string client_id,
                        Responder respond) {
  // A presented id is never created: an id the server did not issue (or that expired) gets a
  // fresh one, so nobody can fix a session id on a victim in advance.
  bool create = !presented;
  auto on_update = [this, session_id, presented, client_id,
                    respond = std::move(respond)](SessionUpdate update) mutable {
    if (!update.ok) {
      Response failure = Response::error(503, "the session store is unavailable: " + update.error);
      failure.headers.emplace_back("Retry-After", "1");
      respond(std::move(failure));
      return;
    }
    if (!update.found) {
      count_session(new_session_id(), false, std::move(client_id), std::move(respond));
      return;
    }
    Json::Value body(Json::objectValue);
    body["sessionId"] = session_id;
    body["container"] = container_id_;
    body["requestCount"] = Json::Int64(update.request_count);
    Response response = Response::json(200, body);
    // The cookie is set when the session is new, and only then: a client keeps it for its
    // browsing session, and the balancer counts these answers to bound how fast one address
    // creates sessions.
    if (!presented) {
      response.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + session_id +
                                                      "; HttpOnly; SameSite=Lax; Path=/");
    }
    response.headers.emplace_back("X-Session-Id", session_id);
    respond(std::move(response));
  };
  sessions_.record_request(session_id, client_id, create, std::move(on_update));
}

void App::load_test(const Request& request, Responder& respond) {
  std::optional<std::string> text = request.query_param("iterations");
  if (!text || text->empty()) {
    respond(Response::error(400, "the query parameter iterations is required (1 to 100000000)"));
    return;
  }
  int64_t iterations = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), iterations);
  if (ec != std::errc{} || end != text->data() + text->size()) {
    respond(Response::error(400, "iterations must be a whole number from 1 to 100000000, not \"" +
                                     text->substr(0, 64) + "\""));
    return;
  }
  if (iterations < 1 || iterations > kMaxIterations) {
    respond(Response::error(
        400, "iterations must be from 1 to 100000000, not " + std::to_string(iterations)));
    return;
  }
  struct Outcome {
    double result = 0;
    double millis = 0;
  };
  auto outcome = std::make_shared<Outcome>();
  // The sum runs on the worker thread; the loop goes on serving meanwhile.
  auto work = [outcome, iterations](const std::atomic<bool>& cancelled) {
    constexpr int64_t kSlice = 1 << 20;  // About 3 ms of work between two looks at `cancelled`.
    auto started = std::chrono::steady_clock::now();
    double result = 0;
    for (int64_t i = 0; i < iterations; ++i) {
      if (i % kSlice == 0 && cancelled.load(std::memory_order_relaxed)) return;
      result += std::sqrt(static_cast<double>(i));
    }
    outcome->result = result;
    outcome->millis =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
  };
  auto shared_respond = std::make_shared<Responder>(std::move(respond));
  auto done = [this, outcome, shared_respond](bool completed) {
    if (!completed) {
      Response failure = Response::error(503, "the server is stopping; retry on another instance");
      failure.headers.emplace_back("Retry-After", "1");
      (*shared_respond)(std::move(failure));
      return;
    }
    Json::Value body(Json::objectValue);
    body["container"] = container_id_;
    body["result"] = outcome->result;
    body["processingTime"] = outcome->millis;
    (*shared_respond)(Response::json(200, body));
  };
  if (!worker_.submit(std::move(work), std::move(done))) {
    CpuWorkerStats stats = worker_.stats();
    Response busy = Response::error(503, "the instance's CPU worker is full (" +
                                             std::to_string(stats.in_flight) +
                                             " requests queued); retry shortly");
    busy.headers.emplace_back("Retry-After", "1");
    (*shared_respond)(std::move(busy));
  }
}

void App::api_metrics(const Request&, Responder& respond) {
  respond(Response::json(200, metrics_.render_json(gauges())));
}

void App::prometheus(const Request&, Responder& respond) {
  Response response;
  response.body = metrics_.render_prometheus(gauges());
  // Prometheus's own exposition format, the one route that is not JSON.
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  respond(std::move(response));
}

}  // namespace tandem
