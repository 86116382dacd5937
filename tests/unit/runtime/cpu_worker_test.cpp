#define BOOST_TEST_MODULE cpu_worker
#include "tandem/cpu_worker.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <thread>
#include <vector>

#include "tandem/log.hpp"

using tandem::CpuWorker;

namespace {

struct Fixture {
  uv_loop_t loop;
  std::FILE* log_file = std::tmpfile();
  tandem::Log log{"test", log_file};

  Fixture() { uv_loop_init(&loop); }
  ~Fixture() {
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(uv_loop_close(&loop) == 0);  // A handle left open fails here.
    std::fclose(log_file);
  }

  // Stops the worker and lets the loop close its handle, as the server does before it ends.
  void finish(CpuWorker& worker) {
    worker.stop();
    uv_run(&loop, UV_RUN_DEFAULT);
  }

  // Turns the loop until `done` holds; bounded in turns (each blocks until a job is handed back).
  template <typename Predicate>
  bool run_until(Predicate done) {
    for (int turns = 0; !done() && turns < 1000; ++turns) uv_run(&loop, UV_RUN_ONCE);
    return done();
  }
};

long thread_id() { return syscall(SYS_gettid); }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cpu_worker, Fixture)

BOOST_AUTO_TEST_CASE(work_runs_on_its_own_thread_and_done_on_the_loop) {
  CpuWorker worker(&loop, 4, log);
  const long loop_thread = thread_id();
  long work_thread = 0;
  long done_thread = 0;
  bool completed = false;
  BOOST_TEST_REQUIRE(worker.submit([&](const std::atomic<bool>&) { work_thread = thread_id(); },
                                   [&](bool ok) {
                                     done_thread = thread_id();
                                     completed = ok;
                                   }));
  BOOST_TEST_REQUIRE(run_until([&] { return done_thread != 0; }));
  BOOST_TEST(completed);
  BOOST_TEST(work_thread != loop_thread);
  BOOST_TEST(done_thread == loop_thread);
  BOOST_TEST(worker.stats().completed == 1u);
  BOOST_TEST(worker.stats().in_flight == 0u);
  finish(worker);
}

BOOST_AUTO_TEST_CASE(a_full_worker_refuses_at_once_and_takes_more_once_jobs_are_done) {
  CpuWorker worker(&loop, 2, log);
  std::atomic<bool> release{false};
  auto blocking = [&](const std::atomic<bool>& cancelled) {
    while (!release && !cancelled) std::this_thread::yield();
  };
  int done = 0;
  BOOST_TEST(worker.submit(blocking, [&](bool) { ++done; }));
  BOOST_TEST(worker.submit(blocking, [&](bool) { ++done; }));
  bool called = false;
  BOOST_TEST(!worker.submit(blocking, [&](bool) { called = true; }));
  BOOST_TEST(!called);  // A refused job's done is never called.
  BOOST_TEST(worker.stats().rejected == 1u);
  BOOST_TEST(worker.stats().in_flight == 2u);
  release = true;
  BOOST_TEST_REQUIRE(run_until([&] { return done == 2; }));
  BOOST_TEST(worker.submit([](const std::atomic<bool>&) {}, [&](bool) { ++done; }));
  BOOST_TEST_REQUIRE(run_until([&] { return done == 3; }));
  BOOST_TEST(worker.stats().completed == 3u);
  BOOST_TEST(worker.stats().busy_seconds >= 0.0);
  finish(worker);
}

BOOST_AUTO_TEST_CASE(jobs_are_handed_back_in_the_order_they_were_submitted) {
  CpuWorker worker(&loop, 16, log);
  std::vector<int> order;
  for (int i = 0; i < 16; ++i) {
    BOOST_TEST_REQUIRE(
        worker.submit([](const std::atomic<bool>&) {}, [&order, i](bool) { order.push_back(i); }));
  }
  BOOST_TEST_REQUIRE(run_until([&] { return order.size() == 16u; }));
  for (int i = 0; i < 16; ++i) BOOST_TEST(order[static_cast<std::size_t>(i)] == i);
  finish(worker);
}

BOOST_AUTO_TEST_CASE(stop_cancels_running_and_waiting_jobs_and_hands_them_back) {
  CpuWorker worker(&loop, 4, log);
  std::atomic<bool> started{false};
  std::vector<bool> outcomes;
  // The running job only ends when told to: stop() must tell it.
  BOOST_TEST(worker.submit(
      [&](const std::atomic<bool>& cancelled) {
        started = true;
        while (!cancelled) std::this_thread::yield();
      },
      [&](bool completed) { outcomes.push_back(completed); }));
  bool waiting_ran = false;
  BOOST_TEST(worker.submit([&](const std::atomic<bool>&) { waiting_ran = true; },
                           [&](bool completed) { outcomes.push_back(completed); }));
  while (!started) std::this_thread::yield();
  finish(worker);
  BOOST_TEST(outcomes == std::vector<bool>({false, false}));
  BOOST_TEST(!waiting_ran);
  BOOST_TEST(worker.stats().cancelled == 2u);
  BOOST_TEST(!worker.submit([](const std::atomic<bool>&) {}, [](bool) {}));
}

BOOST_AUTO_TEST_CASE(an_idle_worker_does_not_keep_the_loop_running) {
  CpuWorker worker(&loop, 1, log);
  // No job: uv_run returns at once instead of waiting for a wake-up that never comes.
  BOOST_TEST(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  finish(worker);
}

BOOST_AUTO_TEST_SUITE_END()
