#include "tandem/cpu_worker.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "tandem/log.hpp"

namespace tandem {

CpuWorker::CpuWorker(uv_loop_t* loop, std::size_t capacity, Log& log)
    : loop_(loop), log_(log), capacity_(capacity == 0 ? 1 : capacity) {
  int result = uv_async_init(loop_, &async_, on_async);
  if (result != 0) {
    std::fprintf(stderr, "tandem-server: uv_async_init failed: %s\n", uv_strerror(result));
    std::abort();
  }
  async_.data = this;
  // The worker only wakes the loop when a job is done: it must not keep a stopped loop running.
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));

  thread_ = std::thread([this] { run(); });
}

CpuWorker::~CpuWorker() {
  // The server stops the worker before the loop ends; this covers a path that did not.
  if (thread_.joinable()) {
    cancel_all();
    thread_.join();
  }
}

void CpuWorker::cancel_all() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& job : waiting_) job->cancelled = true;
    if (running_) running_->cancelled = true;
  }
  wake_.notify_all();
}

bool CpuWorker::submit(Work work, Done done) {
  if (stopped_ || in_flight_ >= capacity_) {
    ++rejected_;
    return false;
  }
  auto job = std::make_shared<Job>();
  job->work = std::move(work);
  job->done = std::move(done);
  {
    std::lock_guard lock(mutex_);
    waiting_.push_back(std::move(job));
  }
  if (in_flight_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
  wake_.notify_one();
  return true;
}

void CpuWorker::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    if (waiting_.empty()) return;  // Stopping, and nothing left to hand back.
    running_ = std::move(waiting_.front());
    waiting_.pop_front();
    std::shared_ptr<Job> job = running_;
    lock.unlock();

    auto started = std::chrono::steady_clock::now();
    if (!job->cancelled) {
      try {
        job->work(job->cancelled);
        job->completed = !job->cancelled;
      } catch (...) {
        // The job's own code reports what it can; a throw only means "no result".
        job->completed = false;
      }
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    lock.lock();
    busy_seconds_ += seconds;
    running_.reset();
    finished_.push_back(std::move(job));
    // uv_async_send is the one libuv call that is safe from another thread; several sends before
    // the loop runs coalesce into one callback, which takes every finished job.
    uv_async_send(&async_);
  }
}

void CpuWorker::on_async(uv_async_t* handle) { static_cast<CpuWorker*>(handle->data)->deliver(); }

void CpuWorker::deliver() {
  std::vector<std::shared_ptr<Job>> finished;
  {
    std::lock_guard lock(mutex_);
    finished.swap(finished_);
  }
  for (auto& job : finished) {
    --in_flight_;
    if (job->completed) {
      ++completed_;
    } else {
      ++cancelled_;
    }
    Done done = std::move(job->done);
    if (done) done(job->completed);
  }
  if (in_flight_ == 0 && !stopped_) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

void CpuWorker::stop() {
  if (stopped_) return;
  stopped_ = true;
  cancel_all();
  // The running job sees `cancelled` within a slice of its work; the waiting ones are skipped.
  thread_.join();
  deliver();
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

CpuWorkerStats CpuWorker::stats() const {
  CpuWorkerStats stats;
  stats.capacity = capacity_;
  stats.in_flight = in_flight_;
  stats.completed = completed_;
  stats.rejected = rejected_;
  stats.cancelled = cancelled_;
  std::lock_guard lock(mutex_);
  stats.busy_seconds = busy_seconds_;
  return stats;
}

}  // namespace tandem
