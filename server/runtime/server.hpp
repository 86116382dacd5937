#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "http/connection.hpp"
#include "http/http_date.hpp"
#include "runtime/config.hpp"
#include "runtime/dispatcher.hpp"
#include "runtime/load_agent.hpp"
#include "runtime/metrics.hpp"
#include "runtime/systemd_notifier.hpp"
#include "tandem/application.hpp"
#include "tandem/cpu_worker.hpp"
#include "tandem/log.hpp"
#include "tandem/router.hpp"

namespace tandem {

// One instance on one libuv loop: the listener, the connections, the signals, the systemd
// notifications, the routes every instance answers (/health, /metrics, /api/metrics) and the
// drain protocol (docs/design.md, "Lifecycle"). The application's routes are on the same router.
class Server final : public ConnectionHost {
 public:
  Server(uv_loop_t* loop, Config config, Log& log, Application& app);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() override;

  // Installs the application, listens, tells systemd it is ready, and runs the loop until the
  // server has stopped. Returns the process's exit code: 0 after a completed drain, 1 after a
  // forced stop or a start failure.
  int run();

  // ConnectionHost.
  const ConnectionLimits& limits() const override { return limits_; }
  RequestHandler& handler() override { return dispatcher_; }
  Log& log() override { return log_; }
  const std::string& instance_id() const override { return config_.instance_id; }
  bool draining() const override { return draining_; }
  const std::string& date() override { return date_.now(); }
  void defer_parsing(Connection& connection) override;
  void on_connection_closed(Connection& connection) override;

 private:
  bool listen();
  void start_timers();
  void add_status_routes();
  void accept_one();
  void handle_signal(int signal_number);
  void begin_drain(int signal_number);
  void end_grace();
  void check_drained();
  // Closes every handle so uv_run returns; `exit_code` is what run() will return.
  void shut_down(int exit_code, const char* reason);
  std::string status_line() const;
  MetricsGauges gauges() const;
  double uptime_seconds() const;

  static void on_connection(uv_stream_t* listener, int status);
  static void on_signal(uv_signal_t* handle, int signal_number);
  static void on_idle(uv_idle_t* handle);

  uv_loop_t* loop_;
  Config config_;
  ConnectionLimits limits_;
  Log& log_;
  Application& app_;
  SystemdNotifier notifier_;
  Metrics metrics_;
  CpuWorker worker_;
  Router router_;
  Dispatcher dispatcher_;
  Services services_;
  std::unique_ptr<LoadAgent> agent_;  // With --agent-port only.
  HttpDate date_;
  std::unordered_set<Connection*> connections_;
  std::vector<Connection*> deferred_;  // Waiting for resume_parsing(), in order.
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool draining_ = false;
  bool installed_ = false;

  uv_tcp_t listener_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_timer_t grace_timer_;     // End of --drain-grace.
  uv_timer_t deadline_timer_;  // --drain-timeout after the signal.
  uv_timer_t watchdog_timer_;  // Half of WatchdogSec.
  uv_idle_t resume_idle_;      // Runs deferred_ on the next turn of the loop.
  bool listening_ = false;
  bool shutting_down_ = false;
  int exit_code_ = 0;
};

}  // namespace tandem
