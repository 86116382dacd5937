#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "log_entry.hpp"

namespace tandem::ctl {

// The unit whose entries carry a request's id at the end of their text.
inline constexpr const char* kHaproxyUnit = "haproxy.service";

// The last whitespace-separated field of a message: the request id of HAProxy's request log
// line, whose log-format ends with %ID (haproxy/haproxy.cfg.j2); empty for an empty message.
std::string last_field(const std::string& message);

// Which journal entries `tandemctl logs` prints: those since a moment and, given a request id,
// those of that request alone.
class LogFilter {
 public:
  // `since_us`: 0 for no bound; `request`: empty for every request.
  LogFilter(std::uint64_t since_us, std::string request);

  // The entry as it is printed, or nothing when it is not wanted. An entry is of the request
  // when its TANDEM_REQUEST_ID is the id, or when it is HAProxy's and its line ends with the id;
  // either way exactly, never a part of the text. HAProxy's then gets that id as its request_id.
  std::optional<LogEntry> pass(LogEntry entry) const;

 private:
  std::uint64_t since_us_;
  std::string request_;
};

}  // namespace tandem::ctl
