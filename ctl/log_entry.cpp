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

// U+FFFD, which stands for bytes that are not UTF-8.
constexpr const char* kReplacement = "\xef\xbf\xbd";

// The length of the well-formed UTF-8 sequence at text[at] (1 to 4), or 0 when there is none
// there: a stray continuation byte, a truncated or overlong sequence, a surrogate, or beyond
// U+10FFFF (the Unicode standard's table 3-7).
std::size_t utf8_length(const std::string& text, std::size_t at) {
  const auto byte = [&](std::size_t i) {
    return at + i < text.size() ? static_cast<unsigned char>(text[at + i]) : 0u;
  };
  const auto continuation = [&](std::size_t i, unsigned low = 0x80, unsigned high = 0xbf) {
    return byte(i) >= low && byte(i) <= high;
  };
  const unsigned lead = byte(0);
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const unsigned low = lead == 0xe0 ? 0xa0 : 0x80, high = lead == 0xed ? 0x9f : 0xbf;
    return continuation(1, low, high) && continuation(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const unsigned low = lead == 0xf0 ? 0x90 : 0x80, high = lead == 0xf4 ? 0x8f : 0xbf;
    return continuation(1, low, high) && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

// The text with every byte that is not part of well-formed UTF-8 replaced by U+FFFD.
std::string valid_utf8(const std::string& text) {
  std::string valid;
  valid.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = utf8_length(text, at);
    if (length == 0) {
      valid += kReplacement;
      ++at;
    } else {
      valid.append(text, at, length);
      at += length;
    }
  }
  return valid;
}

// The message as a terminal may show it: nothing in it can move the cursor, change colours or
// start a line that looks like another entry. Each line after the first is indented by `indent`
// spaces, under the message (as journalctl does); other C0 and C1 control characters but tab
// become "?", bytes that are not UTF-8 U+FFFD.
std::string printable(const std::string& message, std::size_t indent) {
  const std::string valid = valid_utf8(message);
  std::string text;
  text.reserve(valid.size());
  for (std::size_t at = 0; at < valid.size();) {
    const auto byte = static_cast<unsigned char>(valid[at]);
    const std::size_t length = utf8_length(valid, at);
    if (byte == '\n') {
      text += '\n' + std::string(indent, ' ');
    } else if (byte == '\t') {
      text += '\t';
    } else if (byte < 0x20 || byte == 0x7f ||
               (byte == 0xc2 && static_cast<unsigned char>(valid[at + 1]) < 0xa0)) {
      // C0, DEL, and C1 (U+0080 to U+009F, encoded C2 80 to C2 9F), of which CSI.
      text += '?';
    } else {
      text.append(valid, at, length);
    }
    at += length;
  }
  return text;
}

Json::StreamWriter& compact_writer() {
  static const std::unique_ptr<Json::StreamWriter> writer = [] {
    Json::StreamWriterBuilder builder;
    builder["indentation"] = "";
    // Everything beyond ASCII escaped ("é" as "\u00e9"): a line is plain ASCII, safe on a
    // terminal and in any tool, whatever bytes the message had (made valid UTF-8 first: append).
    builder["emitUTF8"] = false;
    return std::unique_ptr<Json::StreamWriter>(builder.newStreamWriter());
  }();
  return *writer;
}

void append(std::ostringstream& out, const char* key, const Json::Value& value) {
  out << (out.tellp() > 1 ? "," : "") << '"' << key << "\":";
  compact_writer().write(value, &out);
}

// A string from the journal: its bytes are whatever a process logged. jsoncpp would copy or
// misread bytes that are not UTF-8, giving a line that strict parsers refuse; they become U+FFFD.
void append(std::ostringstream& out, const char* key, const std::string& value) {
  append(out, key, Json::Value(valid_utf8(value)));
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
  const std::string time = timestamp(entry.realtime_us, false, "%Y-%m-%d %H:%M:%S", 3);
  const std::string source = pad(printable(entry.source(), 0), kSourceWidth);
  // A message's further lines start under its first.
  const std::size_t indent = time.size() + 1 + visible_width(source);
  return paint(time, Colour::kGrey, colour) + " " + source +
         paint(printable(entry.message, indent), message_colour, colour);
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
