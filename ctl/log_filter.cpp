#include "log_filter.hpp"

#include <utility>

namespace tandem::ctl {

std::string last_field(const std::string& message) {
  constexpr const char* kSpace = " \t\n\r\f\v";
  const std::size_t end = message.find_last_not_of(kSpace);
  if (end == std::string::npos) return {};
  const std::size_t space = message.find_last_of(kSpace, end);
  const std::size_t start = space == std::string::npos ? 0 : space + 1;
  return message.substr(start, end + 1 - start);
}

LogFilter::LogFilter(std::uint64_t since_us, std::string request)
    : since_us_(since_us), request_(std::move(request)) {}

std::optional<LogEntry> LogFilter::pass(LogEntry entry) const {
  // Seeking a time finds the first entry of each journal file from then on, but a file's
  // entries need not be in time order (the clock can be set back), and following goes on from
  // wherever the last entries ended: what is older than --since is dropped here.
  if (entry.realtime_us < since_us_) return std::nullopt;
  if (request_.empty()) return entry;
  if (entry.request_id == request_) return entry;
  if (entry.request_id.empty() && entry.unit == kHaproxyUnit) {
    std::string id = last_field(entry.message);
    if (id != request_) return std::nullopt;
    entry.request_id = std::move(id);
    return entry;
  }
  return std::nullopt;
}

}  // namespace tandem::ctl
