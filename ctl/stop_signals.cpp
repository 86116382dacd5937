#include "stop_signals.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "error.hpp"

namespace tandem::ctl {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigset_t previous{};
  if (sigprocmask(SIG_BLOCK, &set_, &previous) != 0) {
    throw CtlError(std::string("sigprocmask(): ") + std::strerror(errno));
  }
  fd_ = signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd_ < 0) {
    const int error = errno;
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    throw CtlError(std::string("signalfd(): ") + std::strerror(error));
  }
}

StopSignals::~StopSignals() {
  // The mask is not restored: a signal that came between a last read and the unblocking would
  // end the process by its default action (and exit status) instead of the command's return.
  // Blocked, whatever comes now is discarded when the process exits.
  ::close(fd_);
}

bool StopSignals::pending() const {
  pollfd entry{fd_, POLLIN, 0};
  return ::poll(&entry, 1, 0) > 0;
}

}  // namespace tandem::ctl
