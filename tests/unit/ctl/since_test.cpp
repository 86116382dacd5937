#define BOOST_TEST_MODULE since
#include "since.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <ctime>

#include "error.hpp"

using tandem::ctl::CtlError;
using tandem::ctl::kExitUsage;
using tandem::ctl::parse_since;
using Clock = std::chrono::system_clock;

namespace {

// Dates are local time: the tests fix the zone to one with a daylight saving change.
struct BerlinTime {
  BerlinTime() {
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
  }
};

// 2026-03-29 12:34:56 in Berlin (CEST, UTC+2, since 02:00 that night): 10:34:56 UTC.
const Clock::time_point kNow = Clock::from_time_t(1774780496);

long long epoch(Clock::time_point moment) {
  return std::chrono::duration_cast<std::chrono::seconds>(moment.time_since_epoch()).count();
}

// The exit status and message of parse_since(text), which must throw.
std::string rejected(const std::string& text) {
  try {
    parse_since(text, kNow);
  } catch (const CtlError& error) {
    BOOST_TEST(error.status() == kExitUsage);
    return error.what();
  }
  BOOST_FAIL("\"" + text + "\" was accepted");
  return {};
}

}  // namespace

BOOST_GLOBAL_FIXTURE(BerlinTime);

BOOST_AUTO_TEST_CASE(durations_count_back_from_now) {
  BOOST_TEST(epoch(parse_since("30s", kNow)) == epoch(kNow) - 30);
  BOOST_TEST(epoch(parse_since("10m", kNow)) == epoch(kNow) - 600);
  BOOST_TEST(epoch(parse_since("2h", kNow)) == epoch(kNow) - 7200);
  BOOST_TEST(epoch(parse_since("1d", kNow)) == epoch(kNow) - 86400);
  BOOST_TEST(epoch(parse_since("90m", kNow)) == epoch(kNow) - 5400);
}

BOOST_AUTO_TEST_CASE(today_and_yesterday_are_local_midnights) {
  // Midnight of 29 March was still CET (UTC+1): 28 March 23:00 UTC.
  BOOST_TEST(epoch(parse_since("today", kNow)) == 1774738800);
  // Yesterday's midnight, also winter time: 24 hours before.
  BOOST_TEST(epoch(parse_since("yesterday", kNow)) == 1774738800 - 86400);
}

BOOST_AUTO_TEST_CASE(dates_and_times_are_local) {
  BOOST_TEST(epoch(parse_since("2026-03-29", kNow)) == 1774738800);
  BOOST_TEST(epoch(parse_since("2026-03-29 12:34", kNow)) == 1774780440);
  BOOST_TEST(epoch(parse_since("2026-03-29 12:34:56", kNow)) == 1774780496);
  BOOST_TEST(epoch(parse_since("2026-03-29T12:34:56", kNow)) == 1774780496);
  // In winter time, one hour from UTC.
  BOOST_TEST(epoch(parse_since("2026-01-15 08:00", kNow)) == 1768460400);
}

BOOST_AUTO_TEST_CASE(anything_else_names_the_accepted_forms) {
  for (const char* text :
       {"", "nonsense", "10", "m", "10x", "-5m", "1.5h", "10 m", "10M", "2026-3-29", "2026/03/29",
        "2026-03-29 12", "2026-03-29 12:34:5", "2026-03-29 12:34:56 ", "now"}) {
    const std::string message = rejected(text);
    BOOST_TEST(message.find("--since \"" + std::string(text) + "\"") != std::string::npos);
    BOOST_TEST(message.find("10m") != std::string::npos);
    BOOST_TEST(message.find("yesterday") != std::string::npos);
    BOOST_TEST(message.find("YYYY-MM-DD HH:MM[:SS]") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(impossible_values_are_refused) {
  BOOST_TEST(rejected("2026-02-30").find("no such date") != std::string::npos);
  BOOST_TEST(rejected("2026-13-01").find("no such date") != std::string::npos);
  BOOST_TEST(rejected("2026-03-29 24:00").find("no such date") != std::string::npos);
  BOOST_TEST(rejected("2026-03-29 12:60").find("no such date") != std::string::npos);
  BOOST_TEST(rejected("0s").find("zero") != std::string::npos);
  BOOST_TEST(rejected("99999999999999999999d").find("too long ago") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(times_the_clocks_skip_are_refused) {
  // On 29 March 2026 Berlin's clocks went from 02:00 CET to 03:00 CEST.
  for (const char* text : {"2026-03-29 02:00", "2026-03-29 02:30", "2026-03-29T02:59:59"}) {
    BOOST_TEST(rejected(text).find("no such time") != std::string::npos, text);
  }
  // Either side of the gap exists: 01:59:59 CET and 03:00 CEST are one second apart.
  BOOST_TEST(epoch(parse_since("2026-03-29 03:00", kNow)) -
                 epoch(parse_since("2026-03-29 01:59:59", kNow)) ==
             1);
  // The hour the clocks repeat in October exists (twice): it is accepted.
  BOOST_CHECK_NO_THROW(parse_since("2026-10-25 02:30", kNow));
}

BOOST_AUTO_TEST_CASE(yesterday_is_a_calendar_day_even_of_23_hours) {
  // 30 March 2026 10:00 CEST (08:00 UTC); 29 March had 23 hours.
  const Clock::time_point monday = Clock::from_time_t(1774857600);
  BOOST_TEST(epoch(parse_since("today", monday)) == 1774821600);  // 29 March 22:00 UTC.
  // 28 March 23:00 UTC: 23 hours before today's midnight, not 24.
  BOOST_TEST(epoch(parse_since("yesterday", monday)) == 1774821600 - 23 * 3600);
}
