#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace tandem {

class Log;

// HAProxy's agent check (`agent-check agent-port N`): on each connection the agent writes one
// line and closes, and HAProxy reads it as the server's weight ("75%"). The line comes from
// `report`, so the balancer learns how busy the instance is (its CPU worker's queue) between
// health checks and sends new, cookieless requests elsewhere while it is busy. Off unless a port
// is given (--agent-port).
class LoadAgent {
 public:
  using Report = std::function<std::string()>;

  LoadAgent(uv_loop_t* loop, Log& log, Report report);
  LoadAgent(const LoadAgent&) = delete;
  LoadAgent& operator=(const LoadAgent&) = delete;

  // Listens on bind:port; false (logged) when it cannot.
  bool listen(const std::string& bind, uint16_t port);
  // The port it listens on (the one the kernel chose, when listen() was given 0).
  uint16_t port() const;
  // Stops listening; the agent must outlive the loop turn that runs the close callback.
  void close();

 private:
  static void on_connection(uv_stream_t* listener, int status);
  void answer();

  uv_loop_t* loop_;
  Log& log_;
  Report report_;
  uv_tcp_t listener_;
  bool listening_ = false;
};

// The agent's line for a worker with `in_flight` of `capacity` slots taken: the share of the
// worker still free as a weight, from 100% (idle) down to 1% (full: still a valid weight, so
// that when every instance is full they share the traffic evenly again).
std::string agent_weight(uint64_t in_flight, uint64_t capacity);

}  // namespace tandem
