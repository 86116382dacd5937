#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "app.hpp"
#include "config.hpp"
#include "connection.hpp"
#include "cpu_worker.hpp"
#include "http_date.hpp"
#include "load_agent.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "session_store.hpp"
#include "systemd_notifier.hpp"

namespace tandem {

class MemorySessionStore;
class RedisSessionStore;

// One tandem-server instance on one libuv loop: the listener, the connections, the signals, the
// systemd notifications and the drain protocol of DESIGN.md.
class Server final : public ConnectionHost {
 public:
  Server(uv_loop_t* loop, Config config, Log& log);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() override;

  // Listens, tells systemd it is ready, and runs the loop until the server has stopped. Returns
  // the process's exit code: 0 after a completed drain, 1 after a forced stop or a start failure.
  int run();

  // ConnectionHost.
  const Config& config() const override { return config_; }
  RequestHandler& handler() override { return *app_; }
  Log& log() override { return log_; }
  const std::string& instance_id() const override { return config_.id; }
  bool draining() const override { return status_.draining; }
  const std::string& date() override { return date_.now(); }
  void defer_parsing(Connection& connection) override;
  void on_connection_closed(Connection& connection) override;

 private:
  bool listen();
  void start_timers();
  void accept_one();
  void handle_signal(int signal_number);
  void begin_drain(int signal_number);
  void end_grace();
  void check_drained();
  // Closes every handle so uv_run returns; `exit_code` is what run() will return.
  void shut_down(int exit_code, const char* reason);
  std::string status_line() const;

  static void on_connection(uv_stream_t* listener, int status);
  static void on_idle(uv_idle_t* handle);
  static void on_signal(uv_signal_t* handle, int signal_number);

  uv_loop_t* loop_;
  Config config_;
  Log& log_;
  SystemdNotifier notifier_;
  Metrics metrics_;
  std::unique_ptr<SessionStore> sessions_;
  MemorySessionStore* memory_sessions_ = nullptr;  // Set when sessions_ is the memory store.
  RedisSessionStore* redis_sessions_ = nullptr;    // Set when sessions_ is the Redis store.
  ServerStatus status_;
  CpuWorker worker_;
  std::unique_ptr<App> app_;
  std::unique_ptr<LoadAgent> agent_;  // With --agent-port only.
  HttpDate date_;
  std::unordered_set<Connection*> connections_;
  std::vector<Connection*> deferred_;  // Waiting for resume_parsing(), in order.

  uv_tcp_t listener_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_timer_t grace_timer_;     // End of --drain-grace.
  uv_timer_t deadline_timer_;  // --drain-timeout after the signal.
  uv_timer_t watchdog_timer_;  // Half of WatchdogSec.
  uv_timer_t sweep_timer_;     // Expires idle sessions.
  uv_idle_t resume_idle_;      // Runs deferred_ on the next turn of the loop.
  bool listening_ = false;
  bool shutting_down_ = false;
  int exit_code_ = 0;
};

}  // namespace tandem
