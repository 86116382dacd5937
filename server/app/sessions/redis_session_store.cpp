#include "app/sessions/redis_session_store.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <stdexcept>

#include "app/sessions/redis_poller.hpp"
#include "tandem/log.hpp"

namespace tandem {
namespace {

// Counts one request and refreshes the TTL in one step, so concurrent instances never lose an
// update and a session never keeps a count without its deadline. ARGV[3] is "1" to create the
// session; otherwise an unknown key is left alone and -1 says so (ids are only ever issued by a
// server, never adopted from a client).
constexpr const char* kRecordScript =
    "if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end "
    "local n = redis.call('HINCRBY', KEYS[1], 'requestCount', 1) "
    "redis.call('HSET', KEYS[1], 'clientId', ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[2]) "
    "return n";
constexpr const char* kKeyPrefix = "tandem:session:";
constexpr uint64_t kDeadlineCheckMs = 50;
constexpr uint64_t kStatsIntervalMs = 5000;

uint64_t to_ms(std::chrono::milliseconds duration) {
  return static_cast<uint64_t>(duration.count());
}

}  // namespace

RedisSessionStore::RedisSessionStore(uv_loop_t* loop, RedisEndpoint endpoint,
                                     std::chrono::seconds ttl, Log& log)
    : RedisSessionStore(loop, std::make_unique<FixedEndpointSource>(std::move(endpoint)), ttl,
                        log) {}

RedisSessionStore::RedisSessionStore(uv_loop_t* loop, std::unique_ptr<RedisEndpointSource> source,
                                     std::chrono::seconds ttl, Log& log)
    : loop_(loop), source_(std::move(source)), ttl_(ttl), log_(log) {
  for (uv_timer_t* timer : {&reconnect_timer_, &deadline_timer_, &stats_timer_}) {
    if (int rc = uv_timer_init(loop_, timer); rc != 0) {
      throw std::runtime_error(std::string("cannot make a timer: ") + uv_err_name(rc));
    }
    timer->data = this;
  }
}

RedisSessionStore::~RedisSessionStore() {
  // The server closes the store before its loop ends; this only guards against a path that didn't.
  if (context_ != nullptr) {
    redisAsyncContext* context = context_;
    context_ = nullptr;
    context->data = nullptr;
    redisAsyncFree(context);
  }
}

void RedisSessionStore::start() {
  uv_timer_start(
      &deadline_timer_,
      [](uv_timer_t* timer) { static_cast<RedisSessionStore*>(timer->data)->check_deadlines(); },
      kDeadlineCheckMs, kDeadlineCheckMs);
  uv_timer_start(
      &stats_timer_,
      [](uv_timer_t* timer) { static_cast<RedisSessionStore*>(timer->data)->refresh_stats(); },
      kStatsIntervalMs, kStatsIntervalMs);
  // Housekeeping must not keep a draining server alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&deadline_timer_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&stats_timer_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&reconnect_timer_));
  source_->start([this](const std::string& host, uint16_t port) { on_moved(host, port); });
  connect();
}

std::string RedisSessionStore::state() const {
  if (ready_) return "ok";
  // Connected but AUTH/SELECT not yet answered counts as connecting.
  if (state_ == State::kResolving || state_ == State::kConnecting || state_ == State::kConnected) {
    return "connecting";
  }
  if (state_ == State::kClosed) return "closed";
  return "unavailable";
}

std::string RedisSessionStore::address() const {
  return ready_ ? node_.host + ":" + std::to_string(node_.port) : std::string();
}

void RedisSessionStore::connect() {
  if (state_ == State::kClosed) return;
  state_ = State::kResolving;
  ready_ = false;
  source_->resolve([this](std::optional<RedisEndpoint> node, std::string error) {
    on_resolved(std::move(node), std::move(error));
  });
}

void RedisSessionStore::on_resolved(std::optional<RedisEndpoint> node, std::string error) {
  if (state_ != State::kResolving) return;
  if (!node) {
    last_error_ = std::move(error);
    state_ = State::kIdle;
    log_.warn("session_store_resolve_failed", {{"error", last_error_}});
    schedule_reconnect();
    return;
  }
  node_ = std::move(*node);
  open();
}

void RedisSessionStore::open() {
  state_ = State::kConnecting;
  redisAsyncContext* context = RedisPoller::connect(node_.host, node_.port, loop_, last_error_);
  if (context == nullptr) {
    state_ = State::kIdle;
    schedule_reconnect();
    return;
  }
  context->data = this;
  redisAsyncSetConnectCallback(context, on_connect_callback);
  redisAsyncSetDisconnectCallback(context, on_disconnect_callback);
  context_ = context;
  connect_deadline_ = std::chrono::steady_clock::now() + kConnectTimeout;
  // hiredis queues these until the socket is up; their replies come before any request's.
  pending_handshakes_ = 0;
  auto handshake_done = [this](SessionUpdate update) {
    // A handshake failed by fail_connection itself (the context is already detached) is no news.
    if (!update.ok) {
      if (context_ != nullptr) fail_connection("Redis refused the handshake: " + update.error);
      return;
    }
    if (--pending_handshakes_ == 0 && state_ == State::kConnected) become_ready();
  };

  // hiredis only fails to queue a command on a context it is freeing, which this one is not.
  if (!node_.password.empty()) {
    ++pending_handshakes_;
    RedisPoller::auth(context_, on_reply_callback, track(handshake_done, true), node_.user,
                      node_.password);
  }
  if (node_.db != 0) {
    ++pending_handshakes_;
    redisAsyncCommand(context_, on_reply_callback, track(handshake_done, true), "SELECT %d",
                      node_.db);
  }
  // A PING answered, not a TCP connect, makes the store ready: the kernel completes connects for
  // a Redis that is hung (stopped, swapping), which would otherwise count as healthy. Behind
  // Sentinel, ROLE does that and also proves the node is the master, not a replica a Sentinel
  // named before it heard of a failover.
  ++pending_handshakes_;
  Command* last = track(handshake_done, true);
  last->role = source_->replicated();
  redisAsyncCommand(context_, on_reply_callback, last, last->role ? "ROLE" : "PING");
}

void RedisSessionStore::on_moved(const std::string& host, uint16_t port) {
  if (state_ == State::kClosed) return;
  if (context_ != nullptr && host == node_.host && port == node_.port) return;  // Already there.
  if (context_ != nullptr) {
    fail_connection("the master moved to " + host + ":" + std::to_string(port));
  }
  // Go at once, not after a backoff grown while the old master was dying.
  if (state_ == State::kIdle) {
    uv_timer_stop(&reconnect_timer_);
    backoff_ = kMinBackoff;
    schedule_reconnect();
  }
}

void RedisSessionStore::on_connect_callback(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisSessionStore*>(context->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) self->last_error_ = context->errstr;
  self->on_connected(status);
}

void RedisSessionStore::on_connected(int status) {
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback and fails its queued commands.
    context_ = nullptr;
    state_ = State::kIdle;
    log_.warn("session_store_connect_failed",
              {{"host", node_.host}, {"port", node_.port}, {"error", last_error_}});
    schedule_reconnect();
    return;
  }
  state_ = State::kConnected;
  // Requests wait for AUTH, SELECT and PING: before those, they could reach the wrong database
  // or a Redis that does not answer.
  if (pending_handshakes_ == 0) become_ready();
}

