#include "app/sessions/sentinel_resolver.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "app/sessions/redis_poller.hpp"
#include "runtime/config.hpp"
#include "tandem/log.hpp"

namespace tandem {
namespace {

constexpr const char* kSwitchChannel = "+switch-master";

std::string reply_text(const redisReply* reply) {
  return reply->str != nullptr ? std::string(reply->str, reply->len) : std::string();
}

bool is_text(const redisReply* reply) {
  return reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS;
}

uint64_t to_ms(std::chrono::milliseconds duration) {
  return static_cast<uint64_t>(duration.count());
}

}  // namespace

SentinelResolver::SentinelResolver(uv_loop_t* loop, SentinelEndpoint endpoint, Log& log)
    : loop_(loop), endpoint_(std::move(endpoint)), log_(log) {
  for (uv_timer_t* timer : {&query_timer_, &resubscribe_timer_}) {
    if (int rc = uv_timer_init(loop_, timer); rc != 0) {
      throw std::runtime_error(std::string("cannot make a timer: ") + uv_err_name(rc));
    }
    timer->data = this;
    // Housekeeping must not keep a draining server alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(timer));
  }
}

SentinelResolver::~SentinelResolver() {
  // The store closes the resolver before the loop ends; this only guards a path that didn't.
  drop_query();
  drop_subscription();
}

std::string SentinelResolver::describe() const {
  return "the Redis master '" + endpoint_.master_name + "' (via Sentinel)";
}

std::string SentinelResolver::sentinel_name(std::size_t index) const {
  const HostPort& sentinel = endpoint_.sentinels[index];
  return sentinel.host + ":" + std::to_string(sentinel.port);
}

void SentinelResolver::start(Moved moved) {
  moved_ = std::move(moved);
  subscribe();
}

void SentinelResolver::resolve(Resolved done) {
  if (closed_) return;
  pending_ = std::move(done);
  verifying_ = false;  // This resolve supersedes a check in progress.
  drop_query();
  if (hint_ && std::chrono::steady_clock::now() < hint_until_) {
    // +switch-master named the new master: try it first; the store's ROLE check still decides.
    HostPort hint = std::move(*hint_);
    hint_.reset();
    last_from_sentinel_ = false;
    finish(endpoint_.node(hint), {});
    return;
  }
  hint_.reset();
  last_error_.clear();
  ask(0);
}

void SentinelResolver::ask(std::size_t index) {
  asking_ = index;
  if (index >= endpoint_.sentinels.size()) {
    finish(std::nullopt,
           "no Sentinel named a master for '" + endpoint_.master_name + "' (" + last_error_ + ")");
    return;
  }
  const HostPort& sentinel = endpoint_.sentinels[index];
  std::string error;
  redisAsyncContext* context = RedisPoller::connect(sentinel.host, sentinel.port, loop_, error);
  if (context == nullptr) {
    ask_next(error);
    return;
  }
  query_ = context;
  if (int rc = uv_timer_start(
          &query_timer_,
          [](uv_timer_t* timer) {
            auto* self = static_cast<SentinelResolver*>(timer->data);
            self->drop_query();
            self->ask_next("no answer within " + std::to_string(kSentinelTimeout.count()) + " ms");
          },
          to_ms(kSentinelTimeout), 0);
      rc != 0) {
    drop_query();
    ask_next(std::string("cannot start a timer: ") + uv_err_name(rc));
    return;
  }
  // hiredis queues both until the socket is up; the answers come in this order.
  if (!endpoint_.password.empty() &&
      RedisPoller::auth(context, on_auth_callback, this, endpoint_.user, endpoint_.password) !=
          REDIS_OK) {
    drop_query();
    ask_next("cannot send AUTH");
    return;
  }
  if (redisAsyncCommand(context, on_answer_callback, this, "SENTINEL GET-MASTER-ADDR-BY-NAME %b",
                        endpoint_.master_name.data(), endpoint_.master_name.size()) != REDIS_OK) {
    drop_query();
    ask_next("cannot send SENTINEL GET-MASTER-ADDR-BY-NAME");
  }
}

void SentinelResolver::on_auth_callback(redisAsyncContext* context, void* reply, void* privdata) {
  auto* self = static_cast<SentinelResolver*>(privdata);
  // A context already dropped (or being freed by hiredis after an error) is no news.
  if (context != self->query_) return;
  auto* answer = static_cast<redisReply*>(reply);
  if (answer == nullptr) {
    self->query_ = nullptr;  // hiredis frees it after this callback.
    self->ask_next(context->errstr[0] != '\0' ? context->errstr : "connection lost");
  } else if (answer->type == REDIS_REPLY_ERROR) {
    self->drop_query();
    self->ask_next("AUTH refused: " + reply_text(answer));
  }
}

void SentinelResolver::on_answer_callback(redisAsyncContext* context, void* reply, void* privdata) {
  auto* self = static_cast<SentinelResolver*>(privdata);
  if (context != self->query_) return;
  auto* answer = static_cast<redisReply*>(reply);
  if (answer == nullptr) {
    self->query_ = nullptr;
    self->ask_next(context->errstr[0] != '\0' ? context->errstr : "connection lost");
    return;
  }
  self->on_answer(answer);
}

void SentinelResolver::on_answer(redisReply* reply) {
  std::optional<HostPort> master;
  std::string why;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && is_text(reply->element[0]) &&
      is_text(reply->element[1])) {
    const auto port = parse_unsigned(reply_text(reply->element[1]));
    if (port && *port >= 1 && *port <= 65535) {
      master = HostPort{reply_text(reply->element[0]), static_cast<uint16_t>(*port)};
    } else {
      why = "named a bad port";
    }
  } else if (reply->type == REDIS_REPLY_NIL) {
    why = "does not monitor '" + endpoint_.master_name + "'";
  } else if (reply->type == REDIS_REPLY_ERROR) {
    why = "answered " + reply_text(reply);
  } else {
    why = "gave an answer that is not an address";
  }
  // Freed once this callback returns (hiredis defers it), never again by us.
  drop_query();
  if (!master) {
    ask_next(why);
    return;
  }
  // The Sentinel that answered is asked first next time (Redis's client procedure).
  auto& sentinels = endpoint_.sentinels;
  std::rotate(sentinels.begin(), sentinels.begin() + static_cast<std::ptrdiff_t>(asking_),
              sentinels.begin() + static_cast<std::ptrdiff_t>(asking_) + 1);
  log_.info(verifying_ ? "session_store_master_checked" : "session_store_resolved",
            {{"sentinel", sentinel_name(0)},
             {"master", master->host + ":" + std::to_string(master->port)}});
  last_from_sentinel_ = true;
  finish(endpoint_.node(*master), {});
}

