#include "server.hpp"

#include <arpa/inet.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>

#include "memory_session_store.hpp"
#include "redis_session_store.hpp"
#include "version.hpp"

namespace tandem {
namespace {

constexpr int kListenBacklog = 4096;
constexpr uint64_t kSweepIntervalMs = 5000;
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

Server::Server(uv_loop_t* loop, Config config, Log& log)
    : loop_(loop),
      config_(std::move(config)),
      log_(log),
      notifier_(log),
      metrics_(kVersion),
      worker_(loop, config_.worker_queue, log) {
  if (config_.id.empty()) config_.id = "app-" + std::to_string(config_.port);
  if (config_.session_store == "memory") {
    auto memory = std::make_unique<MemorySessionStore>(
        MemorySessionStore::Limits{config_.max_sessions, config_.max_session_bytes},
        config_.session_ttl);
    memory_sessions_ = memory.get();
    sessions_ = std::move(memory);
  } else {
    std::optional<RedisEndpoint> endpoint = parse_redis_url(config_.session_store);
    if (!endpoint) throw std::runtime_error("bad session store URL: " + config_.session_store);
    auto redis = std::make_unique<RedisSessionStore>(loop_, *endpoint, config_.session_ttl, log_);
    redis_sessions_ = redis.get();
    sessions_ = std::move(redis);
  }
  app_ = std::make_unique<App>(config_, metrics_, *sessions_, worker_, status_);
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
  uv_timer_init(loop_, &sweep_timer_);
  uv_idle_init(loop_, &resume_idle_);
  for (uv_handle_t* handle :
       {as_handle(&listener_), as_handle(&sigterm_), as_handle(&sigint_), as_handle(&grace_timer_),
        as_handle(&deadline_timer_), as_handle(&watchdog_timer_), as_handle(&sweep_timer_),
        as_handle(&resume_idle_)}) {
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
  if (result != 0) {
    log_.error("signal_setup_failed", {{"error", uv_err_name(result)}});
    shut_down(1, "signal setup failed");
  } else if (!listen()) {
    shut_down(1, "listen failed");
  } else if (agent_ && !agent_->listen(config_.bind, config_.agent_port)) {
    shut_down(1, "agent listen failed");
  } else {
    start_timers();
    if (redis_sessions_ != nullptr) redis_sessions_->start();
    notifier_.ready(status_line());
    log_.info("listening", {{"bind", config_.bind},
                            {"port", config_.port},
                            {"version", kVersion},
                            {"pid", static_cast<Json::Int64>(uv_os_getpid())},
                            {"session_store", sessions_->kind()}});
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
  uv_timer_start(
      &sweep_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<Server*>(timer->data);
        if (self->memory_sessions_ != nullptr) self->memory_sessions_->sweep();
      },
      kSweepIntervalMs, kSweepIntervalMs);
  // Neither timer may keep a draining server alive.
  uv_unref(as_handle(&watchdog_timer_));
  uv_unref(as_handle(&sweep_timer_));
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
  status_.connections_open = connections_.size();
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
  status_.connections_open = connections_.size();
  check_drained();
}

void Server::on_signal(uv_signal_t* handle, int signal_number) {
  static_cast<Server*>(handle->data)->handle_signal(signal_number);
}

void Server::handle_signal(int signal_number) {
  if (status_.draining) {
    log_.warn("forced_stop", {{"signal", strsignal(signal_number)},
                              {"connections_left", Json::UInt64(connections_.size())}});
    shut_down(1, "second signal");
    return;
  }
  begin_drain(signal_number);
}

void Server::begin_drain(int signal_number) {
  status_.draining = true;
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
  if (!status_.draining || listening_ || shutting_down_ || !connections_.empty()) return;
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
  sessions_->close();
  worker_.stop();
  if (agent_) agent_->close();
  for (uv_handle_t* handle :
       {as_handle(&listener_), as_handle(&sigterm_), as_handle(&sigint_), as_handle(&grace_timer_),
        as_handle(&deadline_timer_), as_handle(&watchdog_timer_), as_handle(&sweep_timer_),
        as_handle(&resume_idle_)}) {
    close_handle(handle);
  }
  log_.info("stopped", {{"reason", reason}, {"exit_code", exit_code}});
}

std::string Server::status_line() const {
  std::string where = config_.bind + ":" + std::to_string(config_.port);
  if (!status_.draining) return "serving " + config_.id + " on " + where;
  return "draining " + config_.id + ": " + std::to_string(connections_.size()) +
         " connections open";
}

}  // namespace tandem
