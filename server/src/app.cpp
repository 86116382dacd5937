#include "app.hpp"

#include <json/reader.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cmath>
#include <memory>

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

// Parses `text` as a JSON document; on failure fills `error` with the reader's own words.
bool parse_json(const std::string& text, Json::Value& value, std::string& error) {
  Json::CharReaderBuilder builder;
  Json::CharReaderBuilder::strictMode(&builder.settings_);
  builder["allowDroppedNullPlaceholders"] = false;
  std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  std::string errors;
  if (!reader->parse(text.data(), text.data() + text.size(), &value, &errors)) {
    // jsoncpp reports "* Line 1, Column 2\n  Syntax error: ..."; one line is enough for a client.
    for (char& c : errors) {
      if (c == '\n') c = ' ';
    }
    while (!errors.empty() && errors.back() == ' ') errors.pop_back();
    error = errors;
    return false;
  }
  return true;
}

}  // namespace

App::App(const Config& config, Metrics& metrics, SessionStore& sessions, const ServerStatus& status)
    : config_(config),
      metrics_(metrics),
      sessions_(sessions),
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
  router_.add("POST", "/api/session", bind(&App::session));
  router_.add("GET", "/api/load-test", bind(&App::load_test));
  router_.add("GET", "/api/metrics", bind(&App::api_metrics));
  router_.add("GET", "/metrics", bind(&App::prometheus));
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
  if (input.isMember("clientId") && !input["clientId"].isString()) {
    respond(Response::error(400, "clientId must be a string"));
    return;
  }
  if (input.isMember("requestNum") && !input["requestNum"].isNumeric()) {
    respond(Response::error(400, "requestNum must be a number"));
    return;
  }

  std::string session_id;
  if (auto cookie = request.cookie(kSessionCookie); cookie && is_valid_session_id(*cookie)) {
    session_id = *cookie;
  } else if (const std::string* header = request.header("x-session-id"); header != nullptr) {
    if (!is_valid_session_id(*header)) {
      respond(Response::error(400,
                              "X-Session-Id must be 1 to 128 characters of A-Z, a-z, 0-9, "
                              "'_' or '-'"));
      return;
    }
    session_id = *header;
  } else {
    // A cookie that is not one of ours is replaced rather than refused: the client cannot fix it.
    session_id = new_session_id();
  }

  std::string client_id = input.get("clientId", "").asString();
  sessions_.record_request(
      session_id, client_id,
      [this, session_id, respond = std::move(respond)](SessionUpdate update) {
        if (!update.ok) {
          respond(Response::error(503, "the session store is unavailable: " + update.error));
          return;
        }
        Json::Value body(Json::objectValue);
        body["sessionId"] = session_id;
        body["container"] = container_id_;
        body["requestCount"] = Json::Int64(update.request_count);
        Response response = Response::json(200, body);
        response.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + session_id +
                                                        "; HttpOnly; SameSite=Lax; Path=/");
        response.headers.emplace_back("X-Session-Id", session_id);
        respond(std::move(response));
      });
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
  auto started = std::chrono::steady_clock::now();
  double result = 0;
  for (int64_t i = 0; i < iterations; ++i) result += std::sqrt(static_cast<double>(i));
  double millis =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  Json::Value body(Json::objectValue);
  body["container"] = container_id_;
  body["result"] = result;
  body["processingTime"] = millis;
  respond(Response::json(200, body));
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
