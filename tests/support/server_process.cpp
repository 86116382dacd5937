#include "server_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "raw_client.hpp"

extern char** environ;

namespace tandem::test {
namespace {

// An unlinked temporary file: the child writes to it, the test reads it with pread.
int make_capture_file() {
  char name[] = "/tmp/tandem-it-XXXXXX";
  int fd = ::mkostemp(name, O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string{"mkostemp: "} + std::strerror(errno));
  ::unlink(name);
  return fd;
}

std::string read_all(int fd) {
  std::string text;
  if (fd < 0) return text;
  char chunk[65536];
  off_t offset = 0;
  for (;;) {
    ssize_t got = ::pread(fd, chunk, sizeof chunk, offset);
    if (got <= 0) break;
    text.append(chunk, static_cast<std::size_t>(got));
    offset += got;
  }
  return text;
}

ExitStatus decode(int status) {
  ExitStatus result;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

bool lower_contains(std::string text, std::string_view needle) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text.find(needle) != std::string::npos;
}

// The environment for the child: ours, minus what would change its behaviour behind the test's
// back (systemd's notify socket, the test's own variable), plus `extra`.
std::vector<std::string> child_environment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view item{*entry};
    std::string_view name = item.substr(0, item.find('='));
    if (name == "NOTIFY_SOCKET" || name == "WATCHDOG_USEC" || name == "WATCHDOG_PID" ||
        name == "TANDEM_SERVER_BIN" || name == "LISTEN_FDS" || name == "LISTEN_PID") {
      continue;
    }
    bool overridden = std::any_of(extra.begin(), extra.end(),
                                  [&](const auto& pair) { return pair.first == name; });
    if (!overridden) env.emplace_back(item);
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

// Forks and execs `binary args` with stdout/stderr on the given fds; returns the pid.
pid_t spawn_child(const std::string& binary, const std::vector<std::string>& args,
                  const std::vector<std::string>& env, int out_fd, int err_fd) {
  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& item : env) envp.push_back(const_cast<char*>(item.c_str()));
  envp.push_back(nullptr);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
  if (pid == 0) {
    // Die with the test process, even when it crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    static const char kMessage[] = "exec of TANDEM_SERVER_BIN failed\n";
    ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    (void)ignored;
    ::_exit(127);
  }
  return pid;
}

}  // namespace

double elapsed_ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool poll_until(const std::function<bool()>& done, Millis timeout, Millis interval) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    bool late = Clock::now() >= deadline;
    if (done()) return true;
    if (late) return false;
    std::this_thread::sleep_for(interval);
  }
}

ServerOptions with_args(std::vector<std::string> args) {
  ServerOptions options;
  options.args = std::move(args);
  return options;
}

std::string ExitStatus::describe() const {
  if (exited) return "exit code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

std::string server_binary() {
  const char* path = std::getenv("TANDEM_SERVER_BIN");
  if (path == nullptr || *path == '\0') {
    throw std::runtime_error("TANDEM_SERVER_BIN is not set (path to the built tandem-server)");
  }
  if (::access(path, X_OK) != 0) {
    throw std::runtime_error(std::string{"TANDEM_SERVER_BIN is not executable: "} + path);
  }
  return path;
}

uint16_t free_port(const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string{"socket: "} + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int saved = errno;
    ::close(fd);
    throw std::runtime_error(std::string{"bind port 0: "} + std::strerror(saved));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

uint16_t quiet_port(const std::string& host) {
  int ephemeral_first = 32768;  // Linux's default, when the range cannot be read.
  std::ifstream range{"/proc/sys/net/ipv4/ip_local_port_range"};
  range >> ephemeral_first;
  int lowest = std::max(1024, ephemeral_first - 8192);
  if (ephemeral_first - 1 < lowest) throw std::runtime_error("no port below the ephemeral range");
  std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int> pick{lowest, ephemeral_first - 1};
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string{"socket: "} + std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(pick(random)));
    ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
    bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    if (bound) return ntohs(address.sin_port);
  }
  throw std::runtime_error("no free port below the ephemeral range after 100 tries");
}

