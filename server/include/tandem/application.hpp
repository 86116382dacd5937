#pragma once

#include <json/value.h>
#include <uv.h>

#include <string>

#include "tandem/cpu_worker.hpp"
#include "tandem/flags.hpp"
#include "tandem/json_input.hpp"
#include "tandem/log.hpp"
#include "tandem/metrics_registry.hpp"
#include "tandem/request.hpp"
#include "tandem/response.hpp"
#include "tandem/router.hpp"

namespace tandem {

// What the runtime lends an application for its lifetime (from install() until stop()).
struct Services {
  uv_loop_t* loop;                 // The instance's one event loop: handlers run on it.
  const std::string& instance_id;  // --id: HAProxy's server name for this instance.
  Log& log;                        // JSON lines on stdout, tagged with the instance id.
  CpuWorker& worker;               // Where CPU-heavy work runs, off the loop.
  MetricsRegistry& metrics;        // The application's own metrics.
};

// An application served by tandem. Its main() hands it to tandem::run(), which owns everything a
// balancer and systemd rely on: the flags every instance has, listening, HTTP/1.1, /health,
// /metrics and /api/metrics, the systemd notifications and watchdog, and the drain on SIGTERM.
// The application brings its routes, its state and its own flags.
class Application {
 public:
  virtual ~Application() = default;

  // The program's name (--help, --version, error lines) and version (/health, tandem_build_info).
  virtual std::string name() const = 0;
  virtual std::string version() const = 0;
  // What the program is, in one line, for --help.
  virtual std::string description() const = 0;
  // Declares the application's own flags, on the parser the runtime's flags are on.
  virtual void add_flags(Flags& flags) { (void)flags; }
  // The flags are read: registers the routes and sets up the application's state on the loop.
  // Called once, before the instance listens; an exception here is a failed start (exit 1).
  virtual void install(Router& router, Services& services) = 0;
  // Adds the application's fields to the /health answer (the runtime writes status, container,
  // version, uptime, connections and worker).
  virtual void describe_health(Json::Value& body) const { (void)body; }
  // The instance is shutting down: closes every handle install() opened on the loop.
  virtual void stop() {}
};

// Runs `app` as one instance: reads the flags (the runtime's and the application's), listens,
// serves until SIGTERM or SIGINT, drains, and returns the process's exit code: 0 after a drain or
// --help/--version, 1 after a failed start or a forced stop, 2 after a bad flag.
int run(Application& app, int argc, const char* const* argv);

}  // namespace tandem