void RedisSessionStore::become_ready() {
  ready_ = true;
  backoff_ = kMinBackoff;
  last_error_.clear();
  log_.info("session_store_connected",
            {{"host", node_.host}, {"port", node_.port}, {"db", node_.db}});
  refresh_stats();
}

void RedisSessionStore::on_disconnect_callback(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisSessionStore*>(context->data);
  if (self == nullptr) return;
  if (status != REDIS_OK && context->errstr[0] != '\0') self->last_error_ = context->errstr;
  self->on_disconnected(status);
}

void RedisSessionStore::on_disconnected(int) {
  // The context is freed by hiredis once this returns.
  context_ = nullptr;
  ready_ = false;
  if (state_ == State::kClosed) return;
  state_ = State::kIdle;
  log_.warn("session_store_disconnected", {{"error", last_error_}});
  schedule_reconnect();
}

RedisSessionStore::Command* RedisSessionStore::track(Callback done, bool handshake, bool request) {
  auto command = std::make_unique<Command>();
  command->store = this;
  command->done = std::move(done);
  command->handshake = handshake;
  command->request = request;
  if (request) ++requests_waiting_;
  command->deadline = std::chrono::steady_clock::now() + kCommandTimeout;
  commands_.push_back(std::move(command));
  return commands_.back().get();
}

