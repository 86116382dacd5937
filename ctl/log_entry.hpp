#pragma once

#include <cstdint>
#include <string>

namespace tandem::ctl {

// One journal entry as `tandemctl logs` shows it.
struct LogEntry {
  std::uint64_t realtime_us = 0;  // When it was logged: microseconds since the epoch.
  std::string unit;               // The unit it belongs to: tandem@3001.service, haproxy.service.
  std::string instance;           // The instance's id (TANDEM_ID); empty for HAProxy.
  int priority = 6;               // syslog's: 0 emerg ... 3 err, 4 warning ... 7 debug.
  std::string message;
  std::string request_id;  // The request it is about, when known; empty otherwise.
  long pid = 0;            // The process that logged it; 0 when the journal does not say.

  // What the line names as its source: the instance's id, else the unit without ".service".
  std::string source() const;
};

// syslog's name of a priority ("err", "warning", "info"...), or its number as text.
std::string priority_name(int priority);

// The entry for a person, without the final newline: local time with milliseconds, the source
// padded to a column, the message; with `colour`, the message red from err up and yellow for
// warning. A message of several lines continues on lines indented under its first; its other
// control characters (C0 and C1) but tab become "?", bytes that are not UTF-8 U+FFFD.
std::string entry_line(const LogEntry& entry, bool colour);

// One compact JSON object, without the newline: time (ISO-8601 in UTC with microseconds), unit,
// instance (null for HAProxy), priority (its name), pid (null when unknown), request_id (only
// when known) and message, in that order. ASCII only: everything else is escaped, bytes that
// are not UTF-8 as U+FFFD.
std::string entry_json(const LogEntry& entry);

}  // namespace tandem::ctl
