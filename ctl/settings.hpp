#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tandem::ctl {

// The variables of a systemd EnvironmentFile= (KEY=VALUE lines, # and ; comments, optional
// single or double quotes, a trailing backslash continuing the line). Throws CtlError naming the
// file and line of anything else.
std::map<std::string, std::string> read_env_file(const std::filesystem::path& path);
std::map<std::string, std::string> parse_env_text(const std::string& text,
                                                  const std::string& origin);

// The systemd unit of this host's instance on `port`.
inline std::string unit_name(int port) { return "tandem@" + std::to_string(port) + ".service"; }

// One instance of this host, from /etc/tandem/<port>.env: the unit tandem@<port>.
struct LocalInstance {
  std::string id;       // TANDEM_ID: HAProxy's server name and the stickiness cookie's value.
  int port = 0;         // From the file's name, as the unit's instance name.
  std::string address;  // Where this host reaches it: TANDEM_BIND, a wildcard as loopback.
  std::string unit() const { return unit_name(port); }
};

// Everything tandemctl needs to know about the host: its instances and its balancer.
struct Settings {
  std::filesystem::path config_dir = "/etc/tandem";
  std::vector<LocalInstance> instances;  // By port.
  std::string socket = "/run/haproxy/admin.sock";
  std::string backend = "tandem";
  std::string lb_url =
      "http://127.0.0.1:80";               // This host's public frontend, for the traffic check.
  std::string cookie = "tandem_instance";  // The stickiness cookie's name.
  bool systemd = true;                     // Instances are units of this host's systemd.

  // The local instance of that id, or nullptr.
  const LocalInstance* find(const std::string& id) const;
};

// Command-line values that override the files (empty: not given).
struct Overrides {
  std::string config_dir, socket, backend, lb_url, cookie;
};

// Reads <config_dir>/tandemctl.conf (the balancer: TANDEM_LB_SOCKET, TANDEM_LB_BACKEND,
// TANDEM_LB_URL, TANDEM_LB_COOKIE; optional) and every <config_dir>/<port>.env, then applies the
// overrides. A missing config_dir is not an error (a balancer-only host has no instance).
Settings load_settings(const Overrides& overrides);

}  // namespace tandem::ctl
