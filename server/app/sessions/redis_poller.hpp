#pragma once

#include <hiredis/async.h>
#include <uv.h>

#include <string>

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
  // Starts connecting to host:port on `loop`; null, with `error` set, when that fails at once.
  static redisAsyncContext* connect(const std::string& host, int port, uv_loop_t* loop,
                                    std::string& error);
  // Sends AUTH with `password` (and `user`, an ACL user, when not empty); hiredis's result.
  static int auth(redisAsyncContext* context, redisCallbackFn* callback, void* privdata,
                  const std::string& user, const std::string& password);

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
