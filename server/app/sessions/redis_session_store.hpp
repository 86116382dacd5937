#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "app/sessions/redis_endpoint.hpp"
#include "app/sessions/redis_endpoint_source.hpp"
#include "app/sessions/session_store.hpp"

struct redisAsyncContext;
struct redisReply;

namespace tandem {

class Log;

// Sessions in Redis, shared by every instance, so a client redispatched after its instance died
// keeps its session. Fully asynchronous on the server's loop (hiredis with its libuv adapter):
// the loop never waits for Redis. Each session is a hash `tandem:session:<id>` whose TTL is
// refreshed on use; requestCount is incremented by HINCRBY inside one script, so two instances
// serving the same session never lose an update.
//
// Failure handling: commands waiting on Redis are bounded in number (kMaxPending) and in time
// (kCommandTimeout); past either, requests fail at once with an error the handler turns into a
// 503. A connection that is lost, refused or stuck is dropped and re-established with exponential
// backoff, without a restart. The node is asked of the source before every connection, never
// remembered across a lost one.
//
// Behind Sentinel (a source that is replicated()): the node must answer ROLE with "master" before
// it is used; a -READONLY reply (a demoted master) or a +switch-master for another address drops
// the connection and resolves again; and an increment is acknowledged only once WAIT says at
// least kWaitReplicas replicas have it, else the request fails like any Redis failure. Sentinel
// promotes the replica with the most replicated data, so an acknowledged increment survives a
// failover; an unacknowledged one may survive too, or not.
class RedisSessionStore final : public SessionStore {
 public:
  // A single Redis at a fixed address.
  RedisSessionStore(uv_loop_t* loop, RedisEndpoint endpoint, std::chrono::seconds ttl, Log& log);
  // Redis wherever `source` says (a fixed address, or the master the Sentinels name).
  RedisSessionStore(uv_loop_t* loop, std::unique_ptr<RedisEndpointSource> source,
                    std::chrono::seconds ttl, Log& log);
  RedisSessionStore(const RedisSessionStore&) = delete;
  RedisSessionStore& operator=(const RedisSessionStore&) = delete;
  ~RedisSessionStore() override;

  // Starts connecting; requests made before the connection is up fail with "connecting".
  void start();
  // Fails every waiting request, drops the connection and closes the timers (server shutdown).
  void close() override;

  void record_request(const std::string& session_id, const std::string& client_id, bool create,
                      Callback done) override;
  SessionStoreStats stats() const override { return stats_; }
  std::string kind() const override { return source_->kind(); }
  std::string state() const override;
  // host:port of the node in use; empty while none is ready.
  std::string address() const;

  static constexpr std::size_t kMaxPending = 1024;
  static constexpr std::chrono::milliseconds kCommandTimeout{1000};
  static constexpr std::chrono::milliseconds kConnectTimeout{1000};
  static constexpr std::chrono::milliseconds kMinBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{2000};
  // Behind Sentinel: one replica holding an increment is what makes it survive a failover, since
  // Sentinel promotes the replica with the most data; a few hundred ms covers a replica's ack on
  // a healthy network and keeps a lost replica from holding the connection (WAIT blocks it)
  // for long, well inside kCommandTimeout.
  static constexpr int kWaitReplicas = 1;
  static constexpr std::chrono::milliseconds kWaitTimeout{300};

 private:
  enum class State { kIdle, kResolving, kConnecting, kConnected, kClosed };

  // One command waiting for its reply; replies arrive in the order commands were sent.
  struct Command {
    RedisSessionStore* store = nullptr;
    Callback done;  // Empty once answered (by Redis, or by a timeout or a lost connection).
    std::chrono::steady_clock::time_point deadline;
    bool handshake = false;  // AUTH/SELECT: a failure means the connection is unusable.
    bool request = false;    // A client's request (counted against kMaxPending).
    bool role = false;       // ROLE: anything but "master" is a failure.
  };

  // Asks the source for the node, then opens a connection to it.
  void connect();
  void on_resolved(std::optional<RedisEndpoint> node, std::string error);
  void open();
  // The source says the master is now host:port.
  void on_moved(const std::string& host, uint16_t port);
  void send_increment(const std::string& key, const std::string& client_id, bool create,
                      Callback done);
  void on_connected(int status);
  void become_ready();
  void on_disconnected(int status);
  void on_reply(Command* command, redisReply* reply, bool current);
  // Answers every waiting command with `reason` and drops the connection; reconnects later.
  void fail_connection(const std::string& reason);
  void schedule_reconnect();
  void check_deadlines();
  void refresh_stats();
  Command* track(Callback done, bool handshake, bool request = false);

  static void on_connect_callback(const redisAsyncContext* context, int status);
  static void on_disconnect_callback(const redisAsyncContext* context, int status);
  static void on_reply_callback(redisAsyncContext* context, void* reply, void* privdata);

  uv_loop_t* loop_;
  std::unique_ptr<RedisEndpointSource> source_;
  RedisEndpoint node_;  // The node of the current (or last) connection.
  std::chrono::seconds ttl_;
  Log& log_;
  redisAsyncContext* context_ = nullptr;
  State state_ = State::kIdle;
  bool ready_ = false;          // Connected, and AUTH/SELECT went through.
  int pending_handshakes_ = 0;  // AUTH/SELECT sent on this connection, not yet answered.
  std::string last_error_;
  std::deque<std::unique_ptr<Command>> commands_;
  std::size_t requests_waiting_ = 0;  // Commands in commands_ that are clients' requests.
  std::chrono::milliseconds backoff_ = kMinBackoff;
  std::chrono::steady_clock::time_point connect_deadline_;
  uv_timer_t reconnect_timer_;
  uv_timer_t deadline_timer_;  // Checks command and connect deadlines.
  uv_timer_t stats_timer_;     // Reads DBSIZE for the active-session gauge.
  SessionStoreStats stats_;
};

}  // namespace tandem
