#define BOOST_TEST_MODULE sentinel_resolver
#include "app/sessions/sentinel_resolver.hpp"

#include <stdlib.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/sessions/sentinel_endpoint.hpp"
#include "redis_processes.hpp"
#include "store_loop.hpp"

using namespace std::chrono_literals;
using tandem::RedisSessionStore;
using tandem::SessionUpdate;
using tandem::testing::free_port;
using tandem::testing::redis_command;
using tandem::testing::RedisProcess;

namespace {

constexpr const char* kPassword = "s3cret";
constexpr const char* kName = "tandem-test";
// Generous bounds for what Sentinel does on its own clock; never asserted as timings.
constexpr auto kFailoverLimit = 60000ms;

// A primary, its replica and three Sentinels (quorum 2), all requiring the one password, in a
// temporary directory of their own; plus a loop with a store on it.
struct Cluster : tandem::testing::StoreLoop {
  std::filesystem::path dir;
  uint16_t primary_port = free_port();
  uint16_t replica_port = free_port();
  std::unique_ptr<RedisProcess> primary;
  std::unique_ptr<RedisProcess> replica;
  std::vector<std::unique_ptr<RedisProcess>> sentinels;

  Cluster() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tandem-sentinel-XXXXXX");
    BOOST_TEST_REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir = pattern;
    const std::vector<std::string> auth{"--requirepass", kPassword, "--masterauth", kPassword};
    primary = start_redis(primary_port, auth);
    auto replica_args = auth;
    replica_args.insert(replica_args.end(),
                        {"--replicaof", "127.0.0.1", std::to_string(primary_port)});
    replica = start_redis(replica_port, replica_args);
    for (int i = 0; i < 3; ++i) sentinels.push_back(start_sentinel(primary_port, 2));
    // Until then, WAIT rightly refuses every increment.
    wait_until_replica_acknowledges();
  }
  ~Cluster() {
    // The store goes first (StoreLoop's destructor runs after this one), so it may see every
    // process die; that is fine, it only reconnects until it is closed.
    for (auto& sentinel : sentinels) sentinel->stop();
    if (primary) primary->stop();
    if (replica) replica->stop();
    if (!std::getenv("TEST_KEEP_DIR")) std::filesystem::remove_all(dir);
  }

  // A data node. Its replicas get their first copy at once: Redis waits 5 s by default for
  // more replicas to share one transfer, which here would only add 5 s to every case.
  std::unique_ptr<RedisProcess> start_redis(uint16_t port, std::vector<std::string> extra) {
    extra.insert(extra.end(), {"--repl-diskless-sync-delay", "0"});
    return std::make_unique<RedisProcess>(
        port, tandem::testing::redis_server_args(port, dir.string(), std::move(extra)),
        (dir / ("redis-" + std::to_string(port) + ".log")).string());
  }

  // A Sentinel monitoring 127.0.0.1:`master_port` as kName. Its config file is its own: Sentinel
  // rewrites it.
  std::unique_ptr<RedisProcess> start_sentinel(uint16_t master_port, int quorum) {
    uint16_t port = free_port();
    std::filesystem::path config = dir / ("sentinel-" + std::to_string(port) + ".conf");
    std::ofstream(config) << "port " << port << "\nbind 127.0.0.1\ndir " << dir.string()
                          << "\nrequirepass " << kPassword << "\nsentinel sentinel-pass "
                          << kPassword << "\nsentinel monitor " << kName << " 127.0.0.1 "
                          << master_port << " " << quorum << "\nsentinel auth-pass " << kName << " "
                          << kPassword << "\nsentinel down-after-milliseconds " << kName
                          << " 1000\nsentinel failover-timeout " << kName
                          << " 3000\nsentinel parallel-syncs " << kName << " 1\n";
    return std::make_unique<RedisProcess>(
        port, std::vector<std::string>{"redis-sentinel", config.string()},
        (dir / ("sentinel-" + std::to_string(port) + ".log")).string());
  }

