#define BOOST_TEST_MODULE runtime_api
#include <boost/test/unit_test.hpp>

#include <string>

#include "error.hpp"
#include "runtime_api.hpp"

namespace tandem::ctl {
namespace {

// What HAProxy 2.6's `show stat` prints, cut to the columns tandemctl reads (the header names
// them, so their order does not matter).
const std::string kStat =
    "# pxname,svname,qcur,scur,stot,status,lastchg,check_status,check_code,check_duration,addr,"
    "check_desc,\n"
    "public,FRONTEND,,3,120,OPEN,,,,,,,\n"
    "tandem,app-1,0,2,60,UP,42,L7OK,200,1,127.0.0.1:3001,Layer7 check passed,\n"
    "tandem,app-2,0,0,58,UP 1/2,1,L7OK,200,0,127.0.0.1:3002,Layer7 check passed,\n"
    "tandem,app-3,0,0,0,MAINT,5,L4CON,,,10.0.0.3:3001,Layer4 connection problem,\n"
    "tandem,BACKEND,4,2,118,UP,42,,,,,,\n"
    "stats,FRONTEND,,1,1,OPEN,,,,,,,\n";

BOOST_AUTO_TEST_CASE(show_stat_reads_by_header) {
  const BackendStat backend = backend_from_csv(kStat, "tandem");
  BOOST_TEST_REQUIRE(backend.servers.size() == 3u);
  const ServerStat& app1 = backend.servers[0];
  BOOST_TEST(app1.name == "app-1");
  BOOST_TEST(app1.address == "127.0.0.1:3001");
  BOOST_TEST(app1.current == 2);
  BOOST_TEST(app1.check_status == "L7OK");
  BOOST_TEST(app1.check_code == "200");
  BOOST_TEST(app1.check_ms == 1);
  BOOST_TEST(app1.fully_up());
  BOOST_TEST(backend.servers[1].state() == "UP");
  BOOST_TEST(!backend.servers[1].fully_up());  // Just back: its first check is still to pass.
  BOOST_TEST(backend.servers[2].state() == "MAINT");
  BOOST_TEST(backend.servers[2].check_ms == -1);
  BOOST_TEST(backend.queued == 4);
}

BOOST_AUTO_TEST_CASE(an_unknown_backend_is_a_usage_error) {
  try {
    backend_from_csv(kStat, "nope");
    BOOST_FAIL("no error for a backend HAProxy does not have");
  } catch (const CtlError& error) {
    BOOST_TEST(error.status() == kExitUsage);
    BOOST_TEST(error.hint().find("--backend") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(show_info_gives_the_header_line) {
  const HaproxyInfo info = parse_info(
      "Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 77\nUptime_sec: 3600\nMaxconn: 2000\n"
      "CurrConns: 12\nMemmax_MB: \n");
  BOOST_TEST(info.version == "2.6.12-1+deb12u4");
  BOOST_TEST(info.pid == 77);
  BOOST_TEST(info.uptime_s == 3600);
  BOOST_TEST(info.max_connections == 2000);
  BOOST_TEST(info.current_connections == 12);
}

BOOST_AUTO_TEST_CASE(a_missing_socket_says_what_to_do) {
  try {
    RuntimeApi("/nonexistent/admin.sock").command("show info");
    BOOST_FAIL("no error for a missing socket");
  } catch (const CtlError& error) {
    BOOST_TEST(error.status() == kExitFailed);
    BOOST_TEST(error.hint().find("systemctl start haproxy") != std::string::npos);
  }
}

}  // namespace
}  // namespace tandem::ctl
