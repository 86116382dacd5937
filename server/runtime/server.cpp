#include "runtime/server.hpp"

#include <arpa/inet.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>

#include <json/value.h>

namespace tandem {
namespace {

constexpr int kListenBacklog = 4096;
// Descriptors kept aside for the listener, logs, and whatever the process opens besides clients.
constexpr rlim_t kSpareDescriptors = 64;

uint64_t to_ms(std::chrono::milliseconds duration) {
  return static_cast<uint64_t>(duration.count());
}

template <typename Handle>
uv_handle_t* as_handle(Handle* handle) {
  return reinterpret_cast<uv_handle_t*>(handle);
}

void close_handle(uv_handle_t* handle) {
  if (!uv_is_closing(handle)) uv_close(handle, nullptr);
}

}  // namespace

Server::Server(uv_loop_t* loop, Config config, Log& log, Application& app)
    : loop_(loop),
      config_(std::move(config)),
      limits_{config_.max_header_bytes, config_.max_body_bytes, config_.header_timeout,
              config_.keepalive_timeout},
      log_(log),
      app_(app),
      notifier_(log),
      metrics_(app.version()),
      worker_(loop, config_.worker_queue, log),
      dispatcher_(router_, metrics_, &log, config_.access_log, config_.slow_request),
      services_{loop, config_.instance_id, log, worker_, metrics_} {
  if (config_.agent_port != 0) {
    agent_ = std::make_unique<LoadAgent>(loop_, log_, [this] {
      CpuWorkerStats stats = worker_.stats();
      return agent_weight(stats.in_flight, stats.capacity);
    });
  }
  uv_tcp_init(loop_, &listener_);
  uv_signal_init(loop_, &sigterm_);
  uv_signal_init(loop_, &sigint_);
  uv_timer_init(loop_, &grace_timer_);
  uv_timer_init(loop_, &deadline_timer_);
  uv_timer_init(loop_, &watchdog_timer_);
  uv_idle_init(loop_, &resume_idle_);
  for (uv_handle_t* handle :
       {as_handle(&listener_), as_handle(&sigterm_), as_handle(&sigint_), as_handle(&grace_timer_),
        as_handle(&deadline_timer_), as_handle(&watchdog_timer_), as_handle(&resume_idle_)}) {
    handle->data = this;
  }
}

Server::~Server() = default;

int Server::run() {
  // Each client needs a descriptor; raise the soft limit as far as the hard one allows.
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    rlim_t wanted = static_cast<rlim_t>(config_.max_connections) + kSpareDescriptors;
    if (limit.rlim_cur < wanted) {
      limit.rlim_cur = std::min(wanted, limit.rlim_max);
      setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur < wanted) {
      log_.warn("descriptor_limit", {{"max_connections", Json::UInt64(config_.max_connections)},
                                     {"nofile", Json::UInt64(limit.rlim_cur)}});
    }
  }
  int result = uv_signal_start(&sigterm_, on_signal, SIGTERM);
  if (result == 0) result = uv_signal_start(&sigint_, on_signal, SIGINT);
  std::string install_error;
  if (result == 0) {
    add_status_routes();
    try {
      app_.install(router_, services_);
      installed_ = true;
    } catch (const std::exception& error) {
      install_error = error.what();
    }
  }
  if (result != 0) {
    log_.error("signal_setup_failed", {{"error", uv_err_name(result)}});
    shut_down(1, "signal setup failed");
  } else if (!installed_) {
    log_.error("start_failed", {{"error", install_error}});
    shut_down(1, "the application did not start");
  } else if (!listen()) {
    shut_down(1, "listen failed");
  } else if (agent_ && !agent_->listen(config_.bind, config_.agent_port)) {
    shut_down(1, "agent listen failed");
  } else {
    start_timers();
    notifier_.ready(status_line());
    log_.info("listening", {{"bind", config_.bind},
                            {"port", config_.port},
                            {"application", app_.name()},
                            {"version", app_.version()},
                            {"pid", static_cast<Json::Int64>(uv_os_getpid())}});
  }
  uv_run(loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

bool Server::listen() {
  sockaddr_storage address{};
  int result = 0;
  if (config_.bind.find(':') != std::string::npos) {
    result =
        uv_ip6_addr(config_.bind.c_str(), config_.port, reinterpret_cast<sockaddr_in6*>(&address));
  } else {
    result =
        uv_ip4_addr(config_.bind.c_str(), config_.port, reinterpret_cast<sockaddr_in*>(&address));
  }
  if (result == 0) result = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&address), 0);
  if (result == 0) {
    result = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kListenBacklog, on_connection);
  }
  if (result != 0) {
    log_.error("listen_failed", {{"bind", config_.bind},
                                 {"port", config_.port},
                                 {"error", uv_err_name(result)},
                                 {"message", uv_strerror(result)}});
    return false;
  }
  listening_ = true;
  return true;
}