void RedisSessionStore::record_request(const std::string& session_id, const std::string& client_id,
                                       bool create, Callback done) {
  auto refuse = [&](const std::string& reason) {
    ++stats_.errors;
    if (done) done(SessionUpdate::failure(reason));
  };
  if (!ready_ || context_ == nullptr) {
    refuse(state_ == State::kResolving || state_ == State::kConnecting ||
                   state_ == State::kConnected
               ? "still connecting to " + source_->describe()
               : source_->describe() + " is unreachable" +
                     (last_error_.empty() ? "" : " (" + last_error_ + ")"));
    return;
  }
  if (requests_waiting_ >= kMaxPending) {
    refuse("too many requests are waiting for Redis; retry shortly");
    return;
  }
  send_increment(kKeyPrefix + session_id, client_id, create,
                 [this, done = std::move(done)](SessionUpdate update) {
                   if (update.ok && update.request_count < 0) {
                     update.found = false;
                     update.request_count = 0;
                     ++stats_.rejected;
                   } else if (update.ok && update.request_count == 1) {
                     ++stats_.created;
                   }
                   if (!update.ok) ++stats_.errors;
                   if (done) done(std::move(update));
                 });
}

void RedisSessionStore::send_increment(const std::string& key, const std::string& client_id,
                                       bool create, Callback done) {
  // The script's answer, kept for WAIT's callback when WAIT decides (behind Sentinel).
  auto counted = std::make_shared<SessionUpdate>(SessionUpdate::failure("Redis did not answer"));
  Command* command =
      source_->replicated()
          ? track([counted](SessionUpdate update) { *counted = std::move(update); }, false, true)
          : track(std::move(done), false, true);
  const std::string ttl = std::to_string(ttl_.count());
  const char* create_flag = create ? "1" : "0";
  if (redisAsyncCommand(context_, on_reply_callback, command, "EVAL %s 1 %b %b %b %s",
                        kRecordScript, key.data(), key.size(), client_id.data(), client_id.size(),
                        ttl.data(), ttl.size(), create_flag) != REDIS_OK) {
    // Without WAIT the command held the caller's callback; with it, `done` still does.
    Callback failed = source_->replicated() ? std::move(done) : std::move(command->done);
    --requests_waiting_;
    commands_.pop_back();
    failed(SessionUpdate::failure("cannot send the command to Redis"));
    return;
  }
  if (!source_->replicated()) return;
  // WAIT right behind the script on the same connection: replies come in order, and WAIT covers
  // every write this connection made before it, the script's included.
  Command* wait = track(
      [counted, done = std::move(done)](SessionUpdate replicas) {
        // A failed script, or an unknown session (-1, nothing written), needs no replica.
        if (!counted->ok || counted->request_count < 0) return done(*counted);
        if (!replicas.ok) return done(replicas);
        if (replicas.request_count < kWaitReplicas) {
          return done(SessionUpdate::failure(
              "the update reached no replica within " + std::to_string(kWaitTimeout.count()) +
              " ms, so it might not survive a failover; retry shortly"));
        }
        done(*counted);
      },
      false);
  if (redisAsyncCommand(context_, on_reply_callback, wait, "WAIT %d %d", kWaitReplicas,
                        static_cast<int>(kWaitTimeout.count())) != REDIS_OK) {
    Callback failed = std::move(wait->done);
    commands_.pop_back();
    failed(SessionUpdate::failure("cannot send WAIT to Redis"));
  }
}

void RedisSessionStore::on_reply_callback(redisAsyncContext* context, void* reply, void* privdata) {
  auto* command = static_cast<Command*>(privdata);
  RedisSessionStore* store = command->store;
  store->on_reply(command, static_cast<redisReply*>(reply), context == store->context_);
}

