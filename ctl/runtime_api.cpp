#include "runtime_api.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

#include "error.hpp"

namespace tandem::ctl {
namespace {

constexpr int kTimeoutMs = 5000;

// A file descriptor closed on every path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

long long number(const std::map<std::string, std::string>& row, const char* key) {
  auto found = row.find(key);
  if (found == row.end() || found->second.empty()) return 0;
  try {
    return std::stoll(found->second);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string field(const std::map<std::string, std::string>& row, const char* key) {
  auto found = row.find(key);
  return found == row.end() ? std::string{} : found->second;
}

void wait_for(int fd, short events, const std::string& socket_path) {
  pollfd entry{fd, events, 0};
  int ready;
  do {
    ready = ::poll(&entry, 1, kTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) {
    throw CtlError("HAProxy did not answer on " + socket_path + " within 5 s",
                   "check HAProxy: systemctl status haproxy");
  }
}

}  // namespace

std::string ServerStat::state() const {
  const auto space = status.find(' ');
  return space == std::string::npos ? status : status.substr(0, space);
}

std::string RuntimeApi::command(const std::string& line) const {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(address.sun_path)) {
    throw CtlError("socket path too long: " + socket_path_, {}, kExitUsage);
  }
  std::memcpy(address.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw CtlError(std::string("socket(): ") + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int error = errno;
    if (error == ENOENT) {
      throw CtlError("no HAProxy runtime socket at " + socket_path_,
                     "is HAProxy running on this host? systemctl start haproxy; or name "
                     "another socket: --socket PATH, TANDEM_LB_SOCKET in tandemctl.conf");
    }
    if (error == EACCES || error == EPERM) {
      throw CtlError("permission denied on " + socket_path_,
                     "run as root, or as a member of the haproxy group");
    }
    if (error == ECONNREFUSED) {
      throw CtlError(
          "HAProxy is down: nothing listens on " + socket_path_,
          "start it: systemctl start haproxy; journalctl -u haproxy says why it stopped");
    }
    throw CtlError("cannot connect to " + socket_path_ + ": " + std::strerror(error));
  }
  std::string request = line + "\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    wait_for(fd.get(), POLLOUT, socket_path_);
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw CtlError("writing to " + socket_path_ + ": " + std::strerror(errno));
    sent += static_cast<std::size_t>(n);
  }
  std::string answer;
  char buffer[16384];
  for (;;) {
    wait_for(fd.get(), POLLIN, socket_path_);
    const ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw CtlError("reading from " + socket_path_ + ": " + std::strerror(errno));
    if (n == 0) break;
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  return answer;
}

std::vector<std::map<std::string, std::string>> parse_stat_csv(const std::string& text) {
  std::vector<std::map<std::string, std::string>> rows;
  std::istringstream lines(text);
  std::string line;
  std::vector<std::string> header;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const bool is_header = line.rfind("# ", 0) == 0;
    if (is_header) line = line.substr(2);
    // show stat's CSV never quotes: a comma never appears inside a field.
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (;;) {
      const auto comma = line.find(',', start);
      cells.push_back(line.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (is_header) {
      header = std::move(cells);
      continue;
    }
    if (header.empty()) continue;
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < header.size() && i < cells.size(); ++i) {
      if (!header[i].empty()) row[header[i]] = cells[i];
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

BackendStat backend_from_csv(const std::string& text, const std::string& backend) {
  BackendStat stat;
  bool found = false;
  for (const auto& row : parse_stat_csv(text)) {
    if (field(row, "pxname") != backend) continue;
    const std::string name = field(row, "svname");
    if (name == "FRONTEND") continue;
    found = true;
    if (name == "BACKEND") {
      stat.queued = number(row, "qcur");
      stat.current = number(row, "scur");
      continue;
    }
    ServerStat server;
    server.name = name;
    server.address = field(row, "addr");
    server.status = field(row, "status");
    server.check_status = field(row, "check_status");
    server.check_code = field(row, "check_code");
    server.check_desc = field(row, "check_desc");
    server.check_ms = row.count("check_duration") && !field(row, "check_duration").empty()
                          ? number(row, "check_duration")
                          : -1;
    server.current = number(row, "scur");
    server.queued = number(row, "qcur");
    server.total = number(row, "stot");
    server.last_change_s = number(row, "lastchg");
    stat.servers.push_back(std::move(server));
  }
  if (!found) {
    throw CtlError("HAProxy has no backend \"" + backend + "\"",
                   "name it with --backend NAME or TANDEM_LB_BACKEND in tandemctl.conf",
                   kExitUsage);
  }
  return stat;
}

HaproxyInfo parse_info(const std::string& text) {
  HaproxyInfo info;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    try {
      if (key == "Version") info.version = value;
      if (key == "Pid") info.pid = std::stoll(value);
      if (key == "Uptime_sec") info.uptime_s = std::stoll(value);
      if (key == "CurrConns") info.current_connections = std::stoll(value);
      if (key == "Maxconn") info.max_connections = std::stoll(value);
    } catch (const std::exception&) {
      // A field HAProxy left empty keeps its zero.
    }
  }
  return info;
}

BackendStat RuntimeApi::backend(const std::string& backend) const {
  return backend_from_csv(command("show stat"), backend);
}

HaproxyInfo RuntimeApi::info() const { return parse_info(command("show info")); }

void RuntimeApi::set_state(const std::string& backend, const std::string& server,
                           const std::string& state) const {
  std::string answer = command("set server " + backend + "/" + server + " state " + state);
  while (!answer.empty() && (answer.back() == '\n' || answer.back() == ' ')) answer.pop_back();
  // HAProxy answers nothing on success, and a sentence on failure.
  if (!answer.empty()) {
    throw CtlError("HAProxy refused \"set server " + backend + "/" + server + " state " + state +
                   "\": " + answer);
  }
}

}  // namespace tandem::ctl
