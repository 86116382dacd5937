#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <cstdlib>

#include "app/demo_app.hpp"
#include "runtime/command_line.hpp"
#include "runtime/config.hpp"
#include "runtime/version.hpp"

using namespace std::chrono_literals;

namespace tandem {
namespace {

using Env = std::map<std::string, std::string>;

// What tandem-server's command line gave: the runtime's settings and the application's.
struct Outcome {
  bool run = false;
  int exit_code = 0;
  Config config;
  DemoSettings settings;
};

// One reading of tandem-server's command line with `env` in the environment, and what it
// printed.
struct Run {
  Outcome outcome;
  std::string out;
  std::string err;
};

Run run(const std::vector<std::string>& args, const Env& env = {}) {
  std::vector<const char*> argv = {"tandem-server"};
  for (const auto& arg : args) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  // The variables are in the process's environment for this one reading only.
  for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
  std::ostringstream out;
  std::ostringstream err;
  DemoApp app;
  Run result;
  CommandLine::Outcome read = read_command_line(
      app, result.outcome.config, static_cast<int>(argv.size() - 1), argv.data(), out, err);
  for (const auto& entry : env) unsetenv(entry.first.c_str());
  result.outcome.run = read.run;
  result.outcome.exit_code = read.exit_code;
  result.outcome.settings = app.settings();
  result.out = out.str();
  result.err = err.str();
  return result;
}

// A refused configuration: exit code 2, nothing to run, and exactly one line naming `culprit`.
void check_refused(const Run& result, const std::string& culprit) {
  BOOST_TEST_CONTEXT("err: " << result.err) {
    BOOST_TEST(!result.outcome.run);
    BOOST_TEST(result.outcome.exit_code == 2);
    BOOST_TEST(result.out.empty());
    BOOST_TEST(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    BOOST_TEST(result.err.back() == '\n');
    BOOST_TEST(result.err.rfind("tandem-server: ", 0) == 0u);
    BOOST_TEST(result.err.find(culprit) != std::string::npos);
  }
}

// "--max-body-bytes" -> "TANDEM_MAX_BODY_BYTES".
std::string env_name_of(const std::string& flag) {
  std::string env_name = "TANDEM_";
  for (char c : flag.substr(2)) {
    env_name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env_name;
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_match_design) {
  const auto result = run({});
  BOOST_TEST(result.outcome.run);
  BOOST_TEST(result.outcome.exit_code == 0);
  BOOST_TEST(result.out.empty());
  BOOST_TEST(result.err.empty());
  const Config& config = result.outcome.config;
  const DemoSettings& settings = result.outcome.settings;
  BOOST_TEST(config.port == 3001);
  BOOST_TEST(config.bind == "127.0.0.1");
  BOOST_TEST(config.instance_id == "app-3001");
  BOOST_TEST(settings.session_store == "memory");
  BOOST_TEST(settings.max_sessions == 100000u);
  BOOST_TEST(settings.max_session_bytes == 64u * 1024u * 1024u);
  BOOST_TEST(config.worker_queue == 32u);
  BOOST_TEST(config.agent_port == 0);
  BOOST_TEST(settings.session_ttl.count() == 1800000);
  BOOST_TEST(config.max_header_bytes == 8192u);
  BOOST_TEST(config.max_body_bytes == 1024u * 1024u);
  BOOST_TEST(config.keepalive_timeout.count() == 60000);
  BOOST_TEST(config.header_timeout.count() == 10000);
  BOOST_TEST(config.max_connections == 16384u);
  BOOST_TEST(config.drain_grace.count() == 3000);
  BOOST_TEST(config.drain_timeout.count() == 15000);
  BOOST_TEST((config.access_log == AccessLog::kErrors));
  BOOST_TEST(config.slow_request.count() == 1000);
}

BOOST_AUTO_TEST_CASE(every_flag_is_read) {
  const auto result = run({"--port",
                           "4002",
                           "--bind",
                           "::1",
                           "--id",
                           "web_1.a-b",
                           "--session-store",
                           "redis://redis.internal:6380/3",
                           "--max-sessions",
                           "50",
                           "--max-session-bytes",
                           "1000000",
                           "--worker-queue",
                           "4",
                           "--agent-port",
                           "5002",
                           "--session-ttl",
                           "2h",
                           "--max-header-bytes",
                           "16384",
                           "--max-body-bytes=2048",
                           "--keepalive-timeout",
                           "250ms",
                           "--header-timeout",
                           "7",
                           "--max-connections",
                           "100",
                           "--drain-grace",
                           "1m",
                           "--drain-timeout",
                           "90s",
                           "--access-log",
                           "all",
                           "--slow-request",
                           "250ms"});
  BOOST_TEST_REQUIRE(result.outcome.run, result.err);
  const Config& config = result.outcome.config;
  const DemoSettings& settings = result.outcome.settings;
  BOOST_TEST(config.port == 4002);
  BOOST_TEST(config.bind == "::1");
  BOOST_TEST(config.instance_id == "web_1.a-b");
  BOOST_TEST(settings.session_store == "redis://redis.internal:6380/3");
  BOOST_TEST(settings.max_sessions == 50u);
  BOOST_TEST(settings.max_session_bytes == 1000000u);
  BOOST_TEST(config.worker_queue == 4u);
  BOOST_TEST(config.agent_port == 5002);
  BOOST_TEST(settings.session_ttl.count() == 7200000);
  BOOST_TEST(config.max_header_bytes == 16384u);
  BOOST_TEST(config.max_body_bytes == 2048u);
  BOOST_TEST(config.keepalive_timeout.count() == 250);
  BOOST_TEST(config.header_timeout.count() == 7000);
  BOOST_TEST(config.max_connections == 100u);
  BOOST_TEST(config.drain_grace.count() == 60000);
  BOOST_TEST(config.drain_timeout.count() == 90000);
  BOOST_TEST((config.access_log == AccessLog::kAll));
  BOOST_TEST(config.slow_request.count() == 250);
}

BOOST_AUTO_TEST_CASE(a_sentinel_store_is_read) {
  const std::string url = "sentinel://:pw@s1:26379,s2:26379,[::1]:26379/tandem/2";
  const auto result = run({"--session-store", url});
  BOOST_TEST_REQUIRE(result.outcome.run, result.err);
  BOOST_TEST(result.outcome.settings.session_store == url);
}

BOOST_AUTO_TEST_CASE(every_variable_is_read_from_the_environment) {
  const Env env = {{"TANDEM_PORT", "4003"},
                   {"TANDEM_BIND", "0.0.0.0"},
                   {"TANDEM_ID", "app-9"},
                   {"TANDEM_SESSION_STORE", "redis://127.0.0.1:6379"},
                   {"TANDEM_MAX_SESSIONS", "10"},
                   {"TANDEM_MAX_SESSION_BYTES", "65536"},
                   {"TANDEM_WORKER_QUEUE", "65536"},
                   {"TANDEM_SESSION_TTL", "60"},
                   {"TANDEM_MAX_HEADER_BYTES", "1024"},
                   {"TANDEM_MAX_BODY_BYTES", "1"},
                   {"TANDEM_KEEPALIVE_TIMEOUT", "5s"},
                   {"TANDEM_HEADER_TIMEOUT", "500ms"},
                   {"TANDEM_MAX_CONNECTIONS", "2"},
                   {"TANDEM_DRAIN_GRACE", "1s"},
                   {"TANDEM_DRAIN_TIMEOUT", "1h"},
                   {"TANDEM_ACCESS_LOG", "yes"}};
  const auto result = run({}, env);
  BOOST_TEST_REQUIRE(result.outcome.run, result.err);
  const Config& config = result.outcome.config;
  const DemoSettings& settings = result.outcome.settings;
  BOOST_TEST(config.port == 4003);
  BOOST_TEST(config.bind == "0.0.0.0");
  BOOST_TEST(config.instance_id == "app-9");
  BOOST_TEST(settings.session_store == "redis://127.0.0.1:6379");
  BOOST_TEST(settings.max_sessions == 10u);
  BOOST_TEST(settings.max_session_bytes == 65536u);
  BOOST_TEST(config.worker_queue == 65536u);
  BOOST_TEST(settings.session_ttl.count() == 60000);
  BOOST_TEST(config.max_header_bytes == 1024u);
  BOOST_TEST(config.max_body_bytes == 1u);
  BOOST_TEST(config.keepalive_timeout.count() == 5000);
  BOOST_TEST(config.header_timeout.count() == 500);
  BOOST_TEST(config.max_connections == 2u);
  BOOST_TEST(config.drain_grace.count() == 1000);
  BOOST_TEST(config.drain_timeout.count() == 3600000);
  BOOST_TEST((config.access_log == AccessLog::kAll));
}

BOOST_AUTO_TEST_CASE(a_flag_wins_over_the_environment) {
  const Env env = {{"TANDEM_PORT", "4000"},
                   {"TANDEM_ID", "from-env"},
                   {"TANDEM_MAX_BODY_BYTES", "10"},
                   {"TANDEM_ACCESS_LOG", "1"}};
  const auto result = run({"--port=4001", "--max-body-bytes", "20", "--access-log=false"}, env);
  BOOST_TEST_REQUIRE(result.outcome.run, result.err);
  BOOST_TEST(result.outcome.config.port == 4001);
  BOOST_TEST(result.outcome.config.instance_id == "from-env");
  BOOST_TEST(result.outcome.config.max_body_bytes == 20u);
  BOOST_TEST((result.outcome.config.access_log == AccessLog::kOff));
}

BOOST_AUTO_TEST_CASE(a_bad_environment_value_is_ignored_when_the_flag_is_given) {
  const auto result = run({"--port", "4001"}, {{"TANDEM_PORT", "nonsense"}});
  BOOST_TEST(result.outcome.run, result.err);
  BOOST_TEST(result.outcome.config.port == 4001);
}

BOOST_AUTO_TEST_CASE(the_last_of_a_repeated_flag_wins) {
  const auto result = run({"--port", "4001", "--port", "4002"});
  BOOST_TEST_REQUIRE(result.outcome.run, result.err);
  BOOST_TEST(result.outcome.config.port == 4002);
}

BOOST_AUTO_TEST_CASE(the_default_id_follows_the_port) {
  BOOST_TEST(run({"--port", "3002"}).outcome.config.instance_id == "app-3002");
  BOOST_TEST(run({}, {{"TANDEM_PORT", "3003"}}).outcome.config.instance_id == "app-3003");
}

BOOST_AUTO_TEST_CASE(access_log_takes_its_words_and_the_usual_boolean_ones) {
  // An env file written for the earlier on/off switch keeps meaning what it meant.
  for (const std::string word : {"all", "1", "true", "yes", "on", "TRUE", "On", "ALL"}) {
    BOOST_TEST(
        (run({}, {{"TANDEM_ACCESS_LOG", word}}).outcome.config.access_log == AccessLog::kAll),
        word);
    BOOST_TEST((run({"--access-log=" + word}).outcome.config.access_log == AccessLog::kAll), word);
  }
  for (const std::string word : {"0", "false", "no", "off", "FALSE", "Off"}) {
    BOOST_TEST(
        (run({}, {{"TANDEM_ACCESS_LOG", word}}).outcome.config.access_log == AccessLog::kOff),
        word);
    const auto result = run({"--access-log=" + word}, {{"TANDEM_ACCESS_LOG", "1"}});
    BOOST_TEST(result.outcome.run, word);
    BOOST_TEST((result.outcome.config.access_log == AccessLog::kOff), word);
  }
  BOOST_TEST((run({"--access-log", "errors"}).outcome.config.access_log == AccessLog::kErrors));
}

BOOST_AUTO_TEST_CASE(bad_flag_values_are_one_line_and_exit_2) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--port", "abc"},
      {"--port", "0"},
      {"--port", "65536"},
      {"--port", "-1"},
      {"--port", "+80"},
      {"--port", "80x"},
      {"--bind", "localhost"},
      {"--bind", "1.2.3"},
      {"--bind", "[::1]"},
      {"--bind", "256.1.1.1"},
      {"--id", "has space"},
      {"--id", "a/b"},
      {"--id", "caf\xc3\xa9"},
      {"--id", std::string(65, 'a')},
      {"--session-store", "Memory"},
      {"--session-store", "redis"},
      {"--session-store", "redis://"},
      {"--session-store", "redis://:6379"},
      {"--session-store", "redis://host"},
      {"--session-store", "redis://host:"},
      {"--session-store", "redis://host:0"},
      {"--session-store", "redis://host:65536"},
      {"--session-store", "redis://host:6379/"},
      {"--session-store", "redis://host:6379/16"},
      {"--session-store", "redis://host:6379/x"},
      {"--session-store", "redis://host:6379/1/2"},
      {"--session-store", "redis://user@host:6379"},
      {"--session-store", "redis://[::1:6379"},
      {"--session-store", "redis://[nope]:6379"},
      {"--session-store", "rediss://host:6379"},
      {"--session-store", "sentinel://host:26379"},
      {"--session-store", "sentinel://host/mymaster"},
      {"--session-store", "sentinel://host:26379,/mymaster"},
      {"--session-store", "sentinel://host:26379/my master"},
      {"--session-store", "sentinel://host:26379/mymaster/16"},
      {"--max-sessions", "0"},
      {"--max-sessions", "-5"},
      {"--max-sessions", "1e3"},
      {"--max-sessions", "18446744073709551616"},
      {"--max-session-bytes", "65535"},
      {"--max-session-bytes", "64MiB"},
      {"--worker-queue", "0"},
      {"--worker-queue", "65537"},
      {"--agent-port", "65536"},
      {"--agent-port", "-1"},
      {"--session-ttl", "0"},
      {"--session-ttl", "1500ms"},
      {"--session-ttl", "soon"},
      {"--max-header-bytes", "1023"},
      {"--max-header-bytes", "1048577"},
      {"--max-body-bytes", "0"},
      {"--max-body-bytes", "1MiB"},
      {"--keepalive-timeout", "0"},
      {"--keepalive-timeout", "0ms"},
      {"--keepalive-timeout", "5 s"},
      {"--keepalive-timeout", "5sec"},
      {"--keepalive-timeout", "1.5s"},
      {"--header-timeout", "-1"},
      {"--header-timeout", "2d"},
      {"--max-connections", "0"},
      {"--drain-grace", "0s"},
      {"--drain-timeout", "0"},
      {"--access-log", "maybe"},
      {"--access-log", "2"},
  };
  for (const auto& [flag, value] : cases) {
    BOOST_TEST_CONTEXT(flag << "=" << value) {
      const auto result = run({flag + "=" + value});
      check_refused(result, flag + ": ");
      check_refused(result, "\"" + value.substr(0, 3));
      // The same value from the environment is refused in the same words, naming the variable.
      const std::string env_name = env_name_of(flag);
      check_refused(run({}, {{env_name, value}}), env_name + ": ");
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_values_are_refused) {
  check_refused(run({}, {{"TANDEM_PORT", ""}}), "TANDEM_PORT");
  check_refused(run({}, {{"TANDEM_ID", ""}}), "TANDEM_ID");
  check_refused(run({"--port="}), "--port");
  check_refused(run({"--bind"}), "--bind");
}

BOOST_AUTO_TEST_CASE(unknown_flags_and_arguments_are_refused) {
  check_refused(run({"--bogus"}), "--bogus");
  check_refused(run({"--bogus=1"}), "--bogus");
  check_refused(run({"-p", "80"}), "-p");
  check_refused(run({"serve"}), "serve");
  check_refused(run({"--port", "80", "extra"}), "extra");
}

BOOST_AUTO_TEST_CASE(control_characters_cannot_break_the_one_line) {
  const auto result = run({}, {{"TANDEM_ID", "bad\nid\r\x01"}});
  check_refused(result, "TANDEM_ID");
  BOOST_TEST(result.err.find("bad\\nid") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_agent_port_must_differ_from_the_port) {
  check_refused(run({"--port", "4000", "--agent-port", "4000"}),
                "--agent-port (4000) must differ from --port");
  BOOST_TEST(run({"--port", "4000", "--agent-port", "4001"}).outcome.run);
}

BOOST_AUTO_TEST_CASE(drain_timeout_must_exceed_drain_grace) {
  check_refused(run({"--drain-grace", "20s"}),
                "--drain-timeout (15s) must be greater than "
                "--drain-grace (20s)");
  check_refused(run({"--drain-grace", "5s", "--drain-timeout", "5000ms"}), "--drain-grace");
  check_refused(run({}, {{"TANDEM_DRAIN_TIMEOUT", "1s"}}), "TANDEM_DRAIN_TIMEOUT (1s)");
  BOOST_TEST(run({"--drain-grace", "5s", "--drain-timeout", "5001ms"}).outcome.run);
}

BOOST_AUTO_TEST_CASE(help_documents_every_flag_with_its_default_and_variable) {
  const auto result = run({"--help"}, {{"TANDEM_PORT", "broken"}});
  BOOST_TEST(!result.outcome.run);
  BOOST_TEST(result.outcome.exit_code == 0);
  BOOST_TEST(result.err.empty());
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"--port", "3001"},
      {"--bind", "127.0.0.1"},
      {"--id", "app-<port>"},
      {"--session-store", "memory"},
      {"--max-sessions", "100000"},
      {"--max-session-bytes", "67108864"},
      {"--worker-queue", "32"},
      {"--session-ttl", "30m"},
      {"--max-header-bytes", "8192"},
      {"--max-body-bytes", "1048576"},
      {"--keepalive-timeout", "1m"},
      {"--header-timeout", "10s"},
      {"--max-connections", "16384"},
      {"--drain-grace", "3s"},
      {"--drain-timeout", "15s"},
      {"--access-log", "errors"},
      {"--slow-request", "1s"}};
  std::istringstream lines(result.out);
  std::map<std::string, std::string> line_by_flag;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    line_by_flag[first] = line;
  }
  for (const auto& [flag, default_text] : flags) {
    BOOST_TEST_CONTEXT(flag) {
      BOOST_TEST_REQUIRE(line_by_flag.count(flag) == 1u);
      const std::string& line = line_by_flag[flag];
      BOOST_TEST(line.find("[default: " + default_text) != std::string::npos, line);
      const std::string env_name = env_name_of(flag);
      BOOST_TEST(line.find("[env: " + env_name) != std::string::npos, line);
    }
  }
  BOOST_TEST(line_by_flag.count("--version") == 1u);
  BOOST_TEST(line_by_flag.count("-h,--help") == 1u);
  BOOST_TEST(run({"-h"}).out == result.out);
}

BOOST_AUTO_TEST_CASE(version_prints_the_build_version) {
  const auto result = run({"--version"});
  BOOST_TEST(!result.outcome.run);
  BOOST_TEST(result.outcome.exit_code == 0);
  BOOST_TEST(result.out == std::string("tandem-server ") + kVersion + "\n");
  BOOST_TEST(result.err.empty());
}

BOOST_AUTO_TEST_CASE(copes_with_an_empty_argv_and_no_environment) {
  const char* const argv[] = {nullptr};
  std::ostringstream out;
  std::ostringstream err;
  DemoApp app;
  Config config;
  const auto outcome = read_command_line(app, config, 0, argv, out, err);
  BOOST_TEST(outcome.run);
  BOOST_TEST(config.instance_id == "app-3001");
}

BOOST_AUTO_TEST_CASE(durations_parse) {
  BOOST_TEST(parse_duration("250ms").value().count() == 250);
  BOOST_TEST(parse_duration("2s").value().count() == 2000);
  BOOST_TEST(parse_duration("1m").value().count() == 60000);
  BOOST_TEST(parse_duration("1h").value().count() == 3600000);
  BOOST_TEST(parse_duration("5").value().count() == 5000);
  BOOST_TEST(parse_duration("0").value().count() == 0);
  BOOST_TEST(parse_duration("007s").value().count() == 7000);
  for (const std::string bad :
       {"", "ms", "s", "1.5s", "-1s", "+1s", "2 s", " 2s", "2s ", "2S", "2d", "2sec", "2mss", "s1",
        "1h1m", "99999999999999999999", "9223372036854775807s", "9223372036854776ms0"}) {
    BOOST_TEST(!parse_duration(bad).has_value(), "\"" << bad << "\"");
  }
  BOOST_TEST(parse_duration("9223372036854775807ms").value().count() ==
             std::numeric_limits<int64_t>::max());
}

}  // namespace tandem
