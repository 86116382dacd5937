#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "app/sessions/redis_endpoint_source.hpp"
#include "app/sessions/sentinel_endpoint.hpp"

struct redisAsyncContext;
struct redisReply;

namespace tandem {

class Log;

// Finds the Redis master through Redis Sentinel, following Redis's documented client procedure:
// the Sentinels are asked in order (each connect and answer bounded by kSentinelTimeout) for
// SENTINEL GET-MASTER-ADDR-BY-NAME; the first that names an address wins and moves to the front
// of the list. The store then confirms with ROLE, and calls refused() when the node is not the
// master, which sends that Sentinel to the back. A second connection stays subscribed to
// +switch-master on one Sentinel (another one when it goes away), so a failover moves the store
// at once; the new address it carries is tried first on the next resolve, still confirmed by
// ROLE. Each time the subscription is (re)made, the Sentinels are asked again, since a message
// sent while it was down is lost. Everything runs on the loop: no call here waits for the network.
class SentinelResolver final : public RedisEndpointSource {
 public:
  SentinelResolver(uv_loop_t* loop, SentinelEndpoint endpoint, Log& log);
  SentinelResolver(const SentinelResolver&) = delete;
  SentinelResolver& operator=(const SentinelResolver&) = delete;
  ~SentinelResolver() override;

  std::string kind() const override { return "sentinel"; }
  std::string describe() const override;
  bool replicated() const override { return true; }
  void start(Moved moved) override;
  void resolve(Resolved done) override;
  void refused() override;
  void close() override;

  // One Sentinel's connect plus answer: past it, the next Sentinel is asked.
  static constexpr std::chrono::milliseconds kSentinelTimeout{500};
  // Before subscribing again after the subscription's Sentinel went away.
  static constexpr std::chrono::milliseconds kResubscribeDelay{500};
  // How long a +switch-master's address may stand in for asking the Sentinels: long enough for
  // the reconnect it causes, too short to outlive a later lost connection.
  static constexpr std::chrono::milliseconds kHintLifetime{5000};

 private:
  // Asks the Sentinel at `index` of the list; past the end, resolving fails.
  void ask(std::size_t index);
  void on_answer(redisReply* reply);
  // The Sentinel being asked failed (`why`): asks the next one.
  void ask_next(const std::string& why);
  // Hands the result to the store's resolve, or, for a check, tells the store if it moved.
  void finish(std::optional<RedisEndpoint> node, std::string error);
  // Asks the Sentinels whether the master is still the one last handed out (after subscribing).
  void verify();
  // Frees `context` (hiredis defers that inside its callbacks) and forgets it.
  static void drop(redisAsyncContext*& context);
  void drop_query();
  void subscribe();
  void on_message(redisReply* reply);
  void drop_subscription();
  void schedule_resubscribe();
  std::string sentinel_name(std::size_t index) const;

  static void on_auth_callback(redisAsyncContext* context, void* reply, void* privdata);
  static void on_answer_callback(redisAsyncContext* context, void* reply, void* privdata);
  static void on_subscribe_auth_callback(redisAsyncContext* context, void* reply, void* privdata);
  static void on_message_callback(redisAsyncContext* context, void* reply, void* privdata);

  uv_loop_t* loop_;
  SentinelEndpoint endpoint_;
  Log& log_;
  bool closed_ = false;
  Moved moved_;
  Resolved pending_;              // The store's resolve in progress; empty when none.
  std::optional<HostPort> hint_;  // From +switch-master, tried first by the next resolve.
  std::chrono::steady_clock::time_point hint_until_;  // After it, the hint is too old to use.
  std::optional<HostPort> handed_out_;                // The node the store was last given.
  bool verifying_ = false;           // The query in progress is verify()'s, not resolve()'s.
  bool last_from_sentinel_ = false;  // Whether the last node resolved came from a Sentinel.
  std::size_t asking_ = 0;           // Index of the Sentinel being asked.
  std::string last_error_;           // Why the last Sentinel asked did not answer.
  redisAsyncContext* query_ = nullptr;
  redisAsyncContext* subscription_ = nullptr;
  std::size_t subscribed_to_ = 0;  // Index of the Sentinel the subscription uses.
  uv_timer_t query_timer_;         // Bounds one Sentinel's connect plus answer.
  uv_timer_t resubscribe_timer_;
};

}  // namespace tandem
