#pragma once

#include <ctime>
#include <string>

namespace tandem {

// The IMF-fixdate for the `Date` header ("Thu, 26 Nov 2026 18:20:01 GMT"), formatted once per
// second rather than once per response.
class HttpDate {
 public:
  // The date for the current second.
  const std::string& now();
  // The date for `when` (seconds since the epoch), without caching.
  static std::string format(std::time_t when);

 private:
  std::time_t cached_second_ = -1;
  std::string cached_;
};

}  // namespace tandem