  std::string sentinel_list() const {
    std::string list;
    for (const auto& sentinel : sentinels) {
      list +=
          (list.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(sentinel->port());
    }
    return list;
  }

  void make_store(const std::string& sentinel_addresses) {
    auto endpoint = tandem::parse_sentinel_url("sentinel://:" + std::string(kPassword) + "@" +
                                               sentinel_addresses + "/" + kName + "/3");
    BOOST_TEST_REQUIRE(endpoint.has_value());
    store = std::make_unique<RedisSessionStore>(
        &loop, std::make_unique<tandem::SentinelResolver>(&loop, *endpoint, log), 60s, log);
    store->start();
  }

  std::string at(uint16_t port) const { return "127.0.0.1:" + std::to_string(port); }

  // The value following `key` in a flat SENTINEL MASTER answer.
  static std::string field(const std::vector<std::string>& flat, const std::string& key) {
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
      if (flat[i] == key) return flat[i + 1];
    }
    return {};
  }

  bool replica_in_sync() {
    auto info = redis_command(replica_port, kPassword, {"INFO", "replication"});
    return info && !info->empty() &&
           info->front().find("master_link_status:up") != std::string::npos;
  }

  // A number in an INFO answer: the digits after `key`, or -1.
  static long long info_number(const std::string& info, const std::string& key) {
    const auto at = info.find(key);
    return at == std::string::npos ? -1 : std::atoll(info.c_str() + at + key.size());
  }

  // Waits until the primary counts the replica for WAIT: the replica has acknowledged a write
  // made now. Its link is up as soon as it has its copy, but the primary streams to it (and
  // WAIT counts it) only after its first acknowledgement, up to a second later.
  void wait_until_replica_acknowledges() {
    BOOST_TEST_REQUIRE(run_until([&] { return replica_in_sync(); }, kFailoverLimit),
                       "the replica never synced; logs in " << dir);
    auto set = redis_command(primary_port, kPassword, {"SET", "tandem:test:synced", "1"});
    BOOST_TEST_REQUIRE((set && set->size() == 1 && set->front() == "OK"));
    auto info = redis_command(primary_port, kPassword, {"INFO", "replication"});
    BOOST_TEST_REQUIRE((info && !info->empty()));
    const long long written = info_number(info->front(), "master_repl_offset:");
    BOOST_TEST_REQUIRE(written > 0);
    BOOST_TEST_REQUIRE(
        run_until(
            [&] {
              auto now = redis_command(primary_port, kPassword, {"INFO", "replication"});
              return now && !now->empty() && info_number(now->front(), ",offset=") >= written;
            },
            kFailoverLimit),
        "the replica never acknowledged; logs in " << dir);
  }

  // Waits until every Sentinel knows the other two and the replica, and the replica is in sync:
  // before that, a failover has no quorum or no replica to promote.
  void wait_until_sentinels_agree() {
    bool agreed = run_until(
        [&] {
          for (const auto& sentinel : sentinels) {
            auto master = redis_command(sentinel->port(), kPassword, {"SENTINEL", "MASTER", kName});
            if (!master || field(*master, "num-other-sentinels") != "2" ||
                field(*master, "num-slaves") != "1") {
              return false;
            }
          }
          return replica_in_sync();
        },
        kFailoverLimit);
    BOOST_TEST_REQUIRE(agreed, "the Sentinels never agreed; logs in " << dir);
  }

  // The store on the primary, once the Sentinels agree (a failover needs that).
  void make_store_for_failover() {
    wait_until_sentinels_agree();
    make_store(sentinel_list());
    BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  }

  void wait_until_store_on_replica() {
    BOOST_TEST_REQUIRE(
        run_until([&] { return store->address() == at(replica_port); }, kFailoverLimit),
        "the store did not follow; logs in " << dir);
  }

  std::size_t occurrences(const std::string& event) {
    const std::string text = log_text();
    std::size_t count = 0;
    for (auto at = text.find(event); at != std::string::npos; at = text.find(event, at + 1)) {
      ++count;
    }
    return count;
  }

