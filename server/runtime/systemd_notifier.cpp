#include "runtime/systemd_notifier.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "tandem/log.hpp"

namespace tandem {

SystemdNotifier::SystemdNotifier(Log& log) : log_(log) {}

void SystemdNotifier::ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }

void SystemdNotifier::status(const std::string& status) { send("STATUS=" + status); }

void SystemdNotifier::stopping(const std::string& status) { send("STOPPING=1\nSTATUS=" + status); }

void SystemdNotifier::watchdog() { send("WATCHDOG=1"); }

std::optional<std::chrono::milliseconds> SystemdNotifier::watchdog_interval() const {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  // Half the deadline, as sd_watchdog_enabled(3) recommends, so one late tick is not fatal.
  return std::chrono::milliseconds(std::max<uint64_t>(usec / 2000, 1));
}

void SystemdNotifier::send(const std::string& message) {
  int result = sd_notify(0, message.c_str());
  // One warning is enough: a broken notify socket does not get better by logging each ping.
  if (result < 0 && !failed_once_) {
    failed_once_ = true;
    log_.warn("sd_notify_failed", {{"error", std::strerror(-result)}});
  }
}

}  // namespace tandem