bool can_connect(const std::string& host, uint16_t port, Millis timeout) {
  return RawClient::try_connect(host, port, timeout) != nullptr;
}

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {
  constexpr int kAttempts = 5;
  try {
    for (int attempt = 1;; ++attempt) {
      port_ = options_.add_port ? free_port(options_.host) : 0;
      spawn();
      if (!options_.wait_ready || wait_ready()) return;
      // The child exited before it was ready. Another process taking the port between
      // free_port() and the child's bind is the one failure worth another try.
      // The reason may be on stderr or in a JSON log line on stdout.
      std::string err = stderr_text();
      std::string output = err + stdout_text();
      bool port_taken = lower_contains(output, "eaddrinuse") || lower_contains(output, "in use");
      if (!options_.add_port || !port_taken || attempt == kAttempts) {
        throw std::runtime_error("tandem-server did not start (" + status_->describe() +
                                 "); stderr: " + err + "; stdout: " + stdout_text());
      }
      ::close(out_fd_);
      ::close(err_fd_);
      out_fd_ = err_fd_ = -1;
    }
  } catch (...) {
    // The destructor does not run for a constructor that throws: clean up here.
    kill_and_reap();
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
    throw;
  }
}

ServerProcess::~ServerProcess() {
  kill_and_reap();
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

void ServerProcess::spawn() {
  std::vector<std::string> args = options_.args;
  if (options_.add_port) {
    args.push_back("--port");
    args.push_back(std::to_string(port_));
  }
  out_fd_ = make_capture_file();
  err_fd_ = make_capture_file();
  status_.reset();
  pid_ = spawn_child(server_binary(), args, child_environment(options_.env), out_fd_, err_fd_);
  reaped_ = false;
}

bool ServerProcess::wait_ready() {
  auto deadline = Clock::now() + options_.ready_timeout;
  std::string last_error = "never tried";
  while (Clock::now() < deadline) {
    if (!running()) return false;
    const std::string request =
        "GET /health HTTP/1.1\r\nHost: " + options_.host + "\r\nConnection: close\r\n\r\n";
    auto client = RawClient::try_connect(options_.host, port_, Millis{1000}, &last_error);
    if (client && client->send(request)) {
      if (client->read_response(Millis{2000})) {
        // Wait for the server's close, so the probe's connection is gone before the test
        // starts counting connections.
        client->wait_closed(Millis{500});
        return true;
      }
      last_error = "no response to GET /health";
    }
    std::this_thread::sleep_for(Millis{10});
  }
  throw std::runtime_error("tandem-server on port " + std::to_string(port_) + " not ready within " +
                           std::to_string(options_.ready_timeout.count()) + " ms (" + last_error +
                           "); stderr: " + stderr_text());
}

std::string ServerProcess::url(std::string_view path) const {
  return "http://" + options_.host + ":" + std::to_string(port_) + std::string{path};
}

void ServerProcess::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

bool ServerProcess::running() {
  if (reaped_) return false;
  int status = 0;
  pid_t rc = ::waitpid(pid_, &status, WNOHANG);
  if (rc == pid_) {
    reaped_ = true;
    status_ = decode(status);
    return false;
  }
  return true;
}

std::optional<ExitStatus> ServerProcess::wait_exit(Millis timeout) {
  poll_until([this] { return !running(); }, timeout, Millis{2});
  return status_;
}

void ServerProcess::kill_and_reap() {
  if (reaped_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  status_ = decode(status);
}

std::string ServerProcess::stdout_text() const { return read_all(out_fd_); }

std::string ServerProcess::stderr_text() const { return read_all(err_fd_); }

std::vector<std::string> ServerProcess::stdout_lines() const {
  std::vector<std::string> lines;
  std::string text = stdout_text();
  std::size_t at = 0;
  for (auto end = text.find('\n'); end != std::string::npos; end = text.find('\n', at)) {
    lines.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return lines;
}

double ServerProcess::cpu_seconds() const {
  if (reaped_) return -1;
  std::ifstream file("/proc/" + std::to_string(pid_) + "/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // State is field 3; utime and stime are fields 14 and 15.
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

RunResult run_to_exit(const std::vector<std::string>& args, Millis timeout,
                      std::optional<uint16_t> watch_port,
                      const std::vector<std::pair<std::string, std::string>>& env) {
  ServerOptions options;
  options.args = args;
  options.env = env;
  options.add_port = false;
  options.wait_ready = false;
  ServerProcess process(options);
  RunResult result;
  auto deadline = Clock::now() + timeout;
  while (process.running() && Clock::now() < deadline) {
    if (watch_port && can_connect(process.host(), *watch_port, Millis{50})) {
      result.port_was_open = true;
    }
    std::this_thread::sleep_for(Millis{1});
  }
  result.status = process.exit_status();
  result.out = process.stdout_text();
  result.err = process.stderr_text();
  return result;
}

}  // namespace tandem::test
