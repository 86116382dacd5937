#pragma once

#include <signal.h>

namespace tandem::ctl {

// SIGINT and SIGTERM, blocked and read from a descriptor (signalfd), so that waiting for
// something else and for a stop is one poll and a command ends by returning, exit status 0.
// They stay blocked after it is destroyed: a command that used it is about to exit, and one
// that came meanwhile must not end the process by its default action.
class StopSignals {
 public:
  // Blocks them. Throws CtlError (exit 1) when it cannot.
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  int fd() const { return fd_; }  // Readable once one has come.
  bool pending() const;           // Whether one has come (without waiting).

 private:
  sigset_t set_{};
  int fd_ = -1;
};

}  // namespace tandem::ctl
