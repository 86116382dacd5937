#include "tandem/log.hpp"

#include <json/writer.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <sstream>

namespace tandem {
namespace {

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// One compact writer per thread: building a StreamWriter costs more than writing a short line,
// and the access log writes one line per request.
Json::StreamWriter& compact_writer() {
  thread_local const std::unique_ptr<Json::StreamWriter> writer = [] {
    Json::StreamWriterBuilder builder;
    builder["indentation"] = "";
    builder["emitUTF8"] = true;
    // Fifteen significant digits print 0.1 as 0.1 instead of 0.10000000000000001.
    builder["precision"] = 15;
    return std::unique_ptr<Json::StreamWriter>(builder.newStreamWriter());
  }();
  return *writer;
}

// Appends `value` as compact JSON; jsoncpp does the escaping of strings and keys.
void append_json(std::ostringstream& line, const Json::Value& value) {
  compact_writer().write(value, &line);
}

// ISO-8601 in UTC with milliseconds, such as 2026-11-26T18:20:01.123Z.
std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto since_epoch = now.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const std::time_t time = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&time, &utc);
  char buffer[40];
  const std::size_t length = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buffer + length, sizeof buffer - length, ".%03dZ", static_cast<int>(millis));
  return buffer;
}

}  // namespace

Log::Log(std::string instance, std::FILE* out) : instance_(std::move(instance)), out_(out) {}

void Log::write(LogLevel level, std::string_view event, Fields fields) {
  std::string line = render(level, event, fields);
  line += '\n';
  // One fwrite per line keeps lines whole; a failed write to a closed stdout is not worth dying
  // for, so its result is ignored.
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

std::string Log::render(LogLevel level, std::string_view event, Fields fields) const {
  // jsoncpp's objects sort their keys, so the line is assembled here to keep ts, level, instance
  // and event first and the fields in the order given.
  std::ostringstream line;
  line << "{\"ts\":";
  append_json(line, Json::Value(utc_timestamp()));
  line << ",\"level\":";
  append_json(line, Json::Value(level_name(level)));
  line << ",\"instance\":";
  append_json(line, Json::Value(instance_));
  line << ",\"event\":";
  append_json(line, Json::Value(std::string(event)));
  for (const auto& [key, value] : fields) {
    line << ',';
    append_json(line, Json::Value(key != nullptr ? key : ""));
    line << ':';
    append_json(line, value);
  }
  line << '}';
  return line.str();
}

}  // namespace tandem
