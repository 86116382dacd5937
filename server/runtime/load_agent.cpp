#include "runtime/load_agent.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <memory>

#include "tandem/log.hpp"

namespace tandem {
namespace {

constexpr int kBacklog = 64;

// One agent exchange: the socket and the line being written; freed in the socket's close.
struct Exchange {
  uv_tcp_t socket;
  uv_write_t write;
  std::string line;
};

void close_exchange(Exchange* exchange) {
  uv_close(reinterpret_cast<uv_handle_t*>(&exchange->socket), [](uv_handle_t* handle) {
    std::unique_ptr<Exchange> owned{static_cast<Exchange*>(handle->data)};
  });
}

}  // namespace

std::string agent_weight(uint64_t in_flight, uint64_t capacity) {
  uint64_t free_share = capacity == 0 || in_flight >= capacity
                            ? 0
                            : 100 - (in_flight * 100 + capacity - 1) / capacity;
  return std::to_string(std::max<uint64_t>(free_share, 1)) + "%\n";
}

LoadAgent::LoadAgent(uv_loop_t* loop, Log& log, Report report)
    : loop_(loop), log_(log), report_(std::move(report)) {
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
}

bool LoadAgent::listen(const std::string& bind, uint16_t port) {
  sockaddr_storage address{};
  int result = bind.find(':') != std::string::npos
                   ? uv_ip6_addr(bind.c_str(), port, reinterpret_cast<sockaddr_in6*>(&address))
                   : uv_ip4_addr(bind.c_str(), port, reinterpret_cast<sockaddr_in*>(&address));
  if (result == 0) result = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&address), 0);
  if (result == 0) {
    result = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kBacklog, on_connection);
  }
  if (result != 0) {
    log_.error("agent_listen_failed",
               {{"bind", bind}, {"port", port}, {"error", uv_err_name(result)}});
    return false;
  }
  listening_ = true;
  log_.info("agent_listening", {{"bind", bind}, {"port", port}});
  return true;
}

uint16_t LoadAgent::port() const {
  sockaddr_storage address{};
  int length = sizeof address;
  if (uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
}

void LoadAgent::close() {
  auto* handle = reinterpret_cast<uv_handle_t*>(&listener_);
  if (!uv_is_closing(handle)) uv_close(handle, nullptr);
  listening_ = false;
}

void LoadAgent::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<LoadAgent*>(listener->data);
  if (status < 0) {
    self->log_.warn("agent_accept_failed", {{"error", uv_err_name(status)}});
    return;
  }
  self->answer();
}

void LoadAgent::answer() {
  auto exchange = std::make_unique<Exchange>();
  uv_tcp_init(loop_, &exchange->socket);
  exchange->socket.data = exchange.get();
  Exchange* raw = exchange.release();  // Owned by the socket's close callback from here on.
  int result = uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                         reinterpret_cast<uv_stream_t*>(&raw->socket));
  if (result != 0) {
    close_exchange(raw);
    return;
  }
  raw->line = report_();
  raw->write.data = raw;
  uv_buf_t buffer = uv_buf_init(raw->line.data(), static_cast<unsigned int>(raw->line.size()));
  result =
      uv_write(&raw->write, reinterpret_cast<uv_stream_t*>(&raw->socket), &buffer, 1,
               [](uv_write_t* write, int) { close_exchange(static_cast<Exchange*>(write->data)); });
  if (result != 0) close_exchange(raw);
}

}  // namespace tandem
