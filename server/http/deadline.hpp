#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>

namespace tandem {

// One deadline over one libuv timer that its owner initialised (and closes). The timer is moved
// only when a new deadline comes before it fires; a later deadline is picked up when it fires.
// That is one timer-heap update per deadline instead of three per request on a busy keep-alive
// connection.
class Deadline {
 public:
  // `callback` is what the timer calls; it asks expired() whether the deadline has come.
  Deadline(uv_timer_t& timer, uv_timer_cb callback) : timer_(timer), callback_(callback) {}

  // The deadline is `timeout` from now (replacing any earlier one). Returns a libuv error code.
  int arm(std::chrono::milliseconds timeout);
  // No deadline until the next arm().
  void clear() { deadline_ = kNone; }
  // For the timer's callback: true when the deadline has come (it is then cleared); otherwise the
  // timer is restarted for what is left, and false.
  bool expired();

 private:
  static constexpr uint64_t kNone = UINT64_MAX;

  int start(uint64_t delay_ms);

  uv_timer_t& timer_;
  uv_timer_cb callback_;
  uint64_t deadline_ = kNone;  // Loop time (ms) at which the deadline comes.
  uint64_t due_ = kNone;       // Loop time at which the timer fires, if it is running.
};

}  // namespace tandem
