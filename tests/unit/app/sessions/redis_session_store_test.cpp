#define BOOST_TEST_MODULE redis_session_store
#include "app/sessions/redis_session_store.hpp"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include "redis_processes.hpp"
#include "store_loop.hpp"
#include "tandem/log.hpp"

using namespace std::chrono_literals;
using tandem::RedisSessionStore;
using tandem::SessionUpdate;

namespace {

using tandem::testing::free_port;

// A real redis-server on a loopback port, stopped and reaped by the destructor.
class RedisServer : public tandem::testing::RedisProcess {
 public:
  explicit RedisServer(uint16_t port, const std::string& password = {})
      : RedisProcess(port,
                     tandem::testing::redis_server_args(
                         port, "/tmp",
                         password.empty() ? std::vector<std::string>{}
                                          : std::vector<std::string>{"--requirepass", password})) {}
};

// A loop with a store on a Redis at `port`.
struct Fixture : tandem::testing::StoreLoop {
  uint16_t port = free_port();

  void make_store(std::string password = {}, std::chrono::seconds ttl = 60s) {
    tandem::RedisEndpoint endpoint{"127.0.0.1", port, 3, {}, std::move(password)};
    store = std::make_unique<RedisSessionStore>(&loop, endpoint, ttl, log);
    store->start();
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(redis_store, Fixture)

BOOST_AUTO_TEST_CASE(counts_requests_per_session) {
  RedisServer redis(port);
  make_store();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  BOOST_TEST(record("a").request_count == 1);
  BOOST_TEST(record("a").request_count == 2);
  BOOST_TEST(record("b").request_count == 1);
  BOOST_TEST(store->stats().created == 2u);
  BOOST_TEST(store->kind() == "redis");
}

BOOST_AUTO_TEST_CASE(an_unknown_id_is_not_adopted) {
  RedisServer redis(port);
  make_store();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  SessionUpdate unknown = record_once("attacker-chosen", false);
  BOOST_TEST(unknown.ok);
  BOOST_TEST(!unknown.found);
  // Nothing was stored under it: asking again finds nothing again.
  BOOST_TEST(!record_once("attacker-chosen", false).found);
  BOOST_TEST(store->stats().rejected == 2u);
  BOOST_TEST(store->stats().created == 0u);
  BOOST_TEST(record_once("issued", true).request_count == 1);
  BOOST_TEST(record_once("issued", false).request_count == 2);
}

BOOST_AUTO_TEST_CASE(concurrent_increments_from_two_stores_are_exact) {
  RedisServer redis(port);
  make_store();
  tandem::RedisEndpoint endpoint{"127.0.0.1", port, 3, {}, {}};
  RedisSessionStore second(&loop, endpoint, 60s, log);
  second.start();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok" && second.state() == "ok"; }));
  int answered = 0;
  int failed = 0;
  for (int i = 0; i < 500; ++i) {
    RedisSessionStore& target = i % 2 == 0 ? *store : second;
    target.record_request("shared", "c", true, [&](SessionUpdate update) {
      ++answered;
      if (!update.ok) ++failed;
    });
  }
  BOOST_TEST_REQUIRE(run_until([&] { return answered == 500; }));
  BOOST_TEST(failed == 0);
  BOOST_TEST(record("shared").request_count == 501);
  second.close();
  // One iteration runs its timers' close callbacks (the first store keeps the loop alive).
  uv_run(&loop, UV_RUN_NOWAIT);
}

BOOST_AUTO_TEST_CASE(unreachable_redis_fails_fast_then_recovers_without_restart) {
  make_store();  // Nothing listens on the port yet.
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "unavailable"; }));
  auto started = std::chrono::steady_clock::now();
  SessionUpdate down = record("x");
  BOOST_TEST(!down.ok);
  BOOST_TEST(down.error.find("unreachable") != std::string::npos, down.error);
  // The refusal itself is reported (the socket's error reaches hiredis), not a timeout of ours.
  BOOST_TEST(down.error.find("refused") != std::string::npos, down.error);
  BOOST_TEST((std::chrono::steady_clock::now() - started < 100ms));  // Refused at once, no wait.
  BOOST_TEST(store->stats().errors >= 1u);

