#pragma once

// A libuv loop with a Redis session store on it, for the stores' tests: the destructor closes
// the store and checks that no handle is left, the way libuv's own tests do.

#include <uv.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "app/sessions/redis_session_store.hpp"
#include "tandem/log.hpp"

namespace tandem::testing {

using namespace std::chrono_literals;

struct StoreLoop {
  uv_loop_t loop;
  // A file, so that log_text() can read it back; TEST_LOG_STDERR=1 copies it to stderr at the end.
  std::FILE* log_file = std::tmpfile();
  Log log{"test", log_file};
  std::unique_ptr<RedisSessionStore> store;
  uv_timer_t alive;  // Stands in for the server's listener, which keeps a real loop alive.

  StoreLoop() {
    BOOST_TEST_REQUIRE(uv_loop_init(&loop) == 0);
    BOOST_TEST_REQUIRE(uv_timer_init(&loop, &alive) == 0);
    // Short, so that run_until() looks at its condition often without spinning.
    BOOST_TEST_REQUIRE(uv_timer_start(
                           &alive, [](uv_timer_t*) {}, 10, 10) == 0);
  }
  StoreLoop(const StoreLoop&) = delete;
  StoreLoop& operator=(const StoreLoop&) = delete;
  ~StoreLoop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&alive), nullptr);
    if (store) store->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    store.reset();
    BOOST_TEST(uv_loop_close(&loop) == 0);  // A leaked handle fails here.
    if (std::getenv("TEST_LOG_STDERR")) std::fputs(log_text().c_str(), stderr);
    std::fclose(log_file);
  }

  // Runs the loop until `done` or the deadline; returns whether `done` became true.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(&loop, UV_RUN_ONCE);
    return done();
  }

  SessionUpdate record_once(const std::string& id, bool create) {
    std::optional<SessionUpdate> result;
    store->record_request(id, "client", create, [&](SessionUpdate update) { result = update; });
    BOOST_TEST_REQUIRE(run_until([&] { return result.has_value(); }));
    return *result;
  }

  // As the application counts: against the session if Redis has it, else against a new one.
  SessionUpdate record(const std::string& id) {
    SessionUpdate update = record_once(id, false);
    return update.ok && !update.found ? record_once(id, true) : update;
  }

  // Everything the store logged so far.
  std::string log_text() {
    std::fflush(log_file);
    std::string text;
    if (std::FILE* copy =
            std::fopen(("/proc/self/fd/" + std::to_string(fileno(log_file))).c_str(), "r")) {
      char buffer[4096];
      std::size_t n = 0;
      while ((n = std::fread(buffer, 1, sizeof buffer, copy)) > 0) text.append(buffer, n);
      std::fclose(copy);
    }
    return text;
  }
};

}  // namespace tandem::testing
