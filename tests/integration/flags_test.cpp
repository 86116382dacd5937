// The command line: every bad value is one line on stderr and exit code 2 before anything
// listens; --help and --version; durations in all documented forms; TANDEM_<NAME> variables;
// --bind.
#define BOOST_TEST_MODULE flags
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "raw_client.hpp"
#include "server_process.hpp"

using namespace tandem::test;
using namespace std::chrono_literals;

namespace {

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
         (text.empty() || text.back() == '\n' ? 0 : 1);
}

// Runs the server with a bad command line: it must exit 2 at once with exactly one non-empty
// line on stderr, and `port` (a quiet_port(), which no server of a test running in parallel can
// take) must never accept a connection meanwhile.
void expect_bad_flags(const std::vector<std::string>& args, uint16_t port,
                      const std::vector<std::pair<std::string, std::string>>& env = {}) {
  std::string shown;
  for (const auto& arg : args) shown += arg + " ";
  for (const auto& [name, value] : env) shown = name + "=" + value + " " + shown;
  BOOST_TEST_CONTEXT("tandem-server " << shown) {
    RunResult run = run_to_exit(args, 5000ms, port, env);
    BOOST_TEST_REQUIRE(run.status.has_value(), "still running after 5 s (killed); stderr: "
                                                   << run.err << "; stdout: " << run.out);
    BOOST_TEST(run.status->exited, run.status->describe());
    BOOST_TEST(run.status->code == 2, run.status->describe() << "; stderr: " << run.err);
    BOOST_TEST(count_lines(run.err) == 1u, "stderr must be one line: '" << run.err << "'");
    BOOST_TEST(run.err.find_first_not_of(" \n") != std::string::npos, "stderr is empty");
    BOOST_TEST(!run.port_was_open, "port " << port << " accepted a connection");
    BOOST_TEST(!can_connect("127.0.0.1", port, 100ms), "port " << port << " is listening");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(bad_port_values_exit_2) {
  uint16_t port = quiet_port();
  // 65536 + port would land on `port` if the value were truncated to 16 bits.
  expect_bad_flags({"--port", std::to_string(65536 + port)}, port);
  expect_bad_flags({"--port", "abc"}, port);
  expect_bad_flags({"--port", "-1"}, port);
  expect_bad_flags({"--port", ""}, port);
  expect_bad_flags({"--port", std::to_string(port) + "x"}, port);
  expect_bad_flags({"--port"}, port);
}

BOOST_AUTO_TEST_CASE(unknown_flag_exits_2) {
  uint16_t port = quiet_port();
  expect_bad_flags({"--port", std::to_string(port), "--no-such-flag"}, port);
  expect_bad_flags({"--port", std::to_string(port), "--no-such-flag=1"}, port);
  expect_bad_flags({"--port", std::to_string(port), "stray-argument"}, port);
}

BOOST_AUTO_TEST_CASE(bad_durations_exit_2) {
  uint16_t port = quiet_port();
  for (const std::string flag : {"--keepalive-timeout", "--header-timeout", "--drain-grace",
                                 "--drain-timeout", "--session-ttl"}) {
    for (const std::string value : {"abc", "5 parsecs", "10x", "-1s", "ms", ""}) {
      expect_bad_flags({"--port", std::to_string(port), flag, value}, port);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_numbers_exit_2) {
  uint16_t port = quiet_port();
  for (const std::string flag : {"--max-header-bytes", "--max-body-bytes", "--max-connections",
                                 "--max-sessions", "--max-session-bytes", "--worker-queue"}) {
    for (const std::string value : {"abc", "-5", "12abc"}) {
      expect_bad_flags({"--port", std::to_string(port), flag, value}, port);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_session_store_exits_2) {
  uint16_t port = quiet_port();
  for (const std::string value :
       {"postgres://localhost:5432", "redis://", "redis://localhost:notaport", "memory2",
        "redis://localhost:6379/notadb", ""}) {
    expect_bad_flags({"--port", std::to_string(port), "--session-store", value}, port);
  }
}

BOOST_AUTO_TEST_CASE(bad_bind_address_exits_2) {
  uint16_t port = quiet_port();
  expect_bad_flags({"--port", std::to_string(port), "--bind", "999.1.1.1"}, port);
  expect_bad_flags({"--port", std::to_string(port), "--bind", "not an address"}, port);
}

BOOST_AUTO_TEST_CASE(drain_timeout_not_above_drain_grace_exits_2) {
  uint16_t port = quiet_port();
  expect_bad_flags({"--port", std::to_string(port), "--drain-grace", "5s", "--drain-timeout", "5s"},
                   port);
  expect_bad_flags({"--port", std::to_string(port), "--drain-grace", "5s", "--drain-timeout", "2s"},
                   port);
  expect_bad_flags(
      {"--port", std::to_string(port), "--drain-grace", "3000ms", "--drain-timeout", "3"}, port);
}

BOOST_AUTO_TEST_CASE(bad_values_in_the_environment_exit_2) {
  uint16_t port = quiet_port();
  expect_bad_flags({"--port", std::to_string(port)}, port, {{"TANDEM_KEEPALIVE_TIMEOUT", "abc"}});
  expect_bad_flags({}, port, {{"TANDEM_PORT", std::to_string(65536 + port)}});
  expect_bad_flags({"--port", std::to_string(port)}, port,
                   {{"TANDEM_SESSION_STORE", "postgres://x:1"}});
}

BOOST_AUTO_TEST_CASE(help_lists_every_flag_and_exits_0) {
  RunResult run = run_to_exit({"--help"}, 5000ms);
  BOOST_TEST_REQUIRE(run.status.has_value());
  BOOST_TEST(run.status->exited);
  BOOST_TEST(run.status->code == 0, run.status->describe());
  for (const std::string flag :
       {"--port", "--bind", "--id", "--session-store", "--max-sessions", "--session-ttl",
        "--max-header-bytes", "--max-body-bytes", "--keepalive-timeout", "--header-timeout",
        "--max-connections", "--drain-grace", "--drain-timeout", "--access-log", "--slow-request",
        "--help", "--version"}) {
    BOOST_TEST(run.out.find(flag) != std::string::npos, "--help does not mention " << flag << ":\n"
                                                                                   << run.out);
  }
}

BOOST_AUTO_TEST_CASE(version_prints_name_and_version_and_exits_0) {
  RunResult run = run_to_exit({"--version"}, 5000ms);
  BOOST_TEST_REQUIRE(run.status.has_value());
  BOOST_TEST(run.status->exited);
  BOOST_TEST(run.status->code == 0, run.status->describe());
  BOOST_TEST(std::regex_match(run.out, std::regex{R"(tandem-server \d+\.\d+\.\d+\S*\n?)"}),
             "--version printed '" << run.out << "'");
}

BOOST_AUTO_TEST_CASE(durations_accept_ms_s_and_bare_seconds) {
  // Each form of the same idle keep-alive timeout closes an idle connection at that time: a unit
  // read wrongly (1500 s, or 1 ms for a bare 1) shows as far too late or at once.
  struct Case {
    std::string value;
    double expected_ms;
  };
  for (const Case& c : {Case{"1500ms", 1500}, Case{"1s", 1000}, Case{"1", 1000}}) {
    BOOST_TEST_CONTEXT("--keepalive-timeout " << c.value) {
      ServerProcess server{
          with_args({"--id", "durations", "--keepalive-timeout", c.value, "--header-timeout", "2s",
                     "--drain-grace", "1", "--drain-timeout", "3", "--session-ttl", "60"})};
      RawClient raw{server.host(), server.port()};
      BOOST_TEST_REQUIRE(raw.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
      auto response = raw.read_response(5000ms);
      BOOST_TEST_REQUIRE(response.has_value());
      BOOST_TEST(response->status == 200, response->describe());
      auto start = Clock::now();
      BOOST_TEST_REQUIRE(raw.wait_closed(Millis{static_cast<int>(c.expected_ms) + 4000}),
                         "idle connection still open");
      double closed_after = elapsed_ms(start);
      BOOST_TEST(closed_after >= c.expected_ms * 0.8, "closed after " << closed_after << " ms");
      BOOST_TEST(closed_after <= c.expected_ms + 2000, "closed after " << closed_after << " ms");
    }
  }
}

BOOST_AUTO_TEST_CASE(environment_variables_set_flags) {
  ServerOptions options;
  options.env = {{"TANDEM_ID", "from-env"}, {"TANDEM_MAX_HEADER_BYTES", "1024"}};
  ServerProcess server{options};
  HttpClient client;
  HttpResponse response = client.get(server.url("/health"));
  BOOST_TEST(response.header("X-Container-Id").value_or("") == "from-env", response.describe());
  HttpResponse big = client.get(server.url("/health"), {"X-Big: " + std::string(2000, 'a')});
  BOOST_TEST(big.status == 431, big.describe());
}

BOOST_AUTO_TEST_CASE(flag_wins_over_environment) {
  ServerOptions options;
  options.args = {"--id", "from-flag"};
  options.env = {{"TANDEM_ID", "from-env"}};
  ServerProcess server{options};
  HttpClient client;
  HttpResponse response = client.get(server.url("/health"));
  BOOST_TEST(response.header("X-Container-Id").value_or("") == "from-flag", response.describe());
}

BOOST_AUTO_TEST_CASE(bind_selects_the_listening_address) {
  ServerOptions options;
  options.args = {"--bind", "127.0.0.2"};
  options.host = "127.0.0.2";
  ServerProcess server{options};
  BOOST_TEST(can_connect("127.0.0.2", server.port()));
  BOOST_TEST(!can_connect("127.0.0.1", server.port()), "also listening on 127.0.0.1");
}

BOOST_AUTO_TEST_CASE(default_bind_is_loopback_only) {
  ServerProcess server{ServerOptions{}};
  BOOST_TEST(can_connect("127.0.0.1", server.port()));
  BOOST_TEST(!can_connect("127.0.0.2", server.port()), "listening beyond 127.0.0.1");
}