  RedisServer redis(port);
  // The backoff is capped at kMaxBackoff, so the store is back within that and a connect.
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }, 5000ms));
  BOOST_TEST(record("x").ok);
}

BOOST_AUTO_TEST_CASE(a_hung_redis_times_out_instead_of_holding_requests) {
  RedisServer redis(port);
  make_store();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  redis.pause();
  auto started = std::chrono::steady_clock::now();
  SessionUpdate stuck = record("y");
  auto waited = std::chrono::steady_clock::now() - started;
  BOOST_TEST(!stuck.ok);
  BOOST_TEST(stuck.error.find("did not answer") != std::string::npos, stuck.error);
  BOOST_TEST((waited >= RedisSessionStore::kCommandTimeout));
  redis.resume();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }, 5000ms));
  BOOST_TEST(record("y").ok);
}

BOOST_AUTO_TEST_CASE(a_hung_redis_is_never_reported_ok) {
  RedisServer redis(port);
  redis.pause();  // The kernel still completes TCP connects for it.
  make_store();
  BOOST_TEST(!run_until([&] { return store->state() == "ok"; }, 1500ms));
  BOOST_TEST(!record("h").ok);
  redis.resume();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }, 5000ms));
  BOOST_TEST(record("h").ok);
}

BOOST_AUTO_TEST_CASE(waiting_requests_are_bounded) {
  RedisServer redis(port);
  make_store();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  redis.pause();
  int refused = 0;
  int answered = 0;
  for (std::size_t i = 0; i < RedisSessionStore::kMaxPending + 10; ++i) {
    store->record_request("z", "c", true, [&](SessionUpdate update) {
      ++answered;
      if (!update.ok && update.error.find("too many") != std::string::npos) ++refused;
    });
  }
  BOOST_TEST(refused == 10);  // The ten past the bound, at once.
  BOOST_TEST_REQUIRE(
      run_until([&] { return answered == static_cast<int>(RedisSessionStore::kMaxPending) + 10; }));
  redis.resume();
}

BOOST_AUTO_TEST_CASE(password_is_sent_and_a_wrong_one_is_reported) {
  RedisServer redis(port, "s3cret");
  make_store("s3cret");
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  BOOST_TEST(record("p").ok);
  store->close();
  uv_run(&loop, UV_RUN_NOWAIT);

  make_store("wrong");
  // The store never becomes ready, and requests are refused with the reason instead of hanging.
  BOOST_TEST(!run_until([&] { return store->state() == "ok"; }, 500ms));
  SessionUpdate refused = record("p");
  BOOST_TEST(!refused.ok);
  BOOST_TEST((refused.error.find("WRONGPASS") != std::string::npos ||
              refused.error.find("connecting") != std::string::npos),
             refused.error);
}

BOOST_AUTO_TEST_CASE(a_readonly_answer_drops_the_connection) {
  // A replica (of a master that is not there) stands for a demoted master: it refuses writes.
  tandem::testing::RedisProcess replica(
      port, tandem::testing::redis_server_args(
                port, "/tmp", {"--replicaof", "127.0.0.1", std::to_string(free_port())}));
  make_store();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  SessionUpdate refused = record_once("r", true);
  BOOST_TEST(!refused.ok);
  BOOST_TEST(refused.error.find("READONLY") != std::string::npos, refused.error);
  // The connection is dropped so that the node is resolved again, not kept.
  BOOST_TEST(store->state() != "ok");
  BOOST_TEST(log_text().find("is no longer the master (READONLY)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(closing_answers_waiting_requests) {
  RedisServer redis(port);
  make_store();
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  redis.pause();
  std::optional<SessionUpdate> result;
  store->record_request("w", "c", true, [&](SessionUpdate update) { result = update; });
  store->close();
  BOOST_TEST_REQUIRE(result.has_value());
  BOOST_TEST(!result->ok);
  redis.resume();
}

BOOST_AUTO_TEST_SUITE_END()
