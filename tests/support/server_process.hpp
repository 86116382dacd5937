#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::test {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Milliseconds elapsed since `start`, as a double, for messages and bounds.
double elapsed_ms(Clock::time_point start);

// Calls `done` every `interval` until it returns true or `timeout` has passed; returns whether it
// did. The last call is made at or after the deadline, so a late success still counts.
bool poll_until(const std::function<bool()>& done, Millis timeout, Millis interval = Millis{10});

// How a child process ended.
struct ExitStatus {
  bool exited = false;  // true: it called exit with `code`; false: a signal killed it.
  int code = -1;        // Exit code when `exited`.
  int signal = 0;       // The killing signal when !exited.

  // "exit code 2" or "killed by signal 9 (Killed)", for test messages.
  std::string describe() const;
};

// What to start and how.
struct ServerOptions {
  std::vector<std::string> args;                         // Flags for tandem-server.
  std::vector<std::pair<std::string, std::string>> env;  // Extra environment variables.
  bool add_port = true;                                  // Append `--port <a free port>` to `args`.
  bool wait_ready = true;          // Return from the constructor only once GET /health answers.
  Millis ready_timeout{10000};     // How long readiness may take.
  std::string host = "127.0.0.1";  // Address readiness probes and url() use.
};

// Default options with `args` as the flags.
ServerOptions with_args(std::vector<std::string> args);

// One tandem-server child process on a loopback port. Its stdout and stderr go to unlinked
// temporary files that the test can read at any time. The destructor SIGKILLs and reaps a child
// that is still running, so a failing test never leaves a server behind.
class ServerProcess {
 public:
  // Starts the binary named by TANDEM_SERVER_BIN; throws std::runtime_error (with the child's
  // stderr) when it cannot start or does not become ready. A start that fails because the port
  // was taken in the meantime is retried on another port.
  explicit ServerProcess(ServerOptions options);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  uint16_t port() const { return port_; }
  const std::string& host() const { return options_.host; }
  // The child's pid (still valid for messages after it was reaped).
  pid_t pid() const { return pid_; }
  // "http://host:port" followed by `path`.
  std::string url(std::string_view path) const;

  // Sends `sig` to the child unless it was already reaped.
  void signal(int sig);
  // True while the child has not exited; reaps it when it has.
  bool running();
  // Waits up to `timeout` for the child to end; nullopt if it is still running.
  std::optional<ExitStatus> wait_exit(Millis timeout);
  // The exit status once the child was reaped.
  const std::optional<ExitStatus>& exit_status() const { return status_; }

  // Everything the child wrote to stdout / stderr so far.
  std::string stdout_text() const;
  std::string stderr_text() const;
  // Complete ('\n'-terminated) stdout lines so far, without the newline.
  std::vector<std::string> stdout_lines() const;
  // CPU seconds (user + system) the child has used, from /proc; -1 once it is gone.
  double cpu_seconds() const;

 private:
  void spawn();
  // Returns true when ready; false when the child exited (status_ set); throws on timeout.
  bool wait_ready();
  void kill_and_reap();

  ServerOptions options_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool reaped_ = true;
  std::optional<ExitStatus> status_;
  int out_fd_ = -1;
  int err_fd_ = -1;
};

// The path in TANDEM_SERVER_BIN; throws when it is unset.
std::string server_binary();

// A port on `host` that nothing listens on right now (bind port 0, read it, release it).
uint16_t free_port(const std::string& host = "127.0.0.1");

// A port on `host` that nothing listens on and that binding port 0 never hands out, here or in
// any other process: one just below the kernel's ephemeral range. For checks that a port never
// opens: a server that a test running in parallel starts on a free_port() cannot land on it.
uint16_t quiet_port(const std::string& host = "127.0.0.1");

// True when a TCP connection to host:port is accepted within `timeout` (it is closed at once).
bool can_connect(const std::string& host, uint16_t port, Millis timeout = Millis{500});

// The outcome of running the binary to completion.
struct RunResult {
  std::optional<ExitStatus> status;  // nullopt: it did not exit within the timeout (then killed).
  std::string out;
  std::string err;
  bool port_was_open = false;  // Some connection to the watched port succeeded while it ran.
};

// Runs tandem-server with exactly `args` (no --port added) until it exits or `timeout` passes.
// While it runs, host:watch_port is probed for a listener as often as possible.
RunResult run_to_exit(const std::vector<std::string>& args, Millis timeout,
                      std::optional<uint16_t> watch_port = std::nullopt,
                      const std::vector<std::pair<std::string, std::string>>& env = {});

}  // namespace tandem::test
