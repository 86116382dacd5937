// The drain protocol of docs/design.md under a steady stream of requests: SIGTERM turns /health to
// 503 at once, the grace keeps serving (with Connection: close), then the listener closes and
// the process exits 0; in-flight work finishes; a second SIGTERM exits at once; logs are JSON.
#define BOOST_TEST_MODULE drain
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "raw_client.hpp"
#include "server_process.hpp"

using namespace tandem::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kId = "drain-it";

ServerOptions options(std::vector<std::string> extra) {
  ServerOptions result;
  result.args = {"--id", kId};
  result.args.insert(result.args.end(), extra.begin(), extra.end());
  return result;
}

// What one client request saw.
struct Outcome {
  Clock::time_point started;
  bool after_draining_seen = false;  // Started after a /health 503 was observed.
  bool ok = false;                   // A 200 arrived.
  bool connection_close = false;     // The answer carried Connection: close.
  std::string description;           // For failure messages.
};

// A few client threads sending GET /api/whoami as fast as they can until told to stop: even
// threads reuse one keep-alive handle, odd threads open a fresh connection per request.
class LoadGenerator {
 public:
  LoadGenerator(const ServerProcess& server, int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i, url = server.url("/api/whoami")] { run(i, url); });
    }
  }
  ~LoadGenerator() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  void draining_seen() { draining_seen_ = true; }
  std::size_t completed() const { return completed_; }
  std::vector<Outcome> outcomes() {
    std::lock_guard lock{mutex_};
    return outcomes_;
  }

 private:
  void run(int index, const std::string& url) {
    HttpClient client;
    client.set_fresh_connections(index % 2 == 1);
    // Bounded in count as well as by stop_, so a runaway test cannot spin forever.
    for (int n = 0; n < 200000 && !stop_; ++n) {
      Outcome outcome;
      outcome.started = Clock::now();
      outcome.after_draining_seen = draining_seen_;
      HttpResponse response = client.get(url);
      outcome.ok = response.ok && response.status == 200;
      outcome.connection_close = response.headers.has_token("Connection", "close");
      if (!outcome.ok) outcome.description = response.describe();
      {
        std::lock_guard lock{mutex_};
        outcomes_.push_back(outcome);
      }
      ++completed_;
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<bool> draining_seen_{false};
  std::atomic<std::size_t> completed_{0};
  std::mutex mutex_;
  std::vector<Outcome> outcomes_;
  std::vector<std::thread> threads_;
};

// Polls /health as fast as it answers until it is 503 "draining"; returns when that was seen
// (relative to `since`), or nullopt after `timeout`.
std::optional<double> wait_for_draining_health(const ServerProcess& server, Clock::time_point since,
                                               Millis timeout, HttpResponse* seen) {
  HttpClient client;
  std::optional<double> at;
  poll_until(
      [&] {
        HttpResponse response = client.get(server.url("/health"));
        if (response.ok && response.status == 503) {
          at = elapsed_ms(since);
          *seen = response;
          return true;
        }
        return false;
      },
      timeout, 0ms);
  return at;
}

// Waits until the server's port refuses connections; returns when (relative to `since`).
std::optional<double> wait_for_refusal(const ServerProcess& server, Clock::time_point since,
                                       Millis timeout) {
  std::optional<double> at;
  poll_until(
      [&] {
        if (can_connect(server.host(), server.port(), 200ms)) return false;
        at = elapsed_ms(since);
        return true;
      },
      timeout, 10ms);
  return at;
}

// Checks that every stdout line is a JSON object with ts, level, instance (== kId) and event.
std::vector<std::string> log_problems(const std::vector<std::string>& lines) {
  std::vector<std::string> problems;
  for (const auto& line : lines) {
    HttpResponse holder;  // Reuse the JSON parsing of HttpResponse.
    holder.body = line;
    if (!holder.json_ok()) {
      problems.push_back("not JSON: " + line);
      continue;
    }
    Json::Value entry = holder.json();
    if (!entry.isObject()) {
      problems.push_back("not an object: " + line);
      continue;
    }
    for (const char* key : {"ts", "level", "instance", "event"}) {
      if (!entry.isMember(key)) problems.push_back(std::string{"no '"} + key + "': " + line);
    }
    if (entry["instance"].asString() != kId)
      problems.push_back("instance is not " + std::string{kId} + ": " + line);
    if (!entry["event"].isString() || entry["event"].asString().empty()) {
      problems.push_back("event is not a name: " + line);
    }
    if (!entry["level"].isString()) problems.push_back("level is not a string: " + line);
  }
  return problems;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sigterm_under_load_drains_without_failing_a_request) {
  constexpr int kGraceMs = 2000;
  constexpr int kTimeoutMs = 10000;
  ServerProcess server{options({"--drain-grace", std::to_string(kGraceMs) + "ms", "--drain-timeout",
                                std::to_string(kTimeoutMs) + "ms"})};
  const std::size_t lines_before_signal = [&] {
    // The start is logged; wait for it so the line count below is meaningful.
    poll_until([&] { return !server.stdout_lines().empty(); }, 2000ms);
    return server.stdout_lines().size();
  }();
  BOOST_TEST(lines_before_signal > 0u, "nothing logged on stdout at start");

  LoadGenerator load{server, 3};
  BOOST_TEST_REQUIRE(poll_until([&] { return load.completed() >= 60; }, 10000ms),
                     "load generator did not get going");

  auto signalled = Clock::now();
  server.signal(SIGTERM);
  HttpResponse draining;
  auto draining_at = wait_for_draining_health(server, signalled, 3000ms, &draining);
  load.draining_seen();
  BOOST_TEST_REQUIRE(draining_at.has_value(), "/health never answered 503 after SIGTERM");
  BOOST_TEST(*draining_at <= 100.0, "/health 503 came " << *draining_at << " ms after SIGTERM");
  auto problems = contract_problems(draining, kId);
  BOOST_TEST(problems.empty(), join(problems));
  if (draining.json_ok()) {
    BOOST_TEST(draining.json()["status"].asString() == "draining", draining.body);
    BOOST_TEST(draining.json()["container"].asString() == kId, draining.body);
  }

  // Keep the load on for most of the grace: none of it may fail.
  const double stop_at = kGraceMs * 0.7;
  poll_until([&] { return elapsed_ms(signalled) >= stop_at; }, Millis{kGraceMs}, 5ms);
  const std::size_t during = load.completed();
  load.stop();

  std::size_t failures = 0, after_seen = 0, after_seen_without_close = 0;
  std::string first_failure, first_without_close;
  for (const auto& outcome : load.outcomes()) {
    if (!outcome.ok && failures++ == 0) first_failure = outcome.description;
    if (outcome.after_draining_seen && outcome.ok) {
      ++after_seen;
      if (!outcome.connection_close && after_seen_without_close++ == 0) {
        first_without_close =
            "started " +
            std::to_string(
                std::chrono::duration<double, std::milli>(outcome.started - signalled).count()) +
            " ms after SIGTERM";
      }
    }
  }
  BOOST_TEST_MESSAGE("/health 503 after " << *draining_at << " ms; " << during
                                          << " requests in all, " << after_seen
                                          << " started after the 503 was seen");
  BOOST_TEST(failures == 0u,
             failures << " of " << during << " requests failed; first: " << first_failure);
  BOOST_TEST(after_seen >= 10u, "only " << after_seen << " requests served during the grace");
  BOOST_TEST(after_seen_without_close == 0u,
             after_seen_without_close
                 << " answers during the drain lacked Connection: close; first "
                 << first_without_close);

  // Then the listener closes (not long after the grace) ...
  auto refused_at = wait_for_refusal(server, signalled, Millis{kGraceMs + 3000});
  BOOST_TEST_REQUIRE(refused_at.has_value(),
                     "port still accepting " << kGraceMs + 3000 << " ms after SIGTERM");
  BOOST_TEST_MESSAGE("port refused connections " << *refused_at << " ms after SIGTERM");
  BOOST_TEST(*refused_at >= stop_at, "port closed " << *refused_at << " ms after SIGTERM");
  // ... and the process exits 0 within the drain timeout.
  auto status = server.wait_exit(Millis{kTimeoutMs + 2000} -
                                 std::chrono::duration_cast<Millis>(Clock::now() - signalled));
  BOOST_TEST_REQUIRE(status.has_value(),
                     "still running " << kTimeoutMs + 2000 << " ms after SIGTERM");
  BOOST_TEST(status->exited, status->describe());
  BOOST_TEST(status->code == 0, status->describe());
  BOOST_TEST(elapsed_ms(signalled) <= kTimeoutMs + 1000.0);

  // Logs: JSON lines with the keys docs/design.md names, and the drain is logged.
  auto lines = server.stdout_lines();
  BOOST_TEST_MESSAGE("exited " << elapsed_ms(signalled) << " ms after SIGTERM; log:\n"
                               << join(lines, "\n"));
  auto problems_in_log = log_problems(lines);
  BOOST_TEST(problems_in_log.empty(), join(problems_in_log, "\n"));
  BOOST_TEST(lines.size() > lines_before_signal, "nothing logged after SIGTERM");
  const std::string text = server.stdout_text();
  BOOST_TEST((text.empty() || text.back() == '\n'), "last log line unterminated");
}

BOOST_AUTO_TEST_CASE(idle_connections_are_closed_and_exit_comes_soon_after_grace) {
  constexpr int kGraceMs = 500;
  ServerProcess server{options({"--drain-grace", std::to_string(kGraceMs) + "ms", "--drain-timeout",
                                "20s", "--keepalive-timeout", "60s"})};
  // An idle keep-alive connection that would otherwise stay for a minute.
  RawClient idle{server.host(), server.port()};
  idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  BOOST_TEST_REQUIRE(idle.read_response(5000ms).has_value());

  auto signalled = Clock::now();
  server.signal(SIGTERM);
  BOOST_TEST(idle.wait_closed(Millis{kGraceMs + 3000}),
             "idle keep-alive connection not closed by the drain");
  auto status = server.wait_exit(Millis{kGraceMs + 5000});
  BOOST_TEST_REQUIRE(status.has_value(),
                     "idle connections kept the process alive toward the 20 s drain timeout");
  BOOST_TEST(status->exited, status->describe());
  BOOST_TEST(status->code == 0, status->describe());
  BOOST_TEST(elapsed_ms(signalled) >= kGraceMs * 0.9, "exited before the grace was over");
}

BOOST_AUTO_TEST_CASE(in_flight_slow_requests_complete_during_drain) {
  ServerProcess server{
      options({"--drain-grace", "200ms", "--drain-timeout", "60s", "--header-timeout", "60s"})};
  // The largest allowed load test, three times on three connections: the server's only loop
  // thread works through them one after the other, so SIGTERM arrives while they are in flight.
  constexpr int kSlow = 3;
  std::vector<std::unique_ptr<RawClient>> slow;
  const double cpu_before = server.cpu_seconds();
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<RawClient>(server.host(), server.port()));
    BOOST_TEST_REQUIRE(
        slow.back()->send("GET /api/load-test?iterations=100000000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  // The server is busy with them once it burns CPU; only then send SIGTERM.
  bool busy = poll_until([&] { return server.cpu_seconds() - cpu_before >= 0.05; }, 10000ms, 1ms);
  BOOST_TEST_REQUIRE(busy, "the server never started on the load tests");
  auto signalled = Clock::now();
  server.signal(SIGTERM);
  for (int i = 0; i < kSlow; ++i) {
    BOOST_TEST_CONTEXT("load test " << i) {
      auto response = slow[i]->read_response(60000ms);
      BOOST_TEST_REQUIRE(response.has_value(),
                         "in-flight request lost to the drain; buffered: " << slow[i]->buffered());
      BOOST_TEST(response->status == 200, response->describe());
      auto problems = contract_problems(*response, kId);
      BOOST_TEST(problems.empty(), join(problems));
      if (response->json_ok()) {
        BOOST_TEST(response->json()["result"].isNumeric(), response->body);
        BOOST_TEST(response->json()["processingTime"].isNumeric(), response->body);
      }
      BOOST_TEST_MESSAGE("load test " << i << " answered " << elapsed_ms(signalled)
                                      << " ms after SIGTERM");
    }
  }
  auto status = server.wait_exit(60000ms);
  BOOST_TEST_REQUIRE(status.has_value(), "still running after the in-flight requests completed");
  BOOST_TEST(status->exited, status->describe());
  BOOST_TEST(status->code == 0, status->describe());
}

BOOST_AUTO_TEST_CASE(second_sigterm_exits_at_once) {
  ServerProcess server{options({"--drain-grace", "10s", "--drain-timeout", "30s"})};
  RawClient idle{server.host(), server.port()};
  idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  BOOST_TEST_REQUIRE(idle.read_response(5000ms).has_value());

  auto first = Clock::now();
  server.signal(SIGTERM);
  HttpResponse draining;
  BOOST_TEST_REQUIRE(wait_for_draining_health(server, first, 3000ms, &draining).has_value(),
                     "first SIGTERM did not start the drain");
  auto second = Clock::now();
  server.signal(SIGTERM);
  auto status = server.wait_exit(3000ms);
  BOOST_TEST_REQUIRE(status.has_value(),
                     "second SIGTERM did not end the process within 3 s "
                     "(grace is 10 s)");
  BOOST_TEST_MESSAGE("exited " << elapsed_ms(second) << " ms after the second SIGTERM, "
                               << status->describe());
  BOOST_TEST(elapsed_ms(second) < 1000.0);
}

BOOST_AUTO_TEST_CASE(sigint_drains_like_sigterm) {
  ServerProcess server{options({"--drain-grace", "300ms", "--drain-timeout", "5s"})};
  auto signalled = Clock::now();
  server.signal(SIGINT);
  HttpResponse draining;
  auto at = wait_for_draining_health(server, signalled, 3000ms, &draining);
  BOOST_TEST_REQUIRE(at.has_value(), "/health never answered 503 after SIGINT");
  BOOST_TEST(*at <= 100.0, "/health 503 came " << *at << " ms after SIGINT");
  auto status = server.wait_exit(6000ms);
  BOOST_TEST_REQUIRE(status.has_value(), "still running 6 s after SIGINT");
  BOOST_TEST(status->exited, status->describe());
  BOOST_TEST(status->code == 0, status->describe());
}

BOOST_AUTO_TEST_CASE(drain_timeout_bounds_a_connection_that_never_finishes) {
  // A client that sent half a request and then nothing; header timeout far away. Whether the
  // server counts it as idle (closes it) or in flight (waits), it must exit 0 by the timeout.
  constexpr int kTimeoutMs = 2000;
  ServerProcess server{options({"--drain-grace", "300ms", "--drain-timeout",
                                std::to_string(kTimeoutMs) + "ms", "--header-timeout", "60s"})};
  RawClient half{server.host(), server.port()};
  half.send("POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"clientId\"");
  auto signalled = Clock::now();
  server.signal(SIGTERM);
  auto status = server.wait_exit(Millis{kTimeoutMs + 2000});
  BOOST_TEST_REQUIRE(status.has_value(),
                     "still running " << kTimeoutMs + 2000 << " ms after SIGTERM");
  BOOST_TEST(status->exited, status->describe());
  BOOST_TEST(status->code == 0, status->describe());
  BOOST_TEST(elapsed_ms(signalled) <= kTimeoutMs + 1000.0);
}
