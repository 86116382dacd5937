#define BOOST_TEST_MODULE log_entry
#include "log_entry.hpp"

#include <json/reader.h>
#include <json/value.h>

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <ctime>
#include <memory>

using tandem::ctl::entry_json;
using tandem::ctl::entry_line;
using tandem::ctl::LogEntry;
using tandem::ctl::priority_name;

namespace {

// Lines show local time: the tests fix the zone (Berlin, UTC+1 in January).
struct BerlinTime {
  BerlinTime() {
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
  }
};

// 2026-01-15 07:08:09.012345 UTC.
constexpr std::uint64_t kWhen = 1768460889012345ULL;

LogEntry instance_entry() {
  LogEntry entry;
  entry.realtime_us = kWhen;
  entry.unit = "tandem@3001.service";
  entry.instance = "app-1";
  entry.priority = 6;
  entry.message = R"({"ts":"...","level":"info","event":"request","status":200})";
  entry.request_id = "7F000001:A1B2_7F000001:1F90_6789ABCD_0001:2B3C";
  entry.pid = 4242;
  return entry;
}

LogEntry haproxy_entry() {
  LogEntry entry;
  entry.realtime_us = kWhen + 1;
  entry.unit = "haproxy.service";
  entry.priority = 4;
  entry.message = "Server tandem/app-2 is DOWN";
  entry.pid = 77;
  return entry;
}

Json::Value parse(const std::string& text) {
  Json::CharReaderBuilder builder;
  std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  Json::Value value;
  std::string errors;
  BOOST_REQUIRE_MESSAGE(reader->parse(text.data(), text.data() + text.size(), &value, &errors),
                        errors + " in " + text);
  return value;
}

}  // namespace

BOOST_GLOBAL_FIXTURE(BerlinTime);

BOOST_AUTO_TEST_CASE(a_line_has_local_time_source_and_message) {
  BOOST_TEST(entry_line(instance_entry(), false) ==
             "2026-01-15 08:08:09.012 app-1   " + instance_entry().message);
  BOOST_TEST(entry_line(haproxy_entry(), false) ==
             "2026-01-15 08:08:09.012 haproxy Server tandem/app-2 is DOWN");
}

BOOST_AUTO_TEST_CASE(colour_follows_the_priority) {
  LogEntry entry = haproxy_entry();
  // Warning: yellow message, grey time.
  BOOST_TEST(entry_line(entry, true) ==
             "\033[90m2026-01-15 08:08:09.012\033[0m haproxy \033[33mServer tandem/app-2 is "
             "DOWN\033[0m");
  for (int priority : {0, 1, 2, 3}) {
    entry.priority = priority;
    BOOST_TEST(entry_line(entry, true).find("\033[31mServer") != std::string::npos);
  }
  for (int priority : {5, 6, 7}) {
    entry.priority = priority;
    BOOST_TEST(entry_line(entry, true).ends_with(" haproxy Server tandem/app-2 is DOWN"));
  }
}

BOOST_AUTO_TEST_CASE(a_line_shows_no_control_character_but_tab) {
  LogEntry entry = haproxy_entry();
  entry.message = "a\tb\033[2Jd\re\x7f\x01";
  BOOST_TEST(entry_line(entry, false).ends_with("haproxy a\tb?[2Jd?e??"));
  // C1 controls, of which CSI (U+009B, C2 9B), which terminals take as ESC [.
  entry.message =
      "x\xc2\x9b"
      "2Jy\xc2\x80z\xc2\x9f";
  BOOST_TEST(entry_line(entry, false).ends_with("haproxy x?2Jy?z?"));
  // U+00A0 and beyond are characters.
  entry.message = "caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80";
  BOOST_TEST(entry_line(entry, false).ends_with("haproxy " + entry.message));
}