void SentinelResolver::ask_next(const std::string& why) {
  last_error_ = "Sentinel " + sentinel_name(asking_) + ": " + why;
  log_.warn("session_store_sentinel_failed", {{"error", last_error_}});
  ask(asking_ + 1);
}

void SentinelResolver::finish(std::optional<RedisEndpoint> node, std::string error) {
  if (int rc = uv_timer_stop(&query_timer_); rc != 0) {
    log_.error("session_store_timer_failed", {{"error", uv_err_name(rc)}});
  }
  if (verifying_) {
    verifying_ = false;
    // News only when the Sentinels name another master than the one the store was given.
    if (node && handed_out_ &&
        (node->host != handed_out_->host || node->port != handed_out_->port)) {
      log_.info("session_store_master_moved",
                {{"to", node->host + ":" + std::to_string(node->port)}});
      handed_out_ = HostPort{node->host, node->port};
      hint_ = handed_out_;
      hint_until_ = std::chrono::steady_clock::now() + kHintLifetime;
      if (moved_) moved_(node->host, node->port);
    }
    return;
  }
  if (node) handed_out_ = HostPort{node->host, node->port};
  Resolved done = std::move(pending_);
  pending_ = nullptr;
  if (done) done(std::move(node), std::move(error));
}

void SentinelResolver::verify() {
  // A resolve in progress finds the current master anyway; before the first, nothing to check.
  if (closed_ || pending_ || query_ != nullptr || !handed_out_) return;
  verifying_ = true;
  last_error_.clear();
  ask(0);
}

void SentinelResolver::refused() {
  if (!last_from_sentinel_ || endpoint_.sentinels.size() < 2) return;
  // The Sentinel at the front named a node that is not the master: ask the others first.
  log_.warn("session_store_sentinel_demoted", {{"sentinel", sentinel_name(0)}});
  std::rotate(endpoint_.sentinels.begin(), endpoint_.sentinels.begin() + 1,
              endpoint_.sentinels.end());
  last_from_sentinel_ = false;
}

void SentinelResolver::drop(redisAsyncContext*& context) {
  redisAsyncContext* dropped = context;
  context = nullptr;
  // Its callbacks, run by hiredis as it frees the context, see it is no longer ours.
  if (dropped != nullptr) redisAsyncFree(dropped);
}

void SentinelResolver::drop_query() { drop(query_); }

