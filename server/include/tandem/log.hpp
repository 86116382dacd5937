#pragma once

#include <json/value.h>

#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace tandem {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Writes one JSON object per line: {"ts","level","instance","event", ...fields}.
// journald keeps stdout, so each line is flushed as soon as it is written.
class Log {
 public:
  using Fields = std::initializer_list<std::pair<const char*, Json::Value>>;

  explicit Log(std::string instance, std::FILE* out = stdout);

  void debug(std::string_view event, Fields fields = {}) { write(LogLevel::kDebug, event, fields); }
  void info(std::string_view event, Fields fields = {}) { write(LogLevel::kInfo, event, fields); }
  void warn(std::string_view event, Fields fields = {}) { write(LogLevel::kWarn, event, fields); }
  void error(std::string_view event, Fields fields = {}) { write(LogLevel::kError, event, fields); }

  // Writes one line with `level`, `event` and `fields`.
  void write(LogLevel level, std::string_view event, Fields fields);
  // Renders the line write() would print, without the trailing newline (for tests).
  std::string render(LogLevel level, std::string_view event, Fields fields) const;

 private:
  std::string instance_;
  std::FILE* out_;
};

}  // namespace tandem
