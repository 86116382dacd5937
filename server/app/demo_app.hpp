#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "app/sessions/session_store.hpp"
#include "tandem/application.hpp"

namespace tandem {

// The demo's own settings: where its sessions live and how many it keeps.
struct DemoSettings {
  std::string session_store = "memory";                // memory | redis://... | sentinel://...
  std::size_t max_sessions = 100000;                   // Memory store: count bound.
  std::size_t max_session_bytes = 64 * 1024 * 1024;    // Memory store: byte bound.
  std::chrono::milliseconds session_ttl{1800 * 1000};  // Idle time before a session expires.
};

// tandem-server's application: who answered (GET /api/whoami), a per-client session counter
// (POST /api/session, in memory or in Redis), and CPU-bound work on the worker thread
// (GET /api/load-test). It knows nothing of sockets, drains or health checks: the runtime does.
class DemoApp final : public Application {
 public:
  // The body of POST /api/session is at most this long: a clientId of 256 bytes, escaped, plus
  // the requestNum and room for whitespace.
  static constexpr std::size_t kSessionBodyLimit = 4096;
  static constexpr std::size_t kMaxClientIdBytes = 256;
  static constexpr int64_t kMaxIterations = 100000000;

  explicit DemoApp(DemoSettings settings = {});
  ~DemoApp() override;
  DemoApp(const DemoApp&) = delete;
  DemoApp& operator=(const DemoApp&) = delete;

  std::string name() const override { return "tandem-server"; }
  std::string version() const override;
  std::string description() const override {
    return "One tandem HTTP app server instance (run several behind HAProxy).";
  }
  void add_flags(Flags& flags) override;
  void install(Router& router, Services& services) override;
  void describe_health(Json::Value& body) const override;
  void stop() override;

  const DemoSettings& settings() const { return settings_; }
  // The store install() made, for tests; null before.
  SessionStore* sessions() { return sessions_.get(); }

 private:
  void whoami(const Request& request, Responder& respond);
  void session(const Request& request, Responder& respond);
  void load_test(const Request& request, Responder& respond);
  // Counts the request against `session_id`, or against a fresh session when the store does not
  // know it (`presented` ids only), and answers; a new session's cookie is Secure when
  // `secure_cookie` (the client came over HTTPS).
  void count_session(std::string session_id, bool presented, bool secure_cookie,
                     std::string client_id, Responder respond);
  void add_session_metrics(MetricsRegistry& metrics);

  DemoSettings settings_;
  Services* services_ = nullptr;
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<uv_timer_t> sweep_timer_;  // Expires idle sessions of the memory store.
  std::string whoami_prefix_;                // whoami's body up to the timestamp's value.
};

}  // namespace tandem
