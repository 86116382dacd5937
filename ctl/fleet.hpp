#pragma once

#include <json/value.h>

#include <optional>
#include <string>
#include <vector>

#include "instance_probe.hpp"
#include "runtime_api.hpp"
#include "settings.hpp"
#include "systemd_units.hpp"

namespace tandem::ctl {

// One instance as the operator sees it: what HAProxy says of it, what systemd says of its unit
// (when it runs on this host under systemd), and what it says of itself.
struct InstanceView {
  std::string id;
  int port = 0;                      // 0 for another host's instance.
  std::string address;               // Where it is probed.
  bool local = false;                // One of this host's /etc/tandem/<port>.env.
  std::optional<ServerStat> server;  // None when the backend does not name it.
  std::optional<UnitState> unit;     // None off systemd, or for another host's.
  InstanceProbe probe;               // The later of the two probes.
  unsigned pid = 0;                  // Its unit's main process, or the port's listener.
  InstanceRates rates;
  // Whether it should be serving: its unit enabled (or no unit to ask), so a stopped but
  // disabled instance does not count against `status`'s exit status.
  bool expected() const { return !unit || !unit->loaded || unit->enabled(); }
  bool up() const { return server && server->fully_up(); }
};

struct FleetView {
  std::vector<InstanceView> instances;
  std::optional<HaproxyInfo> haproxy;
  std::optional<BackendStat> backend;
  std::string haproxy_error;  // Why HAProxy could not be asked, with what to do.
  std::string haproxy_hint;
  bool all_up() const;  // Every expected instance fully UP in HAProxy.
};

// Reads the fleet: every server of the backend and every instance of this host, probed twice
// `interval_s` apart (0: once, no rates). `only` restricts it to those ids when not empty.
FleetView read_fleet(const Settings& settings, double interval_s,
                     const std::vector<std::string>& only = {});

// read_fleet in steps, for a caller that probes on its own clock (top keeps the previous tick's
// view instead of sleeping, and shows no unit): what HAProxy says and which instances this host
// has, not yet probed...
FleetView read_topology(const Settings& settings, const std::vector<std::string>& only = {});
// ...what systemd says of this host's instances (their units, their main pids)...
void read_units(FleetView& fleet, const Settings& settings);
// ...then every instance probed once, with the rates since `before` (an earlier probe_fleet of
// the same host; instances matched by id) when given.
void probe_fleet(FleetView& fleet, const FleetView* before = nullptr);

// The same view, for --json and for the roll's scripts.
Json::Value fleet_json(const FleetView& fleet);

// Compact durations and latencies for a terminal: "3m12s", "1.2ms".
std::string format_duration(double seconds);
std::string format_latency(std::optional<double> seconds);

}  // namespace tandem::ctl