BOOST_AUTO_TEST_CASE(further_lines_of_a_message_are_indented_under_it) {
  LogEntry entry = instance_entry();
  // A message that would forge an entry of another source on the next line.
  entry.message = "first\n2026-01-15 08:08:10.000 haproxy forged\nthird";
  const std::string indent(32, ' ');
  BOOST_TEST(entry_line(entry, false) == "2026-01-15 08:08:09.012 app-1   first\n" + indent +
                                             "2026-01-15 08:08:10.000 haproxy forged\n" + indent +
                                             "third");
  // Coloured: the indentation counts the columns, not the colour sequences.
  entry.priority = 3;
  BOOST_TEST(entry_line(entry, true).find("first\n" + indent + "2026") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_utf8_are_shown_as_replacement_characters) {
  LogEntry entry = haproxy_entry();
  const std::string replacement = "\xef\xbf\xbd";
  // A stray continuation byte, a truncated sequence, an overlong one, a surrogate, a lone lead.
  entry.message =
      "a\x80"
      "b\xc3"
      "c\xc0\xaf"
      "d\xed\xa0\x80"
      "e\xff";
  BOOST_TEST(entry_line(entry, false)
                 .ends_with("haproxy a" + replacement + "b" + replacement + "c" + replacement +
                            replacement + "d" + replacement + replacement + replacement + "e" +
                            replacement));
  // A truncated sequence does not swallow the character after it, nor a newline.
  entry.message = "x\xe2\x82\ny";
  BOOST_TEST(
      entry_line(entry, false)
          .ends_with("haproxy x" + replacement + replacement + "\n" + std::string(32, ' ') + "y"));
}

BOOST_AUTO_TEST_CASE(the_source_is_the_id_else_the_unit) {
  BOOST_TEST(instance_entry().source() == "app-1");
  BOOST_TEST(haproxy_entry().source() == "haproxy");
  LogEntry unknown;
  unknown.unit = "tandem@3009.service";
  BOOST_TEST(unknown.source() == "tandem@3009");
  BOOST_TEST(LogEntry{}.source() == "-");
}

BOOST_AUTO_TEST_CASE(json_has_every_field_in_order) {
  const std::string text = entry_json(instance_entry());
  BOOST_TEST(
      text.starts_with(R"({"time":"2026-01-15T07:08:09.012345Z","unit":"tandem@3001.service",)"
                       R"("instance":"app-1","priority":"info","pid":4242,"request_id":)"));
  const Json::Value value = parse(text);
  BOOST_TEST(value["time"].asString() == "2026-01-15T07:08:09.012345Z");
  BOOST_TEST(value["unit"].asString() == "tandem@3001.service");
  BOOST_TEST(value["instance"].asString() == "app-1");
  BOOST_TEST(value["priority"].asString() == "info");
  BOOST_TEST(value["pid"].asInt() == 4242);
  BOOST_TEST(value["request_id"].asString() == instance_entry().request_id);
  // The instance's own JSON line stays a string, escaped.
  BOOST_TEST(value["message"].asString() == instance_entry().message);
  BOOST_TEST(value.size() == 7u);
}

BOOST_AUTO_TEST_CASE(json_says_null_for_what_is_not_known) {
  LogEntry entry = haproxy_entry();
  entry.pid = 0;
  entry.message = "quote \" backslash \\ newline \n tab \t control \x01 caf\xc3\xa9";
  const std::string text = entry_json(entry);
  BOOST_TEST(text.find('\n') == std::string::npos);
  const Json::Value value = parse(text);
  BOOST_TEST(value["instance"].isNull());
  BOOST_TEST(value["pid"].isNull());
  BOOST_TEST(!value.isMember("request_id"));
  BOOST_TEST(value["priority"].asString() == "warning");
  BOOST_TEST(value["time"].asString() == "2026-01-15T07:08:09.012346Z");
  BOOST_TEST(value["message"].asString() == entry.message);
}

BOOST_AUTO_TEST_CASE(json_is_ascii_and_valid_whatever_the_message_holds) {
  LogEntry entry = haproxy_entry();
  entry.message =
      "caf\xc3\xa9 \xc2\x9b"
      "2J bad\xff\x80 cut\xe2\x82";
  entry.request_id = "id\xfe";
  const std::string text = entry_json(entry);
  // Nothing for a terminal to interpret, nothing a strict parser refuses.
  for (const char c : text) BOOST_TEST(static_cast<unsigned char>(c) < 0x80);
  Json::CharReaderBuilder builder;
  Json::CharReaderBuilder::strictMode(&builder.settings_);
  const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  Json::Value value;
  std::string errors;
  BOOST_REQUIRE_MESSAGE(reader->parse(text.data(), text.data() + text.size(), &value, &errors),
                        errors + " in " + text);
  const std::string replacement = "\xef\xbf\xbd";
  BOOST_TEST(value["message"].asString() ==
             "caf\xc3\xa9 \xc2\x9b"
             "2J bad" +
                 replacement + replacement + " cut" + replacement + replacement);
  BOOST_TEST(value["request_id"].asString() == "id" + replacement);
  BOOST_TEST(text.find(R"(caf\u00e9 \u009b2J bad\ufffd\ufffd cut\ufffd\ufffd)") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(priorities_have_syslog_names) {
  BOOST_TEST(priority_name(0) == "emerg");
  BOOST_TEST(priority_name(3) == "err");
  BOOST_TEST(priority_name(4) == "warning");
  BOOST_TEST(priority_name(5) == "notice");
  BOOST_TEST(priority_name(7) == "debug");
  BOOST_TEST(priority_name(9) == "9");
}
