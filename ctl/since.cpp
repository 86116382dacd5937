#include "since.hpp"

#include <cctype>
#include <ctime>
#include <optional>

#include "error.hpp"

namespace tandem::ctl {
namespace {

using Clock = std::chrono::system_clock;

[[noreturn]] void reject(const std::string& text, const std::string& why = {}) {
  throw CtlError(
      "--since \"" + text + "\"" + (why.empty() ? "" : ": " + why) + ": expected " + kSinceForms,
      "for instance: tandemctl logs --since 10m", kExitUsage);
}

// The digits of text[from, from + count) as a number, or nothing when one is not a digit.
std::optional<int> digits(const std::string& text, std::size_t from, std::size_t count) {
  if (from + count > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = from; i < from + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// Local midnight of `days` days after today (negative: before).
Clock::time_point local_midnight(Clock::time_point now, int days) {
  const std::time_t seconds = Clock::to_time_t(now);
  std::tm local{};
  localtime_r(&seconds, &local);
  local.tm_mday += days;
  local.tm_hour = local.tm_min = local.tm_sec = 0;
  local.tm_isdst = -1;  // Whatever applies at that midnight.
  return Clock::from_time_t(std::mktime(&local));
}

// "10m": that long before now; nothing when text is not a number and one unit.
std::optional<Clock::time_point> ago(const std::string& text, Clock::time_point now) {
  if (text.size() < 2) return std::nullopt;
  long long unit_s = 0;
  switch (text.back()) {
    case 's':
      unit_s = 1;
      break;
    case 'm':
      unit_s = 60;
      break;
    case 'h':
      unit_s = 3600;
      break;
    case 'd':
      unit_s = 86400;
      break;
    default:
      return std::nullopt;
  }
  long long count = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    count = count * 10 + (text[i] - '0');
    // A hundred years is more than any journal holds; beyond it the arithmetic could overflow.
    if (count * unit_s > 100LL * 366 * 86400) reject(text, "too long ago");
  }
  if (count == 0) reject(text, "a duration of zero is now");
  return now - std::chrono::seconds(count * unit_s);
}

// "YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" (a T may stand for the space), in
// local time; nothing when text has none of those shapes.
std::optional<Clock::time_point> local_date_time(const std::string& text) {
  const std::size_t size = text.size();
  if (size != 10 && size != 16 && size != 19) return std::nullopt;
  if (text[4] != '-' || text[7] != '-') return std::nullopt;
  const auto year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
  if (!year || !month || !day) return std::nullopt;
  std::optional<int> hour = 0, minute = 0, second = 0;
  if (size >= 16) {
    if ((text[10] != ' ' && text[10] != 'T') || text[13] != ':') return std::nullopt;
    hour = digits(text, 11, 2);
    minute = digits(text, 14, 2);
  }
  if (size == 19) {
    if (text[16] != ':') return std::nullopt;
    second = digits(text, 17, 2);
  }
  if (!hour || !minute || !second) return std::nullopt;
  if (*year < 1970 || *month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 ||
      *minute > 59 || *second > 59) {
    reject(text, "no such date or time");
  }
  std::tm local{};
  local.tm_year = *year - 1900;
  local.tm_mon = *month - 1;
  local.tm_mday = *day;
  local.tm_hour = *hour;
  local.tm_min = *minute;
  local.tm_sec = *second;
  local.tm_isdst = -1;
  const std::time_t seconds = std::mktime(&local);
  // mktime moves 31 April to 1 May: a date it had to move does not exist.
  if (seconds == static_cast<std::time_t>(-1) || local.tm_mday != *day ||
      local.tm_mon != *month - 1) {
    reject(text, "no such date");
  }
  // It moves a time in the gap where the clocks go forward (02:30 on the night summer time
  // starts in Berlin) by the gap: that time does not exist either.
  if (local.tm_hour != *hour || local.tm_min != *minute || local.tm_sec != *second) {
    reject(text, "no such time in the local time zone (the clocks skip it)");
  }
  return Clock::from_time_t(seconds);
}

}  // namespace

Clock::time_point parse_since(const std::string& text, Clock::time_point now) {
  if (text == "today") return local_midnight(now, 0);
  if (text == "yesterday") return local_midnight(now, -1);
  if (auto moment = ago(text, now)) return *moment;
  if (auto moment = local_date_time(text)) return *moment;
  reject(text);
}

}  // namespace tandem::ctl
