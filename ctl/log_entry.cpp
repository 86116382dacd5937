#include "log_entry.hpp"

#include <json/writer.h>

#include <ctime>
#include <memory>
#include <sstream>

#include "terminal.hpp"

namespace tandem::ctl {
namespace {

// Wide enough for "haproxy" and ids such as "app-12".
constexpr std::size_t kSourceWidth = 8;

// "<date>T<time>" or "<date> <time>" of `realtime_us` in UTC or local time, with `digits`
// decimals of the second (3 or 6).
std::string timestamp(std::uint64_t realtime_us, bool utc, const char* format, int digits) {
  const std::time_t seconds = static_cast<std::time_t>(realtime_us / 1000000);
  const unsigned long micros = static_cast<unsigned long>(realtime_us % 1000000);
  std::tm broken{};
  if (utc) {
    gmtime_r(&seconds, &broken);
  } else {
    localtime_r(&seconds, &broken);
  }
  char text[48];
  const std::size_t length = std::strftime(text, sizeof text, format, &broken);
  if (digits == 3) {
    std::snprintf(text + length, sizeof text - length, ".%03lu", micros / 1000);
  } else {
    std::snprintf(text + length, sizeof text - length, ".%06lu", micros);
  }
  return text;
}

std::string printable(const std::string& message) {
  std::string text = message;
  for (char& c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t' && c != '\n') || byte == 0x7f) c = '?';
  }
  return text;
}

Json::StreamWriter& compact_writer() {
  static const std::unique_ptr<Json::StreamWriter> writer = [] {
    Json::StreamWriterBuilder builder;
    builder["indentation"] = "";
    builder["emitUTF8"] = true;
    return std::unique_ptr<Json::StreamWriter>(builder.newStreamWriter());
  }();
  return *writer;
}

void append(std::ostringstream& out, const char* key, const Json::Value& value) {
  out << (out.tellp() > 1 ? "," : "") << '"' << key << "\":";
  compact_writer().write(value, &out);
}

}  // namespace

std::string LogEntry::source() const {
  if (!instance.empty()) return instance;
  const std::string suffix = ".service";
  if (unit.size() > suffix.size() && unit.ends_with(suffix)) {
    return unit.substr(0, unit.size() - suffix.size());
  }
  return unit.empty() ? "-" : unit;
}

std::string priority_name(int priority) {
  static const char* const kNames[] = {"emerg",   "alert",  "crit", "err",
                                       "warning", "notice", "info", "debug"};
  if (priority >= 0 && priority <= 7) return kNames[priority];
  return std::to_string(priority);
}

std::string entry_line(const LogEntry& entry, bool colour) {
  Colour message_colour = Colour::kNone;
  if (entry.priority >= 0 && entry.priority <= 3) {
    message_colour = Colour::kRed;
  } else if (entry.priority == 4) {
    message_colour = Colour::kYellow;
  }
  return paint(timestamp(entry.realtime_us, false, "%Y-%m-%d %H:%M:%S", 3), Colour::kGrey, colour) +
         " " + pad(entry.source(), kSourceWidth) +
         paint(printable(entry.message), message_colour, colour);
}

std::string entry_json(const LogEntry& entry) {
  // jsoncpp's objects sort their keys: the object is assembled here to keep time first and the
  // message, the longest, last.
  std::ostringstream out;
  out << '{';
  append(out, "time", timestamp(entry.realtime_us, true, "%Y-%m-%dT%H:%M:%S", 6) + "Z");
  append(out, "unit", entry.unit);
  append(out, "instance", entry.instance.empty() ? Json::Value() : Json::Value(entry.instance));
  append(out, "priority", priority_name(entry.priority));
  append(out, "pid",
         entry.pid > 0 ? Json::Value(static_cast<Json::Int64>(entry.pid)) : Json::Value());
  if (!entry.request_id.empty()) append(out, "request_id", entry.request_id);
  append(out, "message", entry.message);
  out << '}';
  return out.str();
}

}  // namespace tandem::ctl
