#define BOOST_TEST_MODULE memory_session_store
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "memory_session_store.hpp"

using namespace std::chrono_literals;

namespace tandem {
namespace {

// A clock the test moves by hand.
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};

  MemorySessionStore::Clock function() {
    return [this] { return now; };
  }
};

// Records one request and returns the count the store called back with.
int64_t count(MemorySessionStore& store, const std::string& id, const std::string& client = "c") {
  std::optional<SessionUpdate> update;
  store.record_request(id, client, [&update](SessionUpdate result) { update = std::move(result); });
  // The memory store answers before record_request returns.
  BOOST_TEST_REQUIRE(update.has_value());
  BOOST_TEST(update->ok);
  BOOST_TEST(update->error.empty());
  return update->request_count;
}

}  // namespace

BOOST_AUTO_TEST_CASE(counts_requests_per_session) {
  FakeClock clock;
  MemorySessionStore store(10, 60s, clock.function());
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(count(store, "a") == 2);
  BOOST_TEST(count(store, "b") == 1);
  BOOST_TEST(count(store, "a", "other-client") == 3);
  const auto stats = store.stats();
  BOOST_TEST(stats.active == 2u);
  BOOST_TEST(stats.created == 2u);
  BOOST_TEST(stats.evicted == 0u);
  BOOST_TEST(stats.expired == 0u);
  BOOST_TEST(stats.errors == 0u);
  BOOST_TEST(store.kind() == "memory");
  BOOST_TEST(store.state() == "ok");
}

BOOST_AUTO_TEST_CASE(an_expired_session_starts_afresh_on_access) {
  FakeClock clock;
  MemorySessionStore store(10, 60s, clock.function());
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(count(store, "a") == 2);
  clock.now += 59s;
  BOOST_TEST(count(store, "a") == 3);  // Each request refreshes the idle deadline.
  clock.now += 59s;
  BOOST_TEST(count(store, "a") == 4);
  clock.now += 60s;  // Exactly the TTL: expired.
  BOOST_TEST(count(store, "a") == 1);
  const auto stats = store.stats();
  BOOST_TEST(stats.active == 1u);
  BOOST_TEST(stats.created == 2u);
  BOOST_TEST(stats.expired == 1u);
}

BOOST_AUTO_TEST_CASE(sweep_drops_only_idle_sessions) {
  FakeClock clock;
  MemorySessionStore store(10, 60s, clock.function());
  count(store, "old-1");
  count(store, "old-2");
  clock.now += 30s;
  count(store, "new");
  BOOST_TEST(store.sweep() == 0u);
  clock.now += 30s;  // old-* are now 60 s idle, new is 30 s idle.
  BOOST_TEST(store.sweep() == 2u);
  BOOST_TEST(store.stats().active == 1u);
  BOOST_TEST(store.stats().expired == 2u);
  BOOST_TEST(count(store, "new") == 2);
  BOOST_TEST(count(store, "old-1") == 1);
  BOOST_TEST(store.sweep() == 0u);
  clock.now += 1h;
  BOOST_TEST(store.sweep() == 2u);
  BOOST_TEST(store.stats().active == 0u);
  BOOST_TEST(store.stats().expired == 4u);
  BOOST_TEST(store.sweep() == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_store_evicts_the_least_recently_used) {
  FakeClock clock;
  MemorySessionStore store(3, 60s, clock.function());
  count(store, "a");
  clock.now += 1s;
  count(store, "b");
  clock.now += 1s;
  count(store, "c");
  clock.now += 1s;
  count(store, "a");  // Touching a protects it: b is now the least recently used.
  count(store, "d");
  BOOST_TEST(store.stats().evicted == 1u);
  BOOST_TEST(store.stats().active == 3u);
  BOOST_TEST(count(store, "a") == 3);
  BOOST_TEST(count(store, "c") == 2);
  BOOST_TEST(count(store, "d") == 2);
  BOOST_TEST(store.stats().evicted == 1u);
  BOOST_TEST(count(store, "b") == 1);  // b was evicted, so it starts again, pushing out a.
  BOOST_TEST(store.stats().evicted == 2u);
  BOOST_TEST(count(store, "a") == 1);  // a starts again too, pushing out c.
  BOOST_TEST(count(store, "d") == 3);  // d was used more recently than c, so it stayed.
  const auto stats = store.stats();
  BOOST_TEST(stats.active == 3u);
  BOOST_TEST(stats.created == 6u);
  BOOST_TEST(stats.evicted == 3u);
  BOOST_TEST(stats.expired == 0u);
}

BOOST_AUTO_TEST_CASE(making_room_drops_expired_sessions_as_expired) {
  FakeClock clock;
  MemorySessionStore store(2, 60s, clock.function());
  count(store, "a");
  count(store, "b");
  clock.now += 2min;
  count(store, "c");
  const auto stats = store.stats();
  BOOST_TEST(stats.active == 1u);
  BOOST_TEST(stats.expired == 2u);
  BOOST_TEST(stats.evicted == 0u);
}

BOOST_AUTO_TEST_CASE(a_store_of_one_still_counts) {
  FakeClock clock;
  MemorySessionStore store(1, 60s, clock.function());
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(count(store, "a") == 2);
  BOOST_TEST(count(store, "b") == 1);
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(store.stats().active == 1u);
  BOOST_TEST(store.stats().evicted == 2u);
}

BOOST_AUTO_TEST_CASE(a_callback_may_reenter_the_store) {
  FakeClock clock;
  MemorySessionStore store(1, 60s, clock.function());
  int64_t inner = 0;
  store.record_request("a", "c", [&](SessionUpdate) {
    store.record_request("b", "c", [&](SessionUpdate update) { inner = update.request_count; });
  });
  BOOST_TEST(inner == 1);
  BOOST_TEST(store.stats().active == 1u);
  store.record_request("b", "c", {});  // An empty callback is allowed too.
  BOOST_TEST(count(store, "b") == 3);
}

BOOST_AUTO_TEST_CASE(the_default_clock_is_steady_clock) {
  MemorySessionStore store(10, 60s);
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(count(store, "a") == 2);
  BOOST_TEST(store.sweep() == 0u);
}

}  // namespace tandem