void SentinelResolver::subscribe() {
  if (closed_) return;
  const HostPort& sentinel = endpoint_.sentinels[subscribed_to_];
  std::string error;
  redisAsyncContext* context = RedisPoller::connect(sentinel.host, sentinel.port, loop_, error);
  if (context == nullptr) {
    log_.warn("session_store_subscription_failed",
              {{"sentinel", sentinel_name(subscribed_to_)}, {"error", error}});
    schedule_resubscribe();
    return;
  }
  subscription_ = context;
  // Regular replies (AUTH's) come before the subscription's messages.
  bool sent = (endpoint_.password.empty() ||
               RedisPoller::auth(context, on_subscribe_auth_callback, this, endpoint_.user,
                                 endpoint_.password) == REDIS_OK) &&
              redisAsyncCommand(context, on_message_callback, this, "SUBSCRIBE %s",
                                kSwitchChannel) == REDIS_OK;
  if (!sent) {
    drop_subscription();
    schedule_resubscribe();
  }
}

void SentinelResolver::on_subscribe_auth_callback(redisAsyncContext* context, void* reply,
                                                  void* privdata) {
  auto* self = static_cast<SentinelResolver*>(privdata);
  auto* answer = static_cast<redisReply*>(reply);
  // A lost connection reaches on_message_callback too; only a refusal is handled here.
  if (context != self->subscription_ || answer == nullptr || answer->type != REDIS_REPLY_ERROR) {
    return;
  }
  self->log_.warn("session_store_subscription_failed",
                  {{"sentinel", self->sentinel_name(self->subscribed_to_)},
                   {"error", "AUTH refused: " + reply_text(answer)}});
  self->drop_subscription();
  self->schedule_resubscribe();
}

void SentinelResolver::on_message_callback(redisAsyncContext* context, void* reply,
                                           void* privdata) {
  auto* self = static_cast<SentinelResolver*>(privdata);
  if (context != self->subscription_) return;
  if (reply == nullptr) {
    // The Sentinel went away; hiredis frees the context after this callback.
    self->subscription_ = nullptr;
    self->log_.warn("session_store_subscription_lost",
                    {{"sentinel", self->sentinel_name(self->subscribed_to_)},
                     {"error", context->errstr[0] != '\0' ? context->errstr : "closed"}});
    self->schedule_resubscribe();
    return;
  }
  self->on_message(static_cast<redisReply*>(reply));
}

void SentinelResolver::on_message(redisReply* reply) {
  // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 || !is_text(reply->element[0])) {
    return;  // Nothing we know.
  }
  if (reply_text(reply->element[0]) == "subscribe") {
    log_.info("session_store_subscribed", {{"sentinel", sentinel_name(subscribed_to_)}});
    // A +switch-master sent while no subscription was up is lost: ask whether one happened.
    verify();
    return;
  }
  if (reply_text(reply->element[0]) != "message" || !is_text(reply->element[2])) return;
  std::istringstream words(reply_text(reply->element[2]));
  std::string name, old_host, old_port, new_host, new_port;
  if (!(words >> name >> old_host >> old_port >> new_host >> new_port) ||
      name != endpoint_.master_name) {
    return;
  }
  const auto port = parse_unsigned(new_port);
  if (!port || *port < 1 || *port > 65535) return;
  log_.info("session_store_master_switched",
            {{"from", old_host + ":" + old_port}, {"to", new_host + ":" + new_port}});
  hint_ = HostPort{new_host, static_cast<uint16_t>(*port)};
  hint_until_ = std::chrono::steady_clock::now() + kHintLifetime;
  if (moved_) moved_(new_host, static_cast<uint16_t>(*port));
}

void SentinelResolver::drop_subscription() { drop(subscription_); }

void SentinelResolver::schedule_resubscribe() {
  if (closed_) return;
  subscribed_to_ = (subscribed_to_ + 1) % endpoint_.sentinels.size();
  if (int rc = uv_timer_start(
          &resubscribe_timer_,
          [](uv_timer_t* timer) { static_cast<SentinelResolver*>(timer->data)->subscribe(); },
          to_ms(kResubscribeDelay), 0);
      rc != 0) {
    log_.error("session_store_timer_failed", {{"error", uv_err_name(rc)}});
  }
}

void SentinelResolver::close() {
  if (closed_) return;
  closed_ = true;
  pending_ = nullptr;
  drop_query();
  drop_subscription();
  for (uv_timer_t* timer : {&query_timer_, &resubscribe_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
  }
}

}  // namespace tandem
