#include "tandem/log.hpp"

#include <json/writer.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <sstream>
#include <vector>

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

// syslog's priorities, which journald filters on (journalctl -p warning).
int priority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 7;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kWarn:
      return 4;
    case LogLevel::kError:
      return 3;
  }
  return 6;
}

// Whether `file` is the stream systemd connected to journald: JOURNAL_STREAM is "<dev>:<inode>"
// of that stream (systemd.exec(5)); a process whose stdout was redirected keeps the variable but
// not the stream. And whether journald's socket is there: sd_journal_send drops an entry without
// an error when it is not, and the line must not be lost.
bool is_journal_stream(std::FILE* file) {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr || file == nullptr) return false;
  if (access("/run/systemd/journal/socket", F_OK) != 0) return false;
  struct stat status {};
  if (fstat(fileno(file), &status) != 0) return false;
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  return status.st_dev == device && status.st_ino == inode;
}

// "request_id" -> "TANDEM_REQUEST_ID": journald's field names are upper-case letters, digits and
// underscores.
std::string field_name(std::string_view key) {
  std::string name = "TANDEM_";
  for (char c : key) {
    name += std::isalnum(static_cast<unsigned char>(c))
                ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                : '_';
  }
  return name;
}

}  // namespace

Log::Log(std::string instance, std::FILE* out)
    : instance_(std::move(instance)), out_(out), journal_(is_journal_stream(out)) {}

bool Log::send_to_journal(const std::string& line, LogLevel level, std::string_view event,
                          Fields fields) const {
  std::vector<std::string> parts;
  parts.reserve(fields.size() + 5);
  parts.push_back("MESSAGE=" + line);
  parts.push_back("PRIORITY=" + std::to_string(priority(level)));
  parts.push_back(std::string("SYSLOG_IDENTIFIER=") + program_invocation_short_name);
  parts.push_back("TANDEM_INSTANCE=" + instance_);
  parts.push_back("TANDEM_EVENT=" + std::string(event));
  for (const auto& [key, value] : fields) {
    if (key == nullptr) continue;
    std::string text;
    if (value.isString()) {
      text = value.asString();
    } else {
      std::ostringstream json;
      append_json(json, value);
      text = json.str();
    }
    parts.push_back(field_name(key) + "=" + text);
  }
  std::vector<iovec> vector(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    vector[i] = iovec{parts[i].data(), parts[i].size()};
  }
  return sd_journal_sendv(vector.data(), static_cast<int>(vector.size())) >= 0;
}

void Log::write(LogLevel level, std::string_view event, Fields fields) {
  std::string line = render(level, event, fields);
  if (journal_ && send_to_journal(line, level, event, fields)) return;
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
