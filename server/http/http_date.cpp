#include "http/http_date.hpp"

#include <array>

namespace tandem {

const std::string& HttpDate::now() {
  std::time_t second = std::time(nullptr);
  if (second != cached_second_) {
    cached_ = format(second);
    cached_second_ = second;
  }
  return cached_;
}

std::string HttpDate::format(std::time_t when) {
  std::tm utc{};
  gmtime_r(&when, &utc);
  // strftime's %a and %b follow the locale; HTTP needs the English names whatever the locale.
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::array<char, 40> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                kDays.at(static_cast<std::size_t>(utc.tm_wday)), utc.tm_mday,
                kMonths.at(static_cast<std::size_t>(utc.tm_mon)), utc.tm_year + 1900, utc.tm_hour,
                utc.tm_min, utc.tm_sec);
  return buffer.data();
}

}  // namespace tandem
