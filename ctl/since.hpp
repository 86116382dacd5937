#pragma once

#include <chrono>
#include <string>

namespace tandem::ctl {

// The forms --since accepts, for help and error texts.
inline constexpr const char* kSinceForms =
    "30s, 10m, 2h, 1d (that long ago), today, yesterday (local midnight), YYYY-MM-DD or "
    "\"YYYY-MM-DD HH:MM[:SS]\" (local time)";

// The moment `text` names, relative to `now` for durations and in the local time zone for dates
// and times. Throws CtlError (exit 2) naming the accepted forms for anything else, a zero or
// overflowing duration, or a date or time that does not exist.
std::chrono::system_clock::time_point parse_since(const std::string& text,
                                                  std::chrono::system_clock::time_point now);

}  // namespace tandem::ctl
