#include "http/deadline.hpp"

namespace tandem {

int Deadline::arm(std::chrono::milliseconds timeout) {
  uint64_t now = uv_now(timer_.loop);
  deadline_ = now + static_cast<uint64_t>(timeout.count());
  if (due_ != kNone && due_ <= deadline_) return 0;
  return start(deadline_ - now);
}

bool Deadline::expired() {
  due_ = kNone;
  if (deadline_ == kNone) return false;
  uint64_t now = uv_now(timer_.loop);
  if (now < deadline_) {
    start(deadline_ - now);
    return false;
  }
  deadline_ = kNone;
  return true;
}

int Deadline::start(uint64_t delay_ms) {
  int result = uv_timer_start(&timer_, callback_, delay_ms, 0);
  if (result == 0) due_ = uv_now(timer_.loop) + delay_ms;
  return result;
}

}  // namespace tandem
