#include "terminal.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace tandem::ctl {

bool colour_wanted() {
  const char* no_colour = std::getenv("NO_COLOR");
  if (no_colour && *no_colour) return false;
  const char* term = std::getenv("TERM");
  if (term && std::string(term) == "dumb") return false;
  return ::isatty(STDOUT_FILENO) == 1;
}

std::string paint(const std::string& text, Colour colour, bool enabled) {
  if (!enabled || colour == Colour::kNone) return text;
  const char* code = "";
  switch (colour) {
    case Colour::kRed:
      code = "31";
      break;
    case Colour::kGreen:
      code = "32";
      break;
    case Colour::kYellow:
      code = "33";
      break;
    case Colour::kBlue:
      code = "34";
      break;
    case Colour::kMagenta:
      code = "35";
      break;
    case Colour::kCyan:
      code = "36";
      break;
    case Colour::kGrey:
      code = "90";
      break;
    case Colour::kBold:
      code = "1";
      break;
    case Colour::kNone:
      break;
  }
  return std::string("\033[") + code + "m" + text + "\033[0m";
}

Colour state_colour(const std::string& state) {
  if (state == "UP") return Colour::kGreen;
  if (state == "DRAIN" || state == "NOLB") return Colour::kYellow;
  if (state == "MAINT" || state == "DOWN") return Colour::kRed;
  return Colour::kNone;
}

std::string pad(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

namespace {

// The end of the escape sequence at `start` ("\033[...m" and the like: CSI, parameters, one
// final byte), or `start` itself when there is none there.
std::size_t escape_end(const std::string& line, std::size_t start) {
  if (line[start] != '\033' || start + 1 >= line.size() || line[start + 1] != '[') return start;
  std::size_t end = start + 2;
  while (end < line.size() && !(line[end] >= 0x40 && line[end] <= 0x7e)) ++end;
  return std::min(end + 1, line.size());
}

bool continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

}  // namespace

std::size_t visible_width(const std::string& line) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < line.size();) {
    const std::size_t end = escape_end(line, i);
    if (end != i) {
      i = end;
      continue;
    }
    if (!continuation_byte(line[i])) ++width;
    ++i;
  }
  return width;
}

std::string clip(const std::string& line, std::size_t columns) {
  std::string out;
  std::size_t width = 0;
  bool coloured = false;
  for (std::size_t i = 0; i < line.size();) {
    const std::size_t end = escape_end(line, i);
    if (end != i) {
      out.append(line, i, end - i);
      coloured = true;
      i = end;
      continue;
    }
    if (!continuation_byte(line[i])) {
      if (width == columns) return coloured ? out + "\033[0m" : out;
      ++width;
    }
    // A control character (a newline in an error message, a stray escape) would move the
    // cursor: shown as "?" instead.
    const unsigned char c = static_cast<unsigned char>(line[i++]);
    out += c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
  }
  return out;
}

}  // namespace tandem::ctl
