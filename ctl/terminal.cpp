#include "terminal.hpp"

#include <unistd.h>

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

}  // namespace tandem::ctl
