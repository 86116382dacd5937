#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace tandem {

class Log;

// Tells systemd about the service's state through sd_notify. Outside systemd (no NOTIFY_SOCKET)
// every call is a no-op, so the server runs the same way from a shell.
class SystemdNotifier {
 public:
  explicit SystemdNotifier(Log& log);

  void ready(const std::string& status);     // READY=1 and STATUS=.
  void status(const std::string& status);    // STATUS=.
  void stopping(const std::string& status);  // STOPPING=1 and STATUS=.
  void watchdog();                           // WATCHDOG=1.
  // How often to ping the watchdog (half of WatchdogSec), or nullopt when it is off.
  std::optional<std::chrono::milliseconds> watchdog_interval() const;

 private:
  void send(const std::string& message);

  Log& log_;
  bool failed_once_ = false;
};

}  // namespace tandem
