#include "full_screen.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "error.hpp"
#include "terminal.hpp"

namespace tandem::ctl {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};

// What the handler may touch: flags, and the self-pipe's write end (write(2) is
// async-signal-safe), which wakes wait()'s poll at once.
volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_stops = 0;  // Counts them, so a write interrupted by one gives up.
volatile std::sig_atomic_t g_resized = 0;
volatile std::sig_atomic_t g_wake_fd = -1;

void on_signal(int signal) {
  const int saved_errno = errno;
  if (signal == SIGWINCH) {
    g_resized = 1;
  } else {
    g_stop_signal = signal;
    g_stops = g_stops + 1;
  }
  if (g_wake_fd >= 0) {
    const char byte = 0;
    [[maybe_unused]] const ssize_t ignored = ::write(g_wake_fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

FullScreen::FullScreen() {
  if (::tcgetattr(STDIN_FILENO, &saved_) != 0) {
    throw CtlError(std::string("cannot read the terminal's settings: ") + std::strerror(errno),
                   "run it in a terminal; tandemctl status is the one-shot form", kExitUsage);
  }
  static_assert(std::size(kSignals) == std::size(decltype(previous_){}));
  try {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw CtlError(std::string("pipe(): ") + std::strerror(errno));
    }
    g_stop_signal = 0;
    g_resized = 0;
    g_wake_fd = wake_[1];
    // No SA_RESTART: a write blocked on a stalled terminal (an SSH link gone quiet) returns on
    // SIGTERM instead of keeping the process. The probes' own calls retry on EINTR.
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      ::sigaction(kSignals[i], &action, &previous_[i]);
    }
    handlers_ = true;
    termios raw = saved_;
    // Keys one at a time, not echoed; Ctrl-C is a key (quit) rather than SIGINT, and Ctrl-S,
    // Ctrl-Z and Ctrl-\ do nothing, so nothing can stop or kill the view with the terminal raw.
    raw.c_lflag &= ~(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~(IXON | ICRNL);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) {
      throw CtlError(std::string("cannot set the terminal's mode: ") + std::strerror(errno));
    }
    raw_ = true;
    // The alternate screen keeps the operator's scrollback as it was; no cursor blinking about.
    write_all("\033[?1049h\033[?25l\033[2J");
  } catch (...) {
    restore();
    throw;
  }
}

FullScreen::~FullScreen() { restore(); }

void FullScreen::restore() {
  // The terminal first, the handlers after: a SIGTERM arriving meanwhile only sets a flag.
  if (raw_) {
    write_all("\033[0m\033[?25h\033[?1049l");
    // TCSAFLUSH: keys typed after q are dropped rather than run by the shell.
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
    raw_ = false;
  }
  if (handlers_) {
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      ::sigaction(kSignals[i], &previous_[i], nullptr);
    }
    handlers_ = false;
  }
  g_wake_fd = -1;
  for (int& fd : wake_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

FullScreen::Event FullScreen::wait(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (g_stop_signal) return Event::kQuit;
    if (g_resized) {
      g_resized = 0;
      resized_since_draw_ = true;
      return Event::kResize;
    }
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= left.zero()) return Event::kTimeout;
    // Rounded up: poll returns at the deadline, never a little before it to spin.
    const auto timeout_ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(std::min<long long>(timeout_ms, 60000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw CtlError(std::string("poll(): ") + std::strerror(errno));
    }
    if (fds[1].revents & POLLIN) {
      char drain[64];
      while (::read(wake_[0], drain, sizeof(drain)) > 0) {
      }
    }
    if (fds[0].revents & POLLIN) {
      char keys[64];
      const ssize_t n = ::read(STDIN_FILENO, keys, sizeof(keys));
      if (n == 0) return Event::kQuit;  // End of input: the terminal is gone.
      if (n < 0 && errno != EINTR && errno != EAGAIN) return Event::kQuit;
      for (ssize_t i = 0; i < n; ++i) {
        if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == '\x03') return Event::kQuit;
      }
    } else if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
      return Event::kQuit;
    }
  }
}

FullScreen::Size FullScreen::size() const {
  Size size;
  winsize window{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &window) == 0 && window.ws_col > 0 && window.ws_row > 0) {
    size.columns = window.ws_col;
    size.rows = window.ws_row;
  }
  return size;
}

void FullScreen::draw(const std::vector<std::string>& lines) {
  const Size screen = size();
  std::string frame = resized_since_draw_ ? "\033[2J" : "";
  resized_since_draw_ = false;
  const std::size_t rows = std::min(lines.size(), static_cast<std::size_t>(screen.rows));
  // Each line at its row, erased first, rather than newlines: a line exactly as wide as the
  // screen then never scrolls it, whatever the terminal does at its last column.
  for (std::size_t row = 0; row < rows; ++row) {
    frame += "\033[" + std::to_string(row + 1) + ";1H\033[2K" +
             clip(lines[row], static_cast<std::size_t>(screen.columns));
  }
  if (rows < static_cast<std::size_t>(screen.rows)) {
    frame += "\033[" + std::to_string(rows + 1) + ";1H\033[J";
  }
  write_all(frame);
}

void FullScreen::write_all(const std::string& text) {
  const auto stops = g_stops;
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data() + written, text.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR && g_stops == stops) {
      continue;  // A resize: carry on.
    } else {
      return;  // The terminal is gone, or a stop signal came while it would not take output.
    }
  }
}

}  // namespace tandem::ctl
