#pragma once

#include <stdexcept>
#include <string>

namespace tandem::ctl {

// tandemctl's exit statuses, for scripts: documented in tandemctl(1) and --help.
enum ExitStatus : int {
  kExitOk = 0,
  kExitFailed = 1,   // The operation failed or could not reach what it needs.
  kExitUsage = 2,    // Bad arguments, an unknown instance, a configuration that does not parse.
  kExitNotUp = 3,    // status: an instance that should serve is not UP in HAProxy.
  kExitRefused = 4,  // drain/maint: refused, it would leave too few instances UP.
  kExitTimeout = 5,  // --wait: its bound passed before what it waits for happened.
};

// A failure to report on stderr as "tandemctl: <what>" followed by "  <hint>" (what to do next),
// ending the program with `status`.
class CtlError : public std::runtime_error {
 public:
  CtlError(std::string what, std::string hint = {}, ExitStatus status = kExitFailed)
      : std::runtime_error(std::move(what)), hint_(std::move(hint)), status_(status) {}

  const std::string& hint() const { return hint_; }
  ExitStatus status() const { return status_; }

 private:
  std::string hint_;
  ExitStatus status_;
};

}  // namespace tandem::ctl
