#include "app/sessions/redis_session_store.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>

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
    : loop_(loop), endpoint_(std::move(endpoint)), ttl_(ttl), log_(log) {
  for (uv_timer_t* timer : {&reconnect_timer_, &deadline_timer_, &stats_timer_}) {
    uv_timer_init(loop_, timer);
    timer->data = this;
    ++open_timers_;
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
  connect();
}

std::string RedisSessionStore::state() const {
  if (ready_) return "ok";
  // Connected but AUTH/SELECT not yet answered counts as connecting.
  if (state_ == State::kConnecting || state_ == State::kConnected) return "connecting";
  if (state_ == State::kClosed) return "closed";
  return "unavailable";
}

void RedisSessionStore::connect() {
  if (state_ == State::kClosed) return;
  state_ = State::kConnecting;
  ready_ = false;
  redisAsyncContext* context = redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port);
  if (context == nullptr || context->err != 0) {
    last_error_ = context != nullptr ? context->errstr : "cannot allocate a Redis context";
    if (context != nullptr) redisAsyncFree(context);
    state_ = State::kIdle;
    schedule_reconnect();
    return;
  }
  context->data = this;
  if (!RedisPoller::attach(context, loop_)) {
    last_error_ = "cannot attach Redis to the event loop";
    redisAsyncFree(context);
    state_ = State::kIdle;
    schedule_reconnect();
    return;
  }
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

  if (!endpoint_.password.empty()) {
    ++pending_handshakes_;
    Command* command = track(handshake_done, true);
    if (endpoint_.user.empty()) {
      redisAsyncCommand(context_, on_reply_callback, command, "AUTH %b", endpoint_.password.data(),
                        endpoint_.password.size());
    } else {
      redisAsyncCommand(context_, on_reply_callback, command, "AUTH %b %b", endpoint_.user.data(),
                        endpoint_.user.size(), endpoint_.password.data(),
                        endpoint_.password.size());
    }
  }
  if (endpoint_.db != 0) {
    ++pending_handshakes_;
    redisAsyncCommand(context_, on_reply_callback, track(handshake_done, true), "SELECT %d",
                      endpoint_.db);
  }
  // A PING answered, not a TCP connect, makes the store ready: the kernel completes connects for
  // a Redis that is hung (stopped, swapping), which would otherwise count as healthy.
  ++pending_handshakes_;
  redisAsyncCommand(context_, on_reply_callback, track(handshake_done, true), "PING");
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
              {{"host", endpoint_.host}, {"port", endpoint_.port}, {"error", last_error_}});
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
            {{"host", endpoint_.host}, {"port", endpoint_.port}, {"db", endpoint_.db}});
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
    std::string where = endpoint_.host + ":" + std::to_string(endpoint_.port);
    refuse(state_ == State::kConnecting || state_ == State::kConnected
               ? "still connecting to Redis at " + where
               : "Redis at " + where + " is unreachable" +
                     (last_error_.empty() ? "" : " (" + last_error_ + ")"));
    return;
  }
  if (requests_waiting_ >= kMaxPending) {
    refuse("too many requests are waiting for Redis; retry shortly");
    return;
  }
  std::string key = kKeyPrefix + session_id;
  std::string ttl = std::to_string(ttl_.count());
  Command* command = track(
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
      },
      false, true);
  const char* create_flag = create ? "1" : "0";
  int result = redisAsyncCommand(context_, on_reply_callback, command, "EVAL %s 1 %b %b %b %s",
                                 kRecordScript, key.data(), key.size(), client_id.data(),
                                 client_id.size(), ttl.data(), ttl.size(), create_flag);
  if (result != REDIS_OK) {
    Callback failed = std::move(command->done);
    commands_.pop_back();
    --requests_waiting_;
    failed(SessionUpdate::failure("cannot send the command to Redis"));
  }
}

void RedisSessionStore::on_reply_callback(redisAsyncContext*, void* reply, void* privdata) {
  auto* command = static_cast<Command*>(privdata);
  command->store->on_reply(command, static_cast<redisReply*>(reply));
}

void RedisSessionStore::on_reply(Command* command, redisReply* reply) {
  Callback done = std::move(command->done);
  command->done = nullptr;
  // Replies come in order, so the command is almost always at the front.
  auto found = std::find_if(commands_.begin(), commands_.end(),
                            [command](const auto& item) { return item.get() == command; });
  if (found != commands_.end()) {
    if ((*found)->request) --requests_waiting_;
    commands_.erase(found);
  }
  if (!done) return;  // Already answered by a timeout or a lost connection.
  if (reply == nullptr) {
    done(SessionUpdate::failure("the connection to Redis was lost"));
  } else if (reply->type == REDIS_REPLY_ERROR) {
    done(SessionUpdate::failure("Redis answered: " + std::string(reply->str, reply->len)));
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
    fail_connection("connecting to Redis at " + endpoint_.host + ":" +
                    std::to_string(endpoint_.port) + " timed out");
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
  fail_connection("the server is shutting down");
}

}  // namespace tandem
