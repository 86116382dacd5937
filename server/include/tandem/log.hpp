#pragma once

#include <json/value.h>

#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace tandem {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Writes one JSON object per line: {"ts","level","instance","event", ...fields}, flushed at once.
//
// When `out` is the stream systemd connected to journald (JOURNAL_STREAM names it), each line goes
// to the journal directly instead, as an entry whose MESSAGE is the same JSON line and which also
// carries the line's parts as fields of their own: PRIORITY from the level, TANDEM_INSTANCE,
// TANDEM_EVENT, and TANDEM_<KEY> for each field (TANDEM_REQUEST_ID, TANDEM_STATUS, ...). journald
// indexes fields, so `journalctl TANDEM_REQUEST_ID=<id>` finds a request's line without reading
// every message, and `journalctl -o json` hands them to a program already split.
class Log {
 public:
  using Fields = std::initializer_list<std::pair<const char*, Json::Value>>;

  explicit Log(std::string instance, std::FILE* out = stdout);

  // Whether lines go to the journal as entries with fields (see above).
  bool to_journal() const { return journal_; }

  void debug(std::string_view event, Fields fields = {}) { write(LogLevel::kDebug, event, fields); }
  void info(std::string_view event, Fields fields = {}) { write(LogLevel::kInfo, event, fields); }
  void warn(std::string_view event, Fields fields = {}) { write(LogLevel::kWarn, event, fields); }
  void error(std::string_view event, Fields fields = {}) { write(LogLevel::kError, event, fields); }

  // Writes one line with `level`, `event` and `fields`.
  void write(LogLevel level, std::string_view event, Fields fields);
  // Renders the line write() would print, without the trailing newline (for tests).
  std::string render(LogLevel level, std::string_view event, Fields fields) const;

 private:
  // Sends one entry with the line as MESSAGE and the fields; false when the journal refused it.
  bool send_to_journal(const std::string& line, LogLevel level, std::string_view event,
                       Fields fields) const;

  std::string instance_;
  std::FILE* out_;
  bool journal_ = false;
};

}  // namespace tandem