void RedisSessionStore::on_reply(Command* command, redisReply* reply, bool current) {
  Callback done = std::move(command->done);
  command->done = nullptr;
  const bool role = command->role;
  // Replies come in order, so the command is almost always at the front.
  auto found = std::find_if(commands_.begin(), commands_.end(),
                            [command](const auto& item) { return item.get() == command; });
  if (found != commands_.end()) {
    if ((*found)->request) --requests_waiting_;
    commands_.erase(found);
  }
  if (!done) return;  // Already answered by a timeout or a lost connection.
  const std::string where = node_.host + ":" + std::to_string(node_.port);
  if (reply == nullptr) {
    done(SessionUpdate::failure("the connection to Redis was lost"));
  } else if (reply->type == REDIS_REPLY_ERROR) {
    const std::string error(reply->str, reply->len);
    done(SessionUpdate::failure("Redis answered: " + error));
    // A master demoted to a replica refuses writes: the master is elsewhere now.
    if (current && context_ != nullptr && error.rfind("READONLY", 0) == 0) {
      fail_connection("Redis at " + where + " is no longer the master (READONLY)");
    }
  } else if (role) {
    const bool master = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                        reply->element[0]->type == REDIS_REPLY_STRING &&
                        std::string(reply->element[0]->str, reply->element[0]->len) == "master";
    if (master) {
      done(SessionUpdate::counted(0));
    } else {
      source_->refused();
      done(SessionUpdate::failure("Redis at " + where + " is not the master"));
    }
  } else if (reply->type == REDIS_REPLY_INTEGER) {
    done(SessionUpdate::counted(reply->integer));
  } else {
    done(SessionUpdate::counted(0));  // AUTH and SELECT answer +OK, PING +PONG.
  }
}

void RedisSessionStore::fail_connection(const std::string& reason) {
  last_error_ = reason;
  ready_ = false;
  redisAsyncContext* context = context_;
  context_ = nullptr;
  log_.warn("session_store_failed",
            {{"error", reason}, {"waiting", Json::UInt64(commands_.size())}});
  // Answer everyone now; hiredis still calls each command back (with no reply) when it frees the
  // context, which is when they leave commands_.
  for (std::size_t i = 0; i < commands_.size(); ++i) {
    Command& command = *commands_[i];
    if (!command.done) continue;
    Callback done = std::move(command.done);
    command.done = nullptr;
    done(SessionUpdate::failure(reason));
  }
  if (context != nullptr) redisAsyncFree(context);
  if (state_ != State::kClosed) {
    state_ = State::kIdle;
    schedule_reconnect();
  }
}

void RedisSessionStore::schedule_reconnect() {
  if (state_ == State::kClosed || uv_is_active(reinterpret_cast<uv_handle_t*>(&reconnect_timer_))) {
    return;
  }
  // Exponential backoff, so a Redis that is down is not hammered by every instance at once.
  uint64_t delay = to_ms(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  uv_timer_start(
      &reconnect_timer_,
      [](uv_timer_t* timer) { static_cast<RedisSessionStore*>(timer->data)->connect(); }, delay, 0);
}

void RedisSessionStore::check_deadlines() {
  auto now = std::chrono::steady_clock::now();
  if (state_ == State::kConnecting && context_ != nullptr && now > connect_deadline_) {
    fail_connection("connecting to Redis at " + node_.host + ":" + std::to_string(node_.port) +
                    " timed out");
    return;
  }
  for (const auto& command : commands_) {
    if (!command->done) continue;
    if (now > command->deadline) {
      fail_connection("Redis did not answer within " + std::to_string(kCommandTimeout.count()) +
                      " ms");
    }
    return;  // Later commands were sent later: only the oldest waiting one can be late first.
  }
}

void RedisSessionStore::refresh_stats() {
  // Housekeeping waits while the queue is long: Redis is busy or stuck, the gauge can wait.
  if (!ready_ || context_ == nullptr || commands_.size() >= kMaxPending) return;
  Command* command = track(
      [this](SessionUpdate update) {
        if (update.ok) stats_.active = static_cast<uint64_t>(update.request_count);
      },
      false);
  // DBSIZE counts the keys of tandem's database: give tandem a database of its own.
  redisAsyncCommand(context_, on_reply_callback, command, "DBSIZE");
}

void RedisSessionStore::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  for (uv_timer_t* timer : {&reconnect_timer_, &deadline_timer_, &stats_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
  }
  source_->close();
  fail_connection("the server is shutting down");
}

}  // namespace tandem
