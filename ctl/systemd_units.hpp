#pragma once

#include <string>

struct sd_bus;

namespace tandem::ctl {

// What systemd knows of one unit.
struct UnitState {
  bool loaded = false;          // systemd knows the unit (its file exists).
  std::string active_state;     // active, activating, deactivating, inactive, failed.
  std::string sub_state;        // running, auto-restart, dead, ...
  std::string unit_file_state;  // enabled, disabled, ...
  unsigned main_pid = 0;
  unsigned restarts = 0;  // NRestarts: restarts by systemd (Restart=, the watchdog).
  unsigned long long active_since_us = 0;  // ActiveEnterTimestamp, µs since the epoch.
  bool enabled() const {
    return unit_file_state == "enabled" || unit_file_state == "enabled-runtime";
  }
};

// The system manager over D-Bus (libsystemd's sd-bus): unit states, and restarts waited for.
class SystemdUnits {
 public:
  SystemdUnits();  // Throws CtlError when the system bus cannot be reached.
  ~SystemdUnits();
  SystemdUnits(const SystemdUnits&) = delete;
  SystemdUnits& operator=(const SystemdUnits&) = delete;

  UnitState state(const std::string& unit);
  // systemctl restart, waiting up to timeout_s for its job to end; throws unless it is then
  // active (the new process said READY=1).
  void restart(const std::string& unit, double timeout_s);

  // True when this machine runs systemd as its init (sd_booted).
  static bool booted();

 private:
  std::string unit_path(const std::string& unit);
  sd_bus* bus_ = nullptr;
};

}  // namespace tandem::ctl
