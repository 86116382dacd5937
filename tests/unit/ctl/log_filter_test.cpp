#define BOOST_TEST_MODULE log_filter
#include "log_filter.hpp"

#include <boost/test/unit_test.hpp>

using tandem::ctl::last_field;
using tandem::ctl::LogEntry;
using tandem::ctl::LogFilter;

namespace {

constexpr const char* kId = "50ce36d3-a39c-4856-bbba-bccc74c5dee1";

LogEntry instance_entry(const std::string& request_id) {
  LogEntry entry;
  entry.realtime_us = 2000;
  entry.unit = "tandem@3001.service";
  entry.instance = "app-1";
  entry.request_id = request_id;
  entry.message = R"({"event":"request","request_id":")" + request_id + R"("})";
  return entry;
}

LogEntry haproxy_entry(const std::string& message) {
  LogEntry entry;
  entry.realtime_us = 2000;
  entry.unit = "haproxy.service";
  entry.message = message;
  return entry;
}

std::string haproxy_line(const std::string& id) {
  return "10.0.0.1:53422 [01/Dec/2026:05:32:25.123] tandem_http tandem/app-1 0/0/0/1/1 200 312 "
         "- - ---- 1/1/0/0/0 0/0 \"GET /api/whoami HTTP/1.1\" " +
         id;
}

}  // namespace

BOOST_AUTO_TEST_CASE(without_a_request_every_entry_since_then_passes) {
  const LogFilter filter(2000, "");
  BOOST_TEST(filter.pass(instance_entry(kId)).has_value());
  BOOST_TEST(filter.pass(haproxy_entry("Server tandem/app-2 is DOWN")).has_value());
  // Older than --since: dropped, even when the journal gives it after the seek.
  LogEntry older = instance_entry(kId);
  older.realtime_us = 1999;
  BOOST_TEST(!filter.pass(older).has_value());
  BOOST_TEST(LogFilter(0, "").pass(older).has_value());
  BOOST_TEST(!LogFilter(2000, kId).pass(older).has_value());
}

BOOST_AUTO_TEST_CASE(an_instance_entry_matches_by_its_field_exactly) {
  const LogFilter filter(0, kId);
  const auto passed = filter.pass(instance_entry(kId));
  BOOST_REQUIRE(passed.has_value());
  BOOST_TEST(passed->request_id == kId);
  // An id of which the wanted one is a part, or the other way round: not this request.
  BOOST_TEST(!filter.pass(instance_entry(std::string(kId) + "0")).has_value());
  BOOST_TEST(!LogFilter(0, "50ce36d3").pass(instance_entry(kId)).has_value());
  // The id in the text but not in the field (a message quoting it): not its entry.
  LogEntry quoting = instance_entry("");
  quoting.message = std::string("retrying after ") + kId;
  BOOST_TEST(!filter.pass(quoting).has_value());
}

BOOST_AUTO_TEST_CASE(a_haproxy_entry_matches_by_the_last_field_of_its_line) {
  const LogFilter filter(0, kId);
  const auto passed = filter.pass(haproxy_entry(haproxy_line(kId)));
  BOOST_REQUIRE(passed.has_value());
  BOOST_TEST(passed->request_id == kId);
  BOOST_TEST(passed->message == haproxy_line(kId));
  BOOST_TEST(filter.pass(haproxy_entry(haproxy_line(kId) + "\n")).has_value());
  // Part of the id, the id within another, the id elsewhere in the line: no.
  BOOST_TEST(!LogFilter(0, "bccc74c5dee1").pass(haproxy_entry(haproxy_line(kId))).has_value());
  BOOST_TEST(!LogFilter(0, "50ce36d3").pass(haproxy_entry(haproxy_line(kId))).has_value());
  BOOST_TEST(!filter.pass(haproxy_entry(haproxy_line(std::string("x") + kId))).has_value());
  BOOST_TEST(!filter.pass(haproxy_entry(std::string("GET /?id=") + kId + " 200 -")).has_value());
  BOOST_TEST(
      !LogFilter(0, "DOWN").pass(haproxy_entry("Server tandem/app-2 is DOWN x")).has_value());
  // Only HAProxy's lines are read so: an instance's message ending with the id is not its entry.
  LogEntry instance = instance_entry("");
  instance.message = haproxy_line(kId);
  BOOST_TEST(!filter.pass(instance).has_value());
  // Nor is a request id ever invented for an entry that does not match.
  BOOST_TEST(!filter.pass(haproxy_entry("Server tandem/app-2 is DOWN")).has_value());
}

BOOST_AUTO_TEST_CASE(the_last_field_is_after_the_last_whitespace) {
  BOOST_TEST(last_field("a b c") == "c");
  BOOST_TEST(last_field("a\tb  c \n") == "c");
  BOOST_TEST(last_field("single") == "single");
  BOOST_TEST(last_field("") == "");
  BOOST_TEST(last_field(" \n") == "");
}
