#include "systemd_units.hpp"

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "error.hpp"

namespace tandem::ctl {
namespace {

constexpr const char* kDestination = "org.freedesktop.systemd1";
constexpr const char* kManager = "/org/freedesktop/systemd1";
constexpr const char* kManagerInterface = "org.freedesktop.systemd1.Manager";
constexpr const char* kUnitInterface = "org.freedesktop.systemd1.Unit";
constexpr const char* kServiceInterface = "org.freedesktop.systemd1.Service";

// sd-bus objects released on every path.
struct Message {
  sd_bus_message* message = nullptr;
  ~Message() { sd_bus_message_unref(message); }
};
struct Error {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  ~Error() { sd_bus_error_free(&error); }
};

std::string describe(const Error& error, int code) {
  if (sd_bus_error_is_set(&error.error)) return error.error.message ? error.error.message : "";
  return std::strerror(-code);
}

bool denied(const Error& error, int code) {
  return code == -EACCES || code == -EPERM ||
         sd_bus_error_has_name(&error.error, SD_BUS_ERROR_ACCESS_DENIED) ||
         sd_bus_error_has_name(&error.error, "org.freedesktop.systemd1.AccessDenied") ||
         sd_bus_error_has_name(&error.error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
}

std::string get_string(sd_bus* bus, const std::string& path, const char* interface,
                       const char* property) {
  Error error;
  char* value = nullptr;
  const int code = sd_bus_get_property_string(bus, kDestination, path.c_str(), interface, property,
                                              &error.error, &value);
  if (code < 0) return {};
  std::string result = value ? value : "";
  free(value);
  return result;
}

template <typename T>
T get_trivial(sd_bus* bus, const std::string& path, const char* interface, const char* property,
              char type) {
  Error error;
  T value{};
  if (sd_bus_get_property_trivial(bus, kDestination, path.c_str(), interface, property,
                                  &error.error, type, &value) < 0) {
    return T{};
  }
  return value;
}

}  // namespace

bool SystemdUnits::booted() { return sd_booted() > 0; }

SystemdUnits::SystemdUnits() {
  const int code = sd_bus_open_system(&bus_);
  if (code < 0) {
    throw CtlError(std::string("cannot reach systemd on the system bus: ") + std::strerror(-code),
                   "is this host run by systemd? Instances run by hand have no unit state");
  }
}

SystemdUnits::~SystemdUnits() { sd_bus_flush_close_unref(bus_); }

std::string SystemdUnits::unit_path(const std::string& unit) {
  Error error;
  Message reply;
  const int code = sd_bus_call_method(bus_, kDestination, kManager, kManagerInterface, "LoadUnit",
                                      &error.error, &reply.message, "s", unit.c_str());
  if (code < 0) throw CtlError("systemd: loading " + unit + ": " + describe(error, code));
  const char* path = nullptr;
  if (sd_bus_message_read(reply.message, "o", &path) < 0 || !path) {
    throw CtlError("systemd: no object for " + unit);
  }
  return path;
}

UnitState SystemdUnits::state(const std::string& unit) {
  UnitState state;
  const std::string path = unit_path(unit);
  state.loaded = get_string(bus_, path, kUnitInterface, "LoadState") == "loaded";
  state.active_state = get_string(bus_, path, kUnitInterface, "ActiveState");
  state.sub_state = get_string(bus_, path, kUnitInterface, "SubState");
  state.unit_file_state = get_string(bus_, path, kUnitInterface, "UnitFileState");
  state.active_since_us =
      get_trivial<uint64_t>(bus_, path, kUnitInterface, "ActiveEnterTimestamp", 't');
  state.main_pid = get_trivial<uint32_t>(bus_, path, kServiceInterface, "MainPID", 'u');
  state.restarts = get_trivial<uint32_t>(bus_, path, kServiceInterface, "NRestarts", 'u');
  return state;
}

void SystemdUnits::restart(const std::string& unit, double timeout_s) {
  const std::string path = unit_path(unit);
  {
    Error error;
    Message reply;
    const int code =
        sd_bus_call_method(bus_, kDestination, kManager, kManagerInterface, "RestartUnit",
                           &error.error, &reply.message, "ss", unit.c_str(), "replace");
    if (code < 0) {
      if (denied(error, code)) {
        throw CtlError("systemd refused to restart " + unit + ": permission denied",
                       "run tandemctl as root (sudo tandemctl ...)");
      }
      throw CtlError("systemd: restarting " + unit + ": " + describe(error, code));
    }
  }
  // The unit's Job property is (id, path), id 0 once no job is pending: the restart job of a
  // Type=notify unit ends when the new process has said READY=1, or has failed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    Error error;
    Message reply;
    uint32_t job = 0;
    const int code = sd_bus_get_property(bus_, kDestination, path.c_str(), kUnitInterface, "Job",
                                         &error.error, &reply.message, "(uo)");
    if (code >= 0) {
      const char* job_path = nullptr;
      if (sd_bus_message_read(reply.message, "(uo)", &job, &job_path) < 0) job = 0;
    }
    if (job == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw CtlError(unit + " did not finish restarting within " +
                         std::to_string(static_cast<int>(timeout_s)) + " s",
                     "journalctl -u " + unit + " says why");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const UnitState after = state(unit);
  if (after.active_state != "active") {
    throw CtlError(
        unit + " is " + after.active_state + " (" + after.sub_state + ") after its restart",
        "journalctl -u " + unit + " says why");
  }
}

}  // namespace tandem::ctl
