#pragma once

#include <string>

namespace tandem::ctl {

// Colour on a terminal only: never when stdout is a pipe or a file, nor with NO_COLOR set.
bool colour_wanted();

enum class Colour { kNone, kRed, kGreen, kYellow, kBlue, kMagenta, kCyan, kGrey, kBold };
std::string paint(const std::string& text, Colour colour, bool enabled);

// The colour of HAProxy's state word: UP green, DRAIN yellow, MAINT and DOWN red.
Colour state_colour(const std::string& state);

// A string padded with spaces to `width` columns, counting bytes (the table holds ASCII).
std::string pad(const std::string& text, std::size_t width);

// The columns a line takes on a terminal: its colour sequences take none, a UTF-8 character one.
std::size_t visible_width(const std::string& line);

// The line cut to `columns` visible columns, colour sequences kept and, when cut, reset after, so
// that a full-screen view never wraps a line onto the next; other control characters become "?".
std::string clip(const std::string& line, std::size_t columns);

}  // namespace tandem::ctl
