#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tandem {

class Log;

// Counters of the worker, for /health and /metrics.
struct CpuWorkerStats {
  uint64_t capacity = 0;    // Jobs it holds at most (waiting and running).
  uint64_t in_flight = 0;   // Jobs accepted and not yet handed back.
  uint64_t completed = 0;   // Jobs whose work ran to the end.
  uint64_t rejected = 0;    // Jobs refused because the worker was full.
  uint64_t cancelled = 0;   // Jobs stopped before the end (shutdown).
  double busy_seconds = 0;  // Wall time the worker thread spent running jobs.
};

// CPU-heavy work off the event loop: one thread of its own and a bounded queue. The loop never
// runs such work itself, so /health, cheap routes and the systemd watchdog's pings keep their
// pace however much of it clients ask for; one thread caps one instance at about one core, so
// instances scale with the cores they are given.
//
// Why not libuv's thread pool (uv_queue_work): it is shared with libuv's file and DNS work, has 4
// threads by default for the whole process, and has no bound of its own on what waits in it.
//
// The thread runs at the loop's priority. A lower one (nice 10) was measured: it changed the p99
// of other clients' requests under a saturating attack by nothing measurable (about 5 ms either
// way on 2 cores), and lowering a thread's priority needs setpriority(2), which the unit's
// system call filter denies (@resources).
class CpuWorker {
 public:
  // Runs on the worker thread. `cancelled` turns true when the result is no longer wanted (the
  // server is stopping); long work checks it now and then and returns early.
  using Work = std::function<void(const std::atomic<bool>& cancelled)>;
  // Runs on the loop thread once the work is over: `completed` is false when it was cancelled.
  using Done = std::function<void(bool completed)>;

  CpuWorker(uv_loop_t* loop, std::size_t capacity, Log& log);
  CpuWorker(const CpuWorker&) = delete;
  CpuWorker& operator=(const CpuWorker&) = delete;
  ~CpuWorker();

  // Queues `work`; `done` is called on the loop afterwards. Returns false, calling neither, when
  // `capacity` jobs are already in flight: the caller answers "busy" at once.
  bool submit(Work work, Done done);
  // Cancels every job, waits for the thread to end, hands the jobs back (completed false) and
  // closes the loop handle. Called once, on the loop thread, when the server shuts down; the
  // worker must outlive the loop turn that runs the handle's close callback.
  void stop();

  CpuWorkerStats stats() const;

 private:
  struct Job {
    Work work;
    Done done;
    std::atomic<bool> cancelled{false};
    bool completed = false;
  };

  void run();
  // Tells the thread to stop and marks every job cancelled; it ends within a slice of work.
  void cancel_all();
  void deliver();  // On the loop: hands finished jobs back.
  static void on_async(uv_async_t* handle);

  uv_loop_t* loop_;
  Log& log_;
  std::size_t capacity_;
  uv_async_t async_;
  bool stopped_ = false;

  // Shared with the worker thread, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> waiting_;
  std::shared_ptr<Job> running_;
  std::vector<std::shared_ptr<Job>> finished_;
  bool stopping_ = false;
  double busy_seconds_ = 0;

  // Loop thread only.
  std::size_t in_flight_ = 0;
  uint64_t completed_ = 0;
  uint64_t rejected_ = 0;
  uint64_t cancelled_ = 0;

  std::thread thread_;
};

}  // namespace tandem