void Server::start_timers() {
  if (auto interval = notifier_.watchdog_interval()) {
    uv_timer_start(
        &watchdog_timer_,
        [](uv_timer_t* timer) {
          // Pinged from the loop itself: a loop that hangs stops the pings and systemd restarts us.
          static_cast<Server*>(timer->data)->notifier_.watchdog();
        },
        0, to_ms(*interval));
    log_.info("watchdog", {{"interval_ms", Json::UInt64(to_ms(*interval))}});
  }
  // The watchdog's timer may not keep a draining server alive.
  uv_unref(as_handle(&watchdog_timer_));
}

void Server::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<Server*>(listener->data);
  if (status < 0) {
    self->log_.warn("accept_failed", {{"error", uv_err_name(status)}});
    return;
  }
  self->accept_one();
}

void Server::accept_one() {
  bool reject = connections_.size() >= config_.max_connections;
  Connection* connection =
      Connection::accept(reinterpret_cast<uv_stream_t*>(&listener_), *this, reject);
  if (connection == nullptr) return;
  connections_.insert(connection);
  if (reject) {
    metrics_.connection_rejected();
  } else {
    metrics_.connection_accepted();
  }
}

void Server::defer_parsing(Connection& connection) {
  if (deferred_.empty()) uv_idle_start(&resume_idle_, on_idle);
  deferred_.push_back(&connection);
}

void Server::on_idle(uv_idle_t* handle) {
  auto* self = static_cast<Server*>(handle->data);
  // Connections deferred while these run wait for the next turn: each gets one turn at a time.
  std::vector<Connection*> ready;
  ready.swap(self->deferred_);
  for (Connection* connection : ready) connection->resume_parsing();
  if (self->deferred_.empty()) uv_idle_stop(handle);
}

void Server::on_connection_closed(Connection& connection) {
  std::erase(deferred_, &connection);
  connections_.erase(&connection);
  check_drained();
}

void Server::on_signal(uv_signal_t* handle, int signal_number) {
  static_cast<Server*>(handle->data)->handle_signal(signal_number);
}

void Server::handle_signal(int signal_number) {
  if (draining_) {
    log_.warn("forced_stop", {{"signal", strsignal(signal_number)},
                              {"connections_left", Json::UInt64(connections_.size())}});
    shut_down(1, "second signal");
    return;
  }
  begin_drain(signal_number);
}

void Server::begin_drain(int signal_number) {
  draining_ = true;
  notifier_.stopping(status_line());
  log_.info("draining", {{"signal", strsignal(signal_number)},
                         {"grace_ms", Json::UInt64(to_ms(config_.drain_grace))},
                         {"timeout_ms", Json::UInt64(to_ms(config_.drain_timeout))},
                         {"connections", Json::UInt64(connections_.size())}});
  // /health answers 503 from now on; the listener stays open through the grace so that nothing
  // the balancer sends before it sees the 503 is refused.
  uv_timer_start(
      &grace_timer_, [](uv_timer_t* timer) { static_cast<Server*>(timer->data)->end_grace(); },
      to_ms(config_.drain_grace), 0);
  uv_timer_start(
      &deadline_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<Server*>(timer->data);
        self->log_.warn("drain_timeout",
                        {{"connections_left", Json::UInt64(self->connections_.size())}});
        self->shut_down(0, "drain timeout");
      },
      to_ms(config_.drain_timeout), 0);
}

void Server::end_grace() {
  if (listening_) {
    listening_ = false;
    close_handle(as_handle(&listener_));
  }
  log_.info("listener_closed", {{"connections", Json::UInt64(connections_.size())}});
  notifier_.status(status_line());
  // Copy: drain() may close a connection, and its close callback edits the set (later, but the
  // copy keeps this loop independent of that).
  std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (Connection* connection : open) connection->drain();
  check_drained();
}

void Server::check_drained() {
  if (!draining_ || listening_ || shutting_down_ || !connections_.empty()) return;
  log_.info("drained", {});
  shut_down(0, "drained");
}

void Server::shut_down(int exit_code, const char* reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  exit_code_ = exit_code;
  listening_ = false;
  std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (Connection* connection : open) connection->close();
  if (installed_) app_.stop();
  worker_.stop();
  if (agent_) agent_->close();
  for (uv_handle_t* handle :
       {as_handle(&listener_), as_handle(&sigterm_), as_handle(&sigint_), as_handle(&grace_timer_),
        as_handle(&deadline_timer_), as_handle(&watchdog_timer_), as_handle(&resume_idle_)}) {
    close_handle(handle);
  }
  log_.info("stopped", {{"reason", reason}, {"exit_code", exit_code}});
}

std::string Server::status_line() const {
  std::string where = config_.bind + ":" + std::to_string(config_.port);
  if (!draining_) return "serving " + config_.instance_id + " on " + where;
  return "draining " + config_.instance_id + ": " + std::to_string(connections_.size()) +
         " connections open";
}

}  // namespace tandem
