#include "app/demo_app.hpp"

#include <unistd.h>

#include <array>
#include <charconv>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>

#include "app/sessions/memory_session_store.hpp"
#include "app/sessions/redis_endpoint.hpp"
#include "app/sessions/redis_session_store.hpp"
#include "app/sessions/sentinel_endpoint.hpp"
#include "app/sessions/sentinel_resolver.hpp"
#include "runtime/version.hpp"

namespace tandem {
namespace {

constexpr const char* kSessionCookie = "tandem_session";
constexpr uint64_t kMaxSessions = 100'000'000;
// One session with a full clientId takes about 600 bytes; the floor leaves room for a hundred.
constexpr uint64_t kMinSessionBytes = 64 * 1024;
constexpr uint64_t kMaxSessionBytes = uint64_t{64} * 1024 * 1024 * 1024;
constexpr uint64_t kSweepIntervalMs = 5000;

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

DemoApp::DemoApp(DemoSettings settings) : settings_(std::move(settings)) {}

DemoApp::~DemoApp() = default;

std::string DemoApp::version() const { return kVersion; }

void DemoApp::add_flags(Flags& flags) {
  flags.add_text("session-store", "STORE",
                 "Where sessions live: memory, redis://[[user]:password@]host:port[/db], or "
                 "sentinel://[[user]:password@]host:port[,host:port...]/master-name[/db] (the "
                 "master Redis Sentinel names; the credentials are for the Sentinels and the "
                 "Redis nodes alike; db 0-15; percent-encode special characters in the password)",
                 &settings_.session_store,
                 [](const std::string& text) -> std::optional<std::string> {
                   if (text == "memory" || parse_redis_url(text) || parse_sentinel_url(text)) {
                     return std::nullopt;
                   }
                   return "is not a session store (memory, redis://[[user]:password@]host:port"
                          "[/db], or sentinel://[[user]:password@]host:port[,host:port...]"
                          "/master-name[/db], with ports 1-65535 and db 0-15)";
                 });
  flags.add_count("max-sessions", "N",
                  "Memory store: sessions kept (one-request sessions dropped first, then least "
                  "recent)",
                  &settings_.max_sessions, 1, kMaxSessions);
  flags.add_count("max-session-bytes", "BYTES",
                  "Memory store: bytes of sessions kept, the same way (65536 at least)",
                  &settings_.max_session_bytes, kMinSessionBytes, kMaxSessionBytes);
  flags.show_default("max-session-bytes",
                     std::to_string(settings_.max_session_bytes) + " (64 MiB)");
  flags.add_duration("session-ttl", "Idle time before a session expires (whole seconds)",
                     &settings_.session_ttl, true);
}

void DemoApp::install(Router& router, Services& services) {
  services_ = &services;
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(settings_.session_ttl);
  if (settings_.session_store == "memory") {
    sessions_ = std::make_unique<MemorySessionStore>(
        MemorySessionStore::Limits{settings_.max_sessions, settings_.max_session_bytes}, ttl);
    sweep_timer_ = std::make_unique<uv_timer_t>();
    uv_timer_init(services.loop, sweep_timer_.get());
    sweep_timer_->data = sessions_.get();
    uv_timer_start(
        sweep_timer_.get(),
        [](uv_timer_t* timer) { static_cast<MemorySessionStore*>(timer->data)->sweep(); },
        kSweepIntervalMs, kSweepIntervalMs);
    // Housekeeping must not keep a draining server alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(sweep_timer_.get()));
  } else {
    std::unique_ptr<RedisEndpointSource> source;
    if (auto endpoint = parse_redis_url(settings_.session_store)) {
      source = std::make_unique<FixedEndpointSource>(std::move(*endpoint));
    } else if (auto sentinel = parse_sentinel_url(settings_.session_store)) {
      source =
          std::make_unique<SentinelResolver>(services.loop, std::move(*sentinel), services.log);
    } else {
      throw std::runtime_error("bad session store URL: " + settings_.session_store);
    }
    auto redis =
        std::make_unique<RedisSessionStore>(services.loop, std::move(source), ttl, services.log);
    redis->start();
    sessions_ = std::move(redis);
  }
  add_session_metrics(services.metrics);

  // {"container":...,"hostname":...,"pid":...,"timestamp": in jsoncpp's key order; whoami() adds
  // the number and the closing brace.
  Json::Value fixed(Json::objectValue);
  fixed["container"] = services.instance_id;
  fixed["hostname"] = read_hostname();
  fixed["pid"] = Json::Int64(getpid());
  whoami_prefix_ = to_json(fixed);
  whoami_prefix_.back() = ',';
  whoami_prefix_ += "\"timestamp\":";

  auto bind = [this](void (DemoApp::*member)(const Request&, Responder&)) {
    return [this, member](const Request& request, Responder respond) {
      (this->*member)(request, respond);
    };
  };
  router.add("GET", "/api/whoami", bind(&DemoApp::whoami));
  router.add("POST", "/api/session", bind(&DemoApp::session), kSessionBodyLimit);
  router.add("GET", "/api/load-test", bind(&DemoApp::load_test));
}

void DemoApp::add_session_metrics(MetricsRegistry& metrics) {
  SessionStore* store = sessions_.get();
  auto stat = [store](uint64_t SessionStoreStats::*field) {
    return [store, field] { return static_cast<double>(store->stats().*field); };
  };
  metrics.add_gauge("tandem_sessions_active", "Sessions held by the session store.",
                    stat(&SessionStoreStats::active));
  metrics.add_counter("tandem_sessions_created_total", "Sessions created.",
                      stat(&SessionStoreStats::created));
  metrics.add_counter("tandem_sessions_evicted_total",
                      "Sessions dropped because the store was full.",
                      stat(&SessionStoreStats::evicted));
  metrics.add_counter("tandem_sessions_expired_total",
                      "Sessions dropped because they were idle past the TTL.",
                      stat(&SessionStoreStats::expired));
  metrics.add_counter("tandem_sessions_rejected_total",
                      "Session ids presented that the store did not know (never issued, or "
                      "expired); each got a fresh session.",
                      stat(&SessionStoreStats::rejected));
  metrics.add_gauge("tandem_sessions_bytes",
                    "Bytes the memory store accounts for its sessions (0 for Redis).",
                    stat(&SessionStoreStats::bytes));
  metrics.add_counter("tandem_session_store_errors_total", "Session store operations that failed.",
                      stat(&SessionStoreStats::errors));
  metrics.add_gauge(
      "tandem_session_store_up", "1 when the session store can be used, else 0.",
      [store] { return store->state() == "ok" ? 1.0 : 0.0; }, "store=\"" + store->kind() + "\"");
}

void DemoApp::describe_health(Json::Value& body) const {
  if (!sessions_) return;
  Json::Value store(Json::objectValue);
  store["kind"] = sessions_->kind();
  store["state"] = sessions_->state();
  body["sessionStore"] = store;
}

void DemoApp::stop() {
  if (sessions_) sessions_->close();
  if (sweep_timer_) uv_close(reinterpret_cast<uv_handle_t*>(sweep_timer_.get()), nullptr);
}

void DemoApp::whoami(const Request&, Responder& respond) {
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

void DemoApp::session(const Request& request, Responder& respond) {
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

  const bool secure_cookie = request.forwarded_https();
  // The id a client presents is only a lookup key: the store decides whether it is a session this
  // service issued (count_session). A malformed header is the client's to fix; a malformed cookie
  // is not (it may be another site's), so it is simply not used.
  if (auto cookie = request.cookie(kSessionCookie); cookie && is_valid_session_id(*cookie)) {
    count_session(*cookie, true, secure_cookie, std::move(client_id), std::move(respond));
    return;
  }
  if (const std::string* header = request.header("x-session-id"); header != nullptr) {
    if (!is_valid_session_id(*header)) {
      respond(Response::error(400,
                              "X-Session-Id must be 1 to 128 characters of A-Z, a-z, 0-9, "
                              "'_' or '-'"));
      return;
    }
    count_session(*header, true, secure_cookie, std::move(client_id), std::move(respond));
    return;
  }
  count_session(new_session_id(), false, secure_cookie, std::move(client_id), std::move(respond));
}

void DemoApp::count_session(std::string session_id, bool presented, bool secure_cookie,
                            std::string client_id, Responder respond) {
  // A presented id is never created: an id the server did not issue (or that expired) gets a
  // fresh one, so nobody can fix a session id on a victim in advance.
  bool create = !presented;
  auto on_update = [this, session_id, presented, secure_cookie, client_id,
                    respond = std::move(respond)](SessionUpdate update) mutable {
    if (!update.ok) {
      Response failure = Response::error(503, "the session store is unavailable: " + update.error);
      failure.headers.emplace_back("Retry-After", "1");
      respond(std::move(failure));
      return;
    }
    if (!update.found) {
      count_session(new_session_id(), false, secure_cookie, std::move(client_id),
                    std::move(respond));
      return;
    }
    Json::Value body(Json::objectValue);
    body["sessionId"] = session_id;
    body["container"] = services_->instance_id;
    body["requestCount"] = Json::Int64(update.request_count);
    Response response = Response::json(200, body);
    // The cookie is set when the session is new, and only then: a client keeps it for its
    // browsing session, and the balancer counts these answers to bound how fast one address
    // creates sessions.
    // Over HTTPS it is also Secure: the browser never sends it over plain HTTP, where anyone on
    // the path could read it.
    if (!presented) {
      response.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + session_id +
                                                      "; HttpOnly; SameSite=Lax; Path=/" +
                                                      (secure_cookie ? "; Secure" : ""));
    }
    response.headers.emplace_back("X-Session-Id", session_id);
    respond(std::move(response));
  };
  sessions_->record_request(session_id, client_id, create, std::move(on_update));
}

void DemoApp::load_test(const Request& request, Responder& respond) {
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
    body["container"] = services_->instance_id;
    body["result"] = outcome->result;
    body["processingTime"] = outcome->millis;
    (*shared_respond)(Response::json(200, body));
  };
  if (!services_->worker.submit(std::move(work), std::move(done))) {
    CpuWorkerStats stats = services_->worker.stats();
    Response busy = Response::error(503, "the instance's CPU worker is full (" +
                                             std::to_string(stats.in_flight) +
                                             " requests queued); retry shortly");
    busy.headers.emplace_back("Retry-After", "1");
    (*shared_respond)(std::move(busy));
  }
}

}  // namespace tandem