  // Forces a failover through `sentinel` (no process is killed).
  void failover_through(const RedisProcess& sentinel) {
    auto answer = redis_command(sentinel.port(), kPassword, {"SENTINEL", "FAILOVER", kName});
    BOOST_TEST_REQUIRE(answer.has_value());
    BOOST_TEST_REQUIRE((answer->size() == 1 && answer->front() == "OK"));
  }

  // Counts against `id` until an increment is acknowledged (a replica has it), and returns it.
  SessionUpdate record_until_acknowledged(const std::string& id) {
    std::optional<SessionUpdate> acknowledged;
    BOOST_TEST_REQUIRE(run_until(
        [&] {
          SessionUpdate update = record(id);
          if (update.ok) acknowledged = update;
          return acknowledged.has_value();
        },
        kFailoverLimit));
    return *acknowledged;
  }

  // The session's count as the node on `port` holds it.
  std::string count_on(uint16_t port, const std::string& id) {
    auto reply =
        redis_command(port, kPassword, {"HGET", "tandem:session:" + id, "requestCount"}, 3);
    return reply && reply->size() == 1 ? reply->front() : std::string();
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sentinel_store, Cluster)

BOOST_AUTO_TEST_CASE(resolves_the_master_and_counts) {
  make_store(sentinel_list());
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  BOOST_TEST(store->kind() == "sentinel");
  BOOST_TEST(store->address() == at(primary_port));
  BOOST_TEST(record("a").request_count == 1);
  BOOST_TEST(record("a").request_count == 2);
  BOOST_TEST(record("b").request_count == 1);
  // WAIT acknowledged them, so the replica has them.
  BOOST_TEST(count_on(replica_port, "a") == "2");
}

BOOST_AUTO_TEST_CASE(a_dead_first_sentinel_is_skipped) {
  make_store(at(free_port()) + "," + sentinel_list());
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  BOOST_TEST(store->address() == at(primary_port));
  BOOST_TEST(record("a").request_count == 1);
  BOOST_TEST(log_text().find("session_store_sentinel_failed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_sentinel_naming_a_replica_is_refused_by_role) {
  // A real Sentinel that monitors the replica's address under the same name: it answers first,
  // with the replica, and ROLE must refuse it; the store then asks the right Sentinels.
  auto liar = start_sentinel(replica_port, 1);
  make_store(at(liar->port()) + "," + sentinel_list());
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }, 15000ms));
  BOOST_TEST(store->address() == at(primary_port));
  const std::string logged = log_text();
  BOOST_TEST(logged.find("is not the master") != std::string::npos, logged);
  BOOST_TEST(logged.find("session_store_sentinel_demoted") != std::string::npos);
  BOOST_TEST(record("a").request_count == 1);
  liar->stop();
}

BOOST_AUTO_TEST_CASE(wait_refuses_an_increment_no_replica_acknowledged) {
  make_store(sentinel_list());
  BOOST_TEST_REQUIRE(run_until([&] { return store->state() == "ok"; }));
  BOOST_TEST(record("w").request_count == 1);
  replica->pause();
  SessionUpdate refused = record("w");
  BOOST_TEST(!refused.ok);
  BOOST_TEST(refused.error.find("no replica") != std::string::npos, refused.error);
  BOOST_TEST(store->stats().errors >= 1u);
  replica->resume();
  // The refused increment may have been applied all the same: refused is "not promised".
  BOOST_TEST(record_until_acknowledged("w").request_count >= 2);
}

