#pragma once

#include <string>
#include <vector>

#include "fleet.hpp"

namespace tandem::ctl {

// What one frame of tandemctl top shows besides the fleet itself.
struct TopFrameContext {
  std::string clock;      // The wall-clock time of the sample, "14:03:22".
  double interval_s = 1;  // Seconds between samples, for the footer.
  std::size_t rows = 24;  // The screen's height: the frame never has more lines.
  bool colour = false;    // ANSI colours (colour_wanted()).
  std::string backend;    // HAProxy's backend, named in the header.
};

// One frame of tandemctl top, a line per element, not yet clipped to the screen's width:
//   header:   the time, HAProxy's version, connections/maxconn and the backend's queue, or why
//             HAProxy cannot be read and what to do (the view keeps going: it may come back);
//   columns:  ID HAPROXY REQ/S SHARE P99 ERR/S CONNS SESSIONS UPTIME;
//   one row per instance (its error instead of numbers when it does not answer), a total row;
//   footer:   the keys. Rows that do not fit are dropped, the footer says how many.
std::vector<std::string> top_frame(const FleetView& fleet, const TopFrameContext& context);

}  // namespace tandem::ctl
