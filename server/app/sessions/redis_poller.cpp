#include "app/sessions/redis_poller.hpp"

#include <hiredis/async.h>

#include <memory>

namespace tandem {

bool RedisPoller::attach(redisAsyncContext* context, uv_loop_t* loop) {
  if (context->ev.data != nullptr) return false;  // Already attached to an event library.
  auto poller = std::unique_ptr<RedisPoller>(new RedisPoller);
  if (uv_poll_init(loop, &poller->handle_, context->c.fd) != 0) return false;
  poller->context_ = context;
  poller->handle_.data = poller.get();
  context->ev.addRead = add_read;
  context->ev.delRead = del_read;
  context->ev.addWrite = add_write;
  context->ev.delWrite = del_write;
  context->ev.cleanup = cleanup;
  context->ev.data = poller.release();  // Freed in on_close, after cleanup() closes the handle.
  return true;
}

redisAsyncContext* RedisPoller::connect(const std::string& host, int port, uv_loop_t* loop,
                                        std::string& error) {
  redisAsyncContext* context = redisAsyncConnect(host.c_str(), port);
  if (context == nullptr || context->err != 0) {
    error = context != nullptr ? context->errstr : "cannot allocate a Redis context";
    if (context != nullptr) redisAsyncFree(context);
    return nullptr;
  }
  if (!attach(context, loop)) {
    error = "cannot attach Redis to the event loop";
    redisAsyncFree(context);
    return nullptr;
  }
  return context;
}

int RedisPoller::auth(redisAsyncContext* context, redisCallbackFn* callback, void* privdata,
                      const std::string& user, const std::string& password) {
  if (user.empty()) {
    return redisAsyncCommand(context, callback, privdata, "AUTH %b", password.data(),
                             password.size());
  }
  return redisAsyncCommand(context, callback, privdata, "AUTH %b %b", user.data(), user.size(),
                           password.data(), password.size());
}

void RedisPoller::add_read(void* privdata) {
  auto* self = static_cast<RedisPoller*>(privdata);
  self->update(self->events_ | UV_READABLE);
}

void RedisPoller::del_read(void* privdata) {
  auto* self = static_cast<RedisPoller*>(privdata);
  self->update(self->events_ & ~UV_READABLE);
}

void RedisPoller::add_write(void* privdata) {
  auto* self = static_cast<RedisPoller*>(privdata);
  self->update(self->events_ | UV_WRITABLE);
}

void RedisPoller::del_write(void* privdata) {
  auto* self = static_cast<RedisPoller*>(privdata);
  self->update(self->events_ & ~UV_WRITABLE);
}

void RedisPoller::update(int events) {
  events_ = events;
  if (events_ != 0) {
    uv_poll_start(&handle_, events_, on_poll);
  } else {
    uv_poll_stop(&handle_);
  }
}

void RedisPoller::on_poll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<RedisPoller*>(handle->data);
  // On an error libuv stops the poll and reports no events: take it as readiness for whatever
  // hiredis waits for, so that its read or write meets the error and it disconnects.
  int ready = status < 0 ? self->events_ : events;
  if (self->context_ != nullptr && (ready & UV_READABLE) != 0) {
    redisAsyncHandleRead(self->context_);
  }
  // The read may have freed the context (cleanup() clears context_ then).
  if (self->context_ != nullptr && (ready & UV_WRITABLE) != 0) {
    redisAsyncHandleWrite(self->context_);
  }
}

void RedisPoller::cleanup(void* privdata) {
  auto* self = static_cast<RedisPoller*>(privdata);
  self->context_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&self->handle_), on_close);
}

void RedisPoller::on_close(uv_handle_t* handle) {
  std::unique_ptr<RedisPoller> owned{static_cast<RedisPoller*>(handle->data)};
}

}  // namespace tandem
