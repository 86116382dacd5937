#pragma once

#include <signal.h>
#include <termios.h>

#include <chrono>
#include <string>
#include <vector>

namespace tandem::ctl {

// The terminal taken over by a live view (tandemctl top) for as long as the object lives: the
// alternate screen, no cursor, keys read one at a time without echo. The destructor gives the
// terminal back as it was on every way out: a quit key, a signal that asks to stop (SIGINT,
// SIGTERM, SIGHUP, turned into a quit), an exception. Only a crash or SIGKILL leave it raw
// (`reset` mends it). One at a time, as it owns the process's signal handlers.
class FullScreen {
 public:
  // Throws CtlError (kExitUsage) when stdin is not a terminal. The caller checks stdout, and
  // says which one is missing in its own terms.
  FullScreen();
  ~FullScreen();
  FullScreen(const FullScreen&) = delete;
  FullScreen& operator=(const FullScreen&) = delete;

  enum class Event {
    kTimeout,  // The deadline came.
    kResize,   // SIGWINCH: draw again at the new size.
    kQuit,     // q, Q or Ctrl-C typed; SIGINT, SIGTERM or SIGHUP; the terminal hung up.
  };
  // Waits for the deadline, a quit or a resize, whichever comes first; other keys are ignored.
  Event wait(std::chrono::steady_clock::time_point deadline);

  struct Size {
    int columns = 80;
    int rows = 24;
  };
  Size size() const;  // TIOCGWINSZ, 80x24 when the terminal does not say.

  // Replaces the screen's content with these lines, each clipped to the width, at most `rows` of
  // them, in one write so that the terminal never shows half a frame.
  void draw(const std::vector<std::string>& lines);

 private:
  void restore();
  void write_all(const std::string& text);

  termios saved_{};
  bool raw_ = false;
  bool handlers_ = false;
  bool resized_since_draw_ = true;
  int wake_[2] = {-1, -1};  // Self-pipe: the signal handler wakes wait()'s poll.
  struct sigaction previous_[4] = {};
};

}  // namespace tandem::ctl
