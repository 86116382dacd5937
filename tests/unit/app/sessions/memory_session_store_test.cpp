#define BOOST_TEST_MODULE memory_session_store
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "app/sessions/memory_session_store.hpp"

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

// Records one request and returns what the store called back with.
SessionUpdate record(MemorySessionStore& store, const std::string& id, const std::string& client,
                     bool create) {
  std::optional<SessionUpdate> update;
  store.record_request(id, client, create,
                       [&update](SessionUpdate result) { update = std::move(result); });
  // The memory store answers before record_request returns.
  BOOST_TEST_REQUIRE(update.has_value());
  BOOST_TEST(update->ok);
  BOOST_TEST(update->error.empty());
  return *update;
}

// Counts one request as the application does: against the session if the store knows it, else
// against a new one under the same id (the tests use readable ids instead of random ones).
int64_t count(MemorySessionStore& store, const std::string& id, const std::string& client = "c") {
  SessionUpdate update = record(store, id, client, false);
  if (!update.found) update = record(store, id, client, true);
  BOOST_TEST(update.found);
  return update.request_count;
}

MemorySessionStore::Limits at_most(std::size_t sessions, std::size_t bytes = 1 << 30) {
  return MemorySessionStore::Limits{sessions, bytes};
}

}  // namespace

BOOST_AUTO_TEST_CASE(counts_requests_per_session) {
  FakeClock clock;
  MemorySessionStore store(at_most(10), 60s, clock.function());
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
  MemorySessionStore store(at_most(10), 60s, clock.function());
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
  MemorySessionStore store(at_most(10), 60s, clock.function());
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

BOOST_AUTO_TEST_CASE(an_unknown_id_is_not_adopted) {
  FakeClock clock;
  MemorySessionStore store(at_most(10), 60s, clock.function());
  SessionUpdate update = record(store, "never-issued", "c", false);
  BOOST_TEST(!update.found);
  BOOST_TEST(update.request_count == 0);
  BOOST_TEST(store.stats().active == 0u);
  BOOST_TEST(store.stats().rejected == 1u);
  BOOST_TEST(store.stats().bytes == 0u);
  // Neither is an expired one: its client gets a new session.
  BOOST_TEST(record(store, "s", "c", true).request_count == 1);
  clock.now += 60s;
  BOOST_TEST(!record(store, "s", "c", false).found);
  BOOST_TEST(store.stats().expired == 1u);
  BOOST_TEST(store.stats().rejected == 2u);
}

BOOST_AUTO_TEST_CASE(a_flood_of_one_request_sessions_leaves_returning_clients_alone) {
  FakeClock clock;
  MemorySessionStore store(at_most(100), 1h, clock.function());
  for (int client = 0; client < 50; ++client) {
    count(store, "client-" + std::to_string(client));
    count(store, "client-" + std::to_string(client));  // They came back: protected.
  }
  // Ten times the store's size in sessions nobody comes back for (plain LRU would keep none of
  // the 50 clients' sessions after this).
  for (int flood = 0; flood < 1000; ++flood) {
    clock.now += 1ms;
    count(store, "flood-" + std::to_string(flood));
  }
  BOOST_TEST(store.stats().active == 100u);
  BOOST_TEST(store.stats().evicted == 950u);
  for (int client = 0; client < 50; ++client) {
    BOOST_TEST(count(store, "client-" + std::to_string(client)) == 3, "client-" << client);
  }
}

BOOST_AUTO_TEST_CASE(the_protected_segment_keeps_to_its_share) {
  FakeClock clock;
  MemorySessionStore store(at_most(10), 1h, clock.function());
  // Ten clients that all come back: at most 8 (80 %) stay protected; the two used longest ago
  // go back to probation, where new sessions push them out first.
  for (int client = 0; client < 10; ++client) {
    clock.now += 1s;
    count(store, "c" + std::to_string(client));
    count(store, "c" + std::to_string(client));
  }
  for (int fresh = 0; fresh < 2; ++fresh) count(store, "new-" + std::to_string(fresh));
  BOOST_TEST(store.stats().evicted == 2u);
  BOOST_TEST(!record(store, "c0", "c", false).found);
  BOOST_TEST(!record(store, "c1", "c", false).found);
  for (int client = 2; client < 10; ++client) {
    BOOST_TEST(record(store, "c" + std::to_string(client), "c", false).request_count == 3);
  }
}

BOOST_AUTO_TEST_CASE(the_store_is_bounded_in_bytes) {
  FakeClock clock;
  const std::string big(256, 'x');
  const std::size_t one = MemorySessionStore::entry_bytes(std::string(32, 'i'), big);
  MemorySessionStore store(at_most(1000, one * 10), 1h, clock.function());
  for (int i = 0; i < 100; ++i) {
    std::string id = std::string(30, 'i') + (i < 10 ? "0" : "") + std::to_string(i);
    BOOST_TEST(record(store, id, big, true).request_count == 1);
  }
  const auto stats = store.stats();
  BOOST_TEST(stats.active == 10u);
  BOOST_TEST(stats.evicted == 90u);
  BOOST_TEST(stats.bytes <= one * 10);
  BOOST_TEST(stats.bytes >= one * 9);
  // A client id that shrinks gives its bytes back.
  count(store, std::string(30, 'i') + "99", "small");
  BOOST_TEST(store.stats().bytes < stats.bytes);
}

BOOST_AUTO_TEST_CASE(a_full_store_evicts_the_least_recently_used) {
  FakeClock clock;
  MemorySessionStore store(at_most(3), 60s, clock.function());
  count(store, "a");
  clock.now += 1s;
  count(store, "b");
  clock.now += 1s;
  count(store, "c");
  clock.now += 1s;
  count(store, "a");  // a came back (protected): b is now the least recently used of the rest.
  count(store, "d");
  BOOST_TEST(store.stats().evicted == 1u);
  BOOST_TEST(store.stats().active == 3u);
  BOOST_TEST(count(store, "a") == 3);
  BOOST_TEST(count(store, "c") == 2);
  BOOST_TEST(count(store, "d") == 2);
  BOOST_TEST(store.stats().evicted == 1u);
  // a, c and d all came back, but the protected segment holds two of three: a, the least recent
  // of them, went back to probation, so b, evicted earlier, starts again by pushing a out.
  BOOST_TEST(count(store, "b") == 1);
  BOOST_TEST(store.stats().evicted == 2u);
  BOOST_TEST(count(store, "a") == 1);  // a starts again too, pushing out b, used once.
  BOOST_TEST(count(store, "d") == 3);  // d stayed protected.
  const auto stats = store.stats();
  BOOST_TEST(stats.active == 3u);
  BOOST_TEST(stats.created == 6u);
  BOOST_TEST(stats.evicted == 3u);
  BOOST_TEST(stats.expired == 0u);
}

BOOST_AUTO_TEST_CASE(making_room_drops_expired_sessions_as_expired) {
  FakeClock clock;
  MemorySessionStore store(at_most(2), 60s, clock.function());
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
  MemorySessionStore store(at_most(1), 60s, clock.function());
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(count(store, "a") == 2);
  BOOST_TEST(count(store, "b") == 1);
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(store.stats().active == 1u);
  BOOST_TEST(store.stats().evicted == 2u);
}

BOOST_AUTO_TEST_CASE(a_callback_may_reenter_the_store) {
  FakeClock clock;
  MemorySessionStore store(at_most(1), 60s, clock.function());
  int64_t inner = 0;
  store.record_request("a", "c", true, [&](SessionUpdate) {
    store.record_request("b", "c", true,
                         [&](SessionUpdate update) { inner = update.request_count; });
  });
  BOOST_TEST(inner == 1);
  BOOST_TEST(store.stats().active == 1u);
  store.record_request("b", "c", false, {});  // An empty callback is allowed too.
  BOOST_TEST(count(store, "b") == 3);
}

BOOST_AUTO_TEST_CASE(the_default_clock_is_steady_clock) {
  MemorySessionStore store(at_most(10), 60s);
  BOOST_TEST(count(store, "a") == 1);
  BOOST_TEST(count(store, "a") == 2);
  BOOST_TEST(store.sweep() == 0u);
}

}  // namespace tandem
