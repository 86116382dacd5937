#pragma once

#include <uv.h>

struct redisAsyncContext;

namespace tandem {

// Drives one hiredis async context from a libuv loop: hiredis says which events it wants, the
// poller watches the socket and hands readiness back. hiredis 0.14's own libuv adapter drops
// poll errors (a refused connect, a reset socket), so hiredis never hears of them and the store
// only notices at its own deadlines; this one passes an error on as readiness, so hiredis reads
// or writes, meets the error on the socket, and reports it at once (hiredis 1.x does the same).
class RedisPoller {
 public:
  // Attaches a poller to `context`; it frees itself when hiredis cleans the context up. Returns
  // false (the context is then untouched) when the socket cannot be watched.
  static bool attach(redisAsyncContext* context, uv_loop_t* loop);

 private:
  RedisPoller() = default;

  // hiredis's event hooks; `privdata` is the poller.
  static void add_read(void* privdata);
  static void del_read(void* privdata);
  static void add_write(void* privdata);
  static void del_write(void* privdata);
  static void cleanup(void* privdata);

  static void on_poll(uv_poll_t* handle, int status, int events);
  static void on_close(uv_handle_t* handle);
  void update(int events);

  redisAsyncContext* context_ = nullptr;  // Null once hiredis has let go of the context.
  uv_poll_t handle_;
  int events_ = 0;  // What hiredis wants: UV_READABLE and/or UV_WRITABLE.
};

}  // namespace tandem
