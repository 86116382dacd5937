#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <thread>
#include <vector>

#include "runtime_api.hpp"
#include "settings.hpp"

namespace tandem::ctl {

// Polls `done` every 200 ms until it holds or timeout_s has passed; the last look is taken at
// or after the deadline, so a bound of 0 still looks once.
template <typename Predicate>
bool poll_until(double timeout_s, Predicate done) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Taking one server of the backend out of rotation and back through HAProxy's runtime API, with
// the roll's safety; the steps `tandemctl drain|ready|maint|restart` and the Ansible roll share.
class Rotation {
 public:
  // `progress` receives one line per step (stderr for people; nothing is printed when null).
  Rotation(const Settings& settings, std::ostream* progress);

  // The server of that id; throws CtlError (usage) naming the backend's servers when unknown.
  ServerStat server(const std::string& id) const;
  std::vector<ServerStat> servers() const;

  // Refuses (CtlError, kExitRefused) unless at least min_up servers other than `id` are fully
  // UP, waiting up to peer_wait_s for one that is on its way back ("UP 1/2").
  void ensure_others_up(const std::string& id, int min_up, double peer_wait_s) const;

  // set server <backend>/<id> state <state>: ready, drain or maint.
  void set_state(const std::string& id, const std::string& state) const;

  // Waits until HAProxy counts no connection on it; false when timeout_s passed first.
  bool wait_connections_gone(const std::string& id, double timeout_s) const;
  // Waits until it is fully UP (its first check since ready has passed); false on timeout.
  bool wait_up(const std::string& id, double timeout_s) const;
  // Waits until a request through this host's frontend with its stickiness cookie is answered
  // by it (X-Container-Id); false on timeout.
  bool wait_traffic(const std::string& id, double timeout_s) const;

 private:
  void say(const std::string& line) const;

  Settings settings_;
  RuntimeApi api_;
  std::ostream* progress_;
};

}  // namespace tandem::ctl
