#include "fleet.hpp"

#include <json/json.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <thread>

#include "error.hpp"
#include "listening_pid.hpp"

namespace tandem::ctl {
namespace {

constexpr int kProbeTimeoutMs = 1000;

// host and port of HAProxy's addr column ("127.0.0.1:3001", "[::1]:3001").
bool split_address(const std::string& address, std::string& host, int& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  port = std::atoi(address.c_str() + colon + 1);
  return !host.empty() && port > 0;
}

bool wanted(const std::vector<std::string>& only, const std::string& id) {
  return only.empty() || std::find(only.begin(), only.end(), id) != only.end();
}

}  // namespace

bool FleetView::all_up() const {
  if (!backend) return false;
  return std::all_of(instances.begin(), instances.end(),
                     [](const InstanceView& i) { return !i.expected() || i.up(); });
}

FleetView read_topology(const Settings& settings, const std::vector<std::string>& only) {
  FleetView fleet;
  try {
    RuntimeApi api(settings.socket);
    fleet.backend = api.backend(settings.backend);
    fleet.haproxy = api.info();
  } catch (const CtlError& error) {
    if (error.status() == kExitUsage) throw;
    fleet.haproxy_error = error.what();
    fleet.haproxy_hint = error.hint();
  }
  // This host's instances first, by port; then the backend's other servers.
  for (const auto& local : settings.instances) {
    if (!wanted(only, local.id)) continue;
    InstanceView view;
    view.id = local.id;
    view.port = local.port;
    view.address = local.address;
    view.local = true;
    fleet.instances.push_back(std::move(view));
  }
  if (fleet.backend) {
    for (const auto& server : fleet.backend->servers) {
      auto known = std::find_if(fleet.instances.begin(), fleet.instances.end(),
                                [&](const InstanceView& i) { return i.id == server.name; });
      if (known != fleet.instances.end()) {
        known->server = server;
        continue;
      }
      if (!wanted(only, server.name)) continue;
      InstanceView view;
      view.id = server.name;
      view.server = server;
      split_address(server.address, view.address, view.port);
      fleet.instances.push_back(std::move(view));
    }
  }
  for (const auto& id : only) {
    if (std::none_of(fleet.instances.begin(), fleet.instances.end(),
                     [&](const InstanceView& i) { return i.id == id; })) {
      throw CtlError("no instance \"" + id + "\" on this host nor in HAProxy's backend",
                     "tandemctl status lists the instances", kExitUsage);
    }
  }
  return fleet;
}

void read_units(FleetView& fleet, const Settings& settings) {
  if (settings.systemd) {
    try {
      SystemdUnits units;
      for (auto& view : fleet.instances) {
        if (view.local) view.unit = units.state(unit_name(view.port));
      }
    } catch (const CtlError&) {
      // No system bus: the instances are shown without their units' state.
    }
  }
  for (auto& view : fleet.instances) {
    if (view.unit && view.unit->loaded) {
      view.pid = view.unit->main_pid;
    } else if (view.local) {
      view.pid = listening_pid(view.port);
    }
  }
}

void probe_fleet(FleetView& fleet, const FleetView* before) {
  // All at once: a hung instance then costs one probe timeout per tick, not one per instance,
  // and the instances' rates cover the same moments.
  std::vector<std::future<InstanceProbe>> probes;
  for (const auto& view : fleet.instances) {
    probes.push_back(
        std::async(std::launch::async, probe_instance, view.address, view.port, kProbeTimeoutMs));
  }
  for (std::size_t i = 0; i < fleet.instances.size(); ++i) {
    auto& view = fleet.instances[i];
    view.probe = probes[i].get();
    view.rates = {};
    if (!before) continue;
    auto earlier = std::find_if(before->instances.begin(), before->instances.end(),
                                [&](const InstanceView& e) { return e.id == view.id; });
    if (earlier != before->instances.end()) view.rates = rates_between(earlier->probe, view.probe);
  }
}

FleetView read_fleet(const Settings& settings, double interval_s,
                     const std::vector<std::string>& only) {
  FleetView fleet = read_topology(settings, only);
  read_units(fleet, settings);
  if (interval_s <= 0) {
    probe_fleet(fleet);
    return fleet;
  }
  FleetView first = fleet;
  probe_fleet(first);
  std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
  probe_fleet(fleet, &first);
  return fleet;
}

Json::Value fleet_json(const FleetView& fleet) {
  Json::Value root(Json::objectValue);
  Json::Value& instances = root["instances"] = Json::Value(Json::arrayValue);
  for (const auto& view : fleet.instances) {
    Json::Value item(Json::objectValue);
    item["id"] = view.id;
    item["port"] = view.port;
    item["address"] = view.address;
    item["local"] = view.local;
    item["pid"] = view.pid ? Json::Value(view.pid) : Json::Value();
    item["expected"] = view.expected();
    item["up"] = view.up();
    item["reachable"] = view.probe.reachable;
    if (!view.probe.reachable) item["error"] = view.probe.error;
    item["state"] = view.probe.reachable ? view.probe.state : "unreachable";
    item["version"] = view.probe.version;
    item["uptime_s"] = view.probe.uptime_s;
    item["connections"] = Json::Int64(view.probe.connections);
    item["sessions"] = view.probe.sessions < 0 ? Json::Value() : Json::Int64(view.probe.sessions);
    item["requests_per_s"] = view.rates.requests_per_s;
    item["errors_per_s"] = view.rates.errors_per_s;
    item["p99_ms"] = view.rates.p99_s ? Json::Value(*view.rates.p99_s * 1000) : Json::Value();
    Json::Value haproxy(Json::nullValue);
    if (view.server) {
      haproxy = Json::Value(Json::objectValue);
      haproxy["state"] = view.server->state();
      haproxy["status"] = view.server->status;
      haproxy["check_status"] = view.server->check_status;
      haproxy["check_code"] = view.server->check_code;
      haproxy["check_desc"] = view.server->check_desc;
      haproxy["check_ms"] = Json::Int64(view.server->check_ms);
      haproxy["connections"] = Json::Int64(view.server->current);
      haproxy["queued"] = Json::Int64(view.server->queued);
      haproxy["total"] = Json::Int64(view.server->total);
      haproxy["address"] = view.server->address;
      haproxy["since_change_s"] = Json::Int64(view.server->last_change_s);
    }
    item["haproxy"] = haproxy;
    Json::Value unit(Json::nullValue);
    if (view.unit) {
      unit = Json::Value(Json::objectValue);
      unit["name"] = unit_name(view.port);
      unit["active_state"] = view.unit->active_state;
      unit["sub_state"] = view.unit->sub_state;
      unit["unit_file_state"] = view.unit->unit_file_state;
      unit["pid"] = view.unit->main_pid;
      unit["restarts"] = view.unit->restarts;
      unit["active_since_us"] = Json::UInt64(view.unit->active_since_us);
    }
    item["unit"] = unit;
    instances.append(item);
  }
  Json::Value haproxy(Json::objectValue);
  if (fleet.haproxy) {
    haproxy["version"] = fleet.haproxy->version;
    haproxy["pid"] = Json::Int64(fleet.haproxy->pid);
    haproxy["uptime_s"] = Json::Int64(fleet.haproxy->uptime_s);
    haproxy["connections"] = Json::Int64(fleet.haproxy->current_connections);
    haproxy["max_connections"] = Json::Int64(fleet.haproxy->max_connections);
  }
  if (fleet.backend) {
    haproxy["queued"] = Json::Int64(fleet.backend->queued);
    haproxy["backend_connections"] = Json::Int64(fleet.backend->current);
  }
  if (!fleet.haproxy_error.empty()) haproxy["error"] = fleet.haproxy_error;
  root["haproxy"] = haproxy;
  root["all_up"] = fleet.all_up();
  return root;
}

std::string format_duration(double seconds) {
  if (seconds < 0) return "-";
  const long long s = static_cast<long long>(seconds);
  char text[32];
  if (s < 60) {
    std::snprintf(text, sizeof(text), "%llds", s);
  } else if (s < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(text, sizeof(text), "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  }
  return text;
}

std::string format_latency(std::optional<double> seconds) {
  if (!seconds) return "-";
  char text[32];
  if (*seconds < 0.001) {
    std::snprintf(text, sizeof(text), "%.0fus", *seconds * 1e6);
  } else if (*seconds < 1) {
    std::snprintf(text, sizeof(text), "%.1fms", *seconds * 1e3);
  } else {
    std::snprintf(text, sizeof(text), "%.2fs", *seconds);
  }
  return text;
}

}  // namespace tandem::ctl
