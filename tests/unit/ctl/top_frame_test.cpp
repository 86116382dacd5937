#define BOOST_TEST_MODULE top_frame
#include "top_frame.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>

using namespace tandem::ctl;

namespace {

InstanceView instance(const std::string& id, double requests_per_s, bool reachable = true) {
  InstanceView view;
  view.id = id;
  ServerStat server;
  server.name = id;
  server.status = "UP";
  server.current = 2;
  view.server = server;
  view.probe.reachable = reachable;
  if (!reachable) view.probe.error = "GET http://127.0.0.1:3001/health: Connection refused";
  view.probe.sessions = 5;
  view.probe.uptime_s = 75;
  view.rates.requests_per_s = requests_per_s;
  view.rates.p99_s = 0.0012;
  view.rates.measured = reachable;
  return view;
}

FleetView fleet_of(std::vector<InstanceView> instances) {
  FleetView fleet;
  fleet.instances = std::move(instances);
  fleet.haproxy = HaproxyInfo{"2.6.12", 42, 3600, 7, 4096};
  fleet.backend = BackendStat{{}, 3, 4};
  return fleet;
}

TopFrameContext context(std::size_t rows = 24) {
  TopFrameContext context;
  context.clock = "14:03:22";
  context.rows = rows;
  context.backend = "tandem";
  return context;
}

const std::string* line_starting(const std::vector<std::string>& lines, const std::string& start) {
  auto found = std::find_if(lines.begin(), lines.end(),
                            [&](const std::string& line) { return line.rfind(start, 0) == 0; });
  return found == lines.end() ? nullptr : &*found;
}

}  // namespace

BOOST_AUTO_TEST_CASE(header_rows_total_and_footer) {
  const auto lines = top_frame(fleet_of({instance("app-1", 30), instance("app-2", 10)}), context());
  BOOST_TEST(lines[0] == "tandemctl top  14:03:22  haproxy 2.6.12  conns 7/4096  tandem queue 3");
  BOOST_TEST(lines[2].rfind("ID        HAPROXY  REQ/S    SHARE  P99      ERR/S   CONNS  SESSIONS "
                            "UPTIME",
                            0) == 0);
  BOOST_TEST(*line_starting(lines, "app-1") ==
             "app-1     UP       30.0     75.0%  1.2ms    0.0     2      5        1m15s");
  BOOST_TEST(*line_starting(lines, "app-2") ==
             "app-2     UP       10.0     25.0%  1.2ms    0.0     2      5        1m15s");
  BOOST_TEST(*line_starting(lines, "total") ==
             "total              40.0     100%            0.0     4      10");
  BOOST_TEST(lines.back() == "q quit   every 1s");
}

BOOST_AUTO_TEST_CASE(no_rates_before_the_second_sample_nor_a_share_of_nothing) {
  auto first = instance("app-1", 0);
  first.rates.measured = false;
  auto idle = instance("app-2", 0);
  const auto lines = top_frame(fleet_of({first, idle}), context());
  BOOST_TEST(line_starting(lines, "app-1")->substr(10, 31) == "UP       -        -      -     ");
  BOOST_TEST(line_starting(lines, "app-2")->substr(19, 16) == "0.0      -      ");
}

BOOST_AUTO_TEST_CASE(an_instance_that_does_not_answer_says_why) {
  const auto lines =
      top_frame(fleet_of({instance("app-1", 0, false), instance("app-2", 20)}), context());
  BOOST_TEST(*line_starting(lines, "app-1") ==
             "app-1     UP       unreachable: Connection refused");
  // Its zero does not count in the others' share.
  BOOST_TEST(line_starting(lines, "app-2")->find("100.0%") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(haproxy_unreachable_is_said_with_what_to_do) {
  FleetView fleet = fleet_of({instance("app-1", 5)});
  fleet.instances[0].server.reset();
  fleet.haproxy.reset();
  fleet.backend.reset();
  fleet.haproxy_error = "no HAProxy runtime socket at /run/haproxy/admin.sock";
  fleet.haproxy_hint = "is HAProxy running on this host?";
  const auto lines = top_frame(fleet, context());
  BOOST_TEST(lines[0] ==
             "tandemctl top  14:03:22  haproxy unreachable: no HAProxy runtime socket at "
             "/run/haproxy/admin.sock");
  BOOST_TEST(lines[1] == "  is HAProxy running on this host?");
  BOOST_TEST(line_starting(lines, "app-1")->substr(10, 9) == "-        ");
}

BOOST_AUTO_TEST_CASE(a_short_screen_drops_instances_first_and_says_so) {
  FleetView fleet = fleet_of({instance("app-1", 1), instance("app-2", 1), instance("app-3", 1)});
  const auto lines = top_frame(fleet, context(7));
  BOOST_TEST(lines.size() == 7u);
  BOOST_TEST(line_starting(lines, "app-1") != nullptr);
  BOOST_TEST(line_starting(lines, "app-2") == nullptr);
  BOOST_TEST(lines.back() ==
             "q quit   every 1s   2 instances not shown: a taller window shows them");
  BOOST_TEST(top_frame(fleet, context(3)).size() == 3u);
  BOOST_TEST(top_frame(fleet, context(0)).empty());
}
