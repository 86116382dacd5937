// tandemctl restart ID|all: the roll on this host, one instance at a time: refuse unless another
// is UP, drain, a bounded wait, maint, restart the unit, its own /health, ready, HAProxy's check
// and a request through the frontend; an instance that does not come back stays in maint and
// the roll stops there.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "commands/commands.hpp"
#include "error.hpp"
#include "instance_probe.hpp"
#include "rotation.hpp"
#include "systemd_units.hpp"

namespace tandem::ctl {
namespace {

struct RestartOptions {
  std::string target;  // An id, or "all".
  double drain_s = 10;
  double health_s = 30;
  double ready_s = 30;
  double peer_wait_s = 10;
  int min_up = 1;
  std::string expect_version;
};

// Waits for the instance's own /health to answer 200; returns the version it reports.
std::string wait_healthy(const LocalInstance& instance, double timeout_s) {
  InstanceProbe probe;
  if (poll_until(timeout_s, [&] {
        probe = probe_instance(instance.address, instance.port, 1000);
        return probe.reachable && probe.health_status == 200;
      })) {
    return probe.version;
  }
  throw CtlError(
      instance.id + "'s /health did not answer 200 within " +
          std::to_string(static_cast<int>(timeout_s)) + " s (" +
          (probe.reachable ? "HTTP " + std::to_string(probe.health_status) : probe.error) + ")",
      "journalctl -u " + instance.unit() + " says why");
}

void roll_one(const LocalInstance& instance, const RestartOptions& options,
              const Rotation& rotation, SystemdUnits& units) {
  const std::string& id = instance.id;
  const UnitState before = units.state(instance.unit());
  const std::string old_version = probe_instance(instance.address, instance.port, 1000).version;
  rotation.ensure_others_up(id, options.min_up, options.peer_wait_s);
  rotation.set_state(id, "drain");
  rotation.wait_connections_gone(id, options.drain_s);
  rotation.set_state(id, "maint");
  std::cerr << id << ": restarting " << instance.unit() << std::endl;
  units.restart(instance.unit(), options.health_s);
  const std::string version = wait_healthy(instance, options.health_s);
  const UnitState after = units.state(instance.unit());
  std::cerr << id << ": healthy, version " << (old_version.empty() ? "?" : old_version) << " -> "
            << version << ", pid " << before.main_pid << " -> " << after.main_pid << std::endl;
  if (!options.expect_version.empty() && version != options.expect_version) {
    throw CtlError(id + " runs version " + version + ", not " + options.expect_version,
                   "install the expected package, then tandemctl restart " + id);
  }
  rotation.set_state(id, "ready");
  if (!rotation.wait_up(id, options.ready_s)) {
    throw CtlError(id + ": HAProxy's check did not pass within " +
                       std::to_string(static_cast<int>(options.ready_s)) + " s",
                   "tandemctl status shows the last check's result");
  }
  if (!rotation.wait_traffic(id, options.ready_s)) {
    throw CtlError(id + ": a request through the frontend did not reach it",
                   "check the frontend's address (TANDEM_LB_URL in tandemctl.conf)");
  }
}

int run_restart(const Globals& globals, const RestartOptions& options) {
  const Settings settings = globals.settings();
  if (!settings.systemd || !SystemdUnits::booted()) {
    throw CtlError("restart needs systemd: this host's instances are not systemd units",
                   "restart an instance run by hand the way it was started", kExitUsage);
  }
  std::vector<LocalInstance> targets;
  if (options.target == "all") {
    targets = settings.instances;
    if (targets.empty()) {
      throw CtlError(
          "no instance on this host (" + settings.config_dir.string() + " has no <port>.env)", {},
          kExitUsage);
    }
  } else if (const LocalInstance* instance = settings.find(options.target)) {
    targets.push_back(*instance);
  } else {
    std::string names;
    for (const auto& i : settings.instances) names += (names.empty() ? "" : ", ") + i.id;
    throw CtlError("no instance \"" + options.target + "\" on this host",
                   "this host's instances are: " + (names.empty() ? "none" : names), kExitUsage);
  }
  const Rotation rotation(settings, &std::cerr);
  for (const auto& instance : targets) rotation.server(instance.id);  // All known, or nothing.
  SystemdUnits units;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& instance = targets[i];
    std::cerr << "[" << i + 1 << "/" << targets.size() << "] " << instance.id << " ("
              << instance.unit() << ")" << std::endl;
    try {
      roll_one(instance, options, rotation, units);
    } catch (const CtlError& error) {
      if (error.status() == kExitUsage) throw;
      if (error.status() == kExitRefused) {
        // Nothing was changed; restart has no --force: a roll never empties the backend.
        throw CtlError(error.what(),
                       "bring another instance back first (tandemctl ready ID), then restart",
                       kExitRefused);
      }
      // Out of rotation it stays: the others serve, and nothing else is taken out.
      try {
        rotation.set_state(instance.id, "maint");
      } catch (const CtlError&) {
      }
      throw CtlError(std::string(error.what()) + "; " + instance.id +
                         " stays in maint and the roll stops here",
                     error.hint() + (error.hint().empty() ? "" : "; then ") + "tandemctl restart " +
                         instance.id + " once it is fixed");
    }
  }
  std::cout << "restarted " << targets.size() << " instance(s), one at a time\n";
  return kExitOk;
}

}  // namespace

void add_restart(CLI::App& app, const Globals& globals, Runner& run) {
  auto options = std::make_shared<RestartOptions>();
  CLI::App* command = app.add_subcommand(
      "restart",
      "Restart an instance, or all of this host's one at a time, without losing a request: "
      "drain, wait, maint, restart the unit, its /health, ready, HAProxy's check and a request "
      "through the frontend. One that does not come back stays in maint and the roll stops.");
  command->add_option("ID", options->target, "An instance's id, or all")->required();
  command
      ->add_option("--drain-wait", options->drain_s,
                   "Seconds to wait for its connections to end before maint")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  command
      ->add_option("--health-wait", options->health_s,
                   "Seconds for the unit to restart and its /health to answer 200")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  command
      ->add_option("--ready-wait", options->ready_s,
                   "Seconds for HAProxy's check to pass and a request to reach it")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  command
      ->add_option("--peer-wait", options->peer_wait_s,
                   "Seconds to wait for another instance to be UP before taking one out")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  command->add_option("--min-up", options->min_up, "Other instances that must stay UP")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->add_option("--expect-version", options->expect_version,
                      "Fail (the instance stays in maint) unless it comes back with this version");
  command->callback([&globals, &run, options] {
    run = [&globals, options] { return run_restart(globals, *options); };
  });
}

}  // namespace tandem::ctl
