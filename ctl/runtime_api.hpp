#pragma once

#include <map>
#include <string>
#include <vector>

namespace tandem::ctl {

// One server of the backend as HAProxy's `show stat` describes it.
struct ServerStat {
  std::string name;             // svname: the instance's id.
  std::string address;          // addr: host:port HAProxy sends to.
  std::string status;           // UP, DOWN, DRAIN, MAINT, NOLB, "UP 1/2", "MAINT (via)", ...
  std::string check_status;     // The last check's result: L7OK, L4CON, L7STS, ...
  std::string check_code;       // Its HTTP status, when there is one.
  std::string check_desc;       // HAProxy's words for it ("Layer7 check passed").
  long long check_ms = -1;      // How long it took.
  long long current = 0;        // scur: connections HAProxy has open to it now.
  long long queued = 0;         // qcur.
  long long total = 0;          // stot.
  long long last_change_s = 0;  // Seconds since its state last changed.
  // The state word alone: UP, DOWN, DRAIN, MAINT, NOLB; "UP 1/2" is UP on its way (see settled).
  std::string state() const;
  // UP and its check counter full: not "UP 1/2" (just back, first check not yet passed).
  bool fully_up() const { return status == "UP"; }
};

struct BackendStat {
  std::vector<ServerStat> servers;
  long long queued = 0;   // Requests waiting in the backend's queue.
  long long current = 0;  // Connections through the backend.
};

// HAProxy's `show info`, the fields tandemctl shows.
struct HaproxyInfo {
  std::string version;
  long long pid = 0;
  long long uptime_s = 0;
  long long current_connections = 0;
  long long max_connections = 0;
};

// The HAProxy runtime API on its UNIX socket (stats socket ... level admin): one connection per
// command, as HAProxy answers one command and closes in non-interactive mode.
class RuntimeApi {
 public:
  explicit RuntimeApi(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // The answer to one command. Throws CtlError saying what to do when the socket is missing,
  // refused (HAProxy down) or forbidden (not root nor in the socket's group), or on a timeout.
  std::string command(const std::string& line) const;

  BackendStat backend(const std::string& backend) const;
  HaproxyInfo info() const;
  // set server <backend>/<server> state ready|drain|maint; throws with HAProxy's own words.
  void set_state(const std::string& backend, const std::string& server,
                 const std::string& state) const;

  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
};

// Parsers, apart from the socket so that tests can feed them HAProxy's text.
std::vector<std::map<std::string, std::string>> parse_stat_csv(const std::string& text);
BackendStat backend_from_csv(const std::string& text, const std::string& backend);
HaproxyInfo parse_info(const std::string& text);

}  // namespace tandem::ctl