BOOST_AUTO_TEST_CASE(follows_a_failover_after_the_primary_is_killed) {
  make_store_for_failover();
  std::vector<int64_t> acknowledged;
  int attempts = 0;
  auto count_once = [&] {
    ++attempts;
    SessionUpdate update = record("k");
    if (update.ok) acknowledged.push_back(update.request_count);
    return update.ok;
  };
  for (int i = 0; i < 20; ++i) BOOST_TEST_REQUIRE(count_once());
  primary->stop();  // SIGKILL.
  // Keeps counting through the failover until the store uses the promoted replica.
  BOOST_TEST_REQUIRE(run_until(
                         [&] {
                           count_once();
                           return store->address() == at(replica_port);
                         },
                         kFailoverLimit),
                     "no failover; logs in " << dir);
  // The promoted master has no replica yet, so nothing is acknowledged until the old primary
  // comes back as its replica (as an operator or its unit would restart it); then 20 more.
  primary = start_redis(primary_port, {"--requirepass", kPassword, "--masterauth", kPassword,
                                       "--replicaof", "127.0.0.1", std::to_string(replica_port)});
  const std::size_t before = acknowledged.size();
  BOOST_TEST_REQUIRE(run_until(
                         [&] {
                           count_once();
                           return acknowledged.size() >= before + 20;
                         },
                         kFailoverLimit),
                     "counting did not go on; logs in " << dir);
  BOOST_TEST(store->address() == at(replica_port));
  // Every acknowledged increment is in the count, once: each one saw a higher count than the
  // one before, and the final count has them all and no more than were attempted.
  for (std::size_t i = 1; i < acknowledged.size(); ++i) {
    BOOST_TEST(acknowledged[i] > acknowledged[i - 1], "at " << i);
  }
  const int64_t final_count = std::stoll(count_on(replica_port, "k"));
  BOOST_TEST(final_count >= acknowledged.back());
  BOOST_TEST(final_count <= attempts);
  BOOST_TEST(log_text().find("session_store_master_switched") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(switch_master_moves_the_store_without_a_lost_connection) {
  make_store_for_failover();
  BOOST_TEST(record("s").request_count == 1);
  failover_through(*sentinels[1]);
  // No request is made meanwhile: the +switch-master message moves the store (the log shows it
  // arrived; the old primary's demotion also disconnects clients, later).
  wait_until_store_on_replica();
  BOOST_TEST(log_text().find("session_store_master_switched") != std::string::npos);
  // The old primary rejoins as a replica, after which increments are acknowledged again.
  BOOST_TEST(record_until_acknowledged("s").request_count >= 2);
}

BOOST_AUTO_TEST_CASE(a_lost_subscription_moves_to_another_sentinel) {
  make_store_for_failover();
  // The subscription is on the first Sentinel listed; once it is gone, the store must subscribe
  // to another to hear of the next failover.
  sentinels[0]->stop();
  BOOST_TEST_REQUIRE(run_until([&] { return occurrences("session_store_subscribed") >= 2; }));
  failover_through(*sentinels[2]);
  wait_until_store_on_replica();
  BOOST_TEST(occurrences("session_store_master_switched") >= 1);
  BOOST_TEST(record_until_acknowledged("l").request_count >= 1);
}

BOOST_AUTO_TEST_CASE(a_failover_missed_while_resubscribing_is_still_followed) {
  make_store_for_failover();
  // Nothing may be in flight while the loop stands still below: timers run before a loop reads
  // its sockets, so a reply that came meanwhile would count as late (DBSIZE, sent as the store
  // became ready, is answered before this increment).
  record_until_acknowledged("m");
  // The loop does not run from here until the Sentinels have switched: the store cannot hear the
  // +switch-master (its Sentinel is gone and it has not subscribed elsewhere yet), so only its
  // check on subscribing again can find the new master.
  sentinels[0]->stop();
  failover_through(*sentinels[2]);
  const auto deadline = std::chrono::steady_clock::now() + kFailoverLimit;
  auto switched = [&](const RedisProcess& sentinel) {
    auto master =
        redis_command(sentinel.port(), kPassword, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", kName});
    return master && master->size() == 2 && (*master)[1] == std::to_string(replica_port);
  };
  while (!(switched(*sentinels[1]) && switched(*sentinels[2])) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  wait_until_store_on_replica();
  BOOST_TEST(occurrences("session_store_master_moved") == 1);
  BOOST_TEST(occurrences("session_store_master_switched") == 0);
}

BOOST_AUTO_TEST_SUITE_END()
