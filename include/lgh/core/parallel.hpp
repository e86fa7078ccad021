// CPU parallelism: a persistent thread pool and parallel_for.
//
// The calling thread takes part in the work, so num_threads() == 1 runs
// everything inline with no synchronisation. A parallel_for issued from inside
// another runs serially in the calling worker (no nested oversubscription).
// The thread count comes from set_num_threads(), else the LGH_NUM_THREADS
// environment variable, else the hardware concurrency.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "lgh/core/error.hpp"

namespace lgh {

namespace detail {

// A pause instruction for spin-waits (lets the sibling hyperthread run).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spin iterations before a waiting thread blocks (about 50 µs): the gap
// between two parallel ops of a training step is usually shorter than a
// futex sleep and wake-up.
constexpr int kSpinIterations = 1000;

inline bool& in_parallel_region() {
  thread_local bool flag = false;
  return flag;
}

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { start(threads); }
  ~ThreadPool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int threads) {
    if (threads == size()) return;
    stop();
    start(threads);
  }

  // Runs task(i) for i in [0, n) across the pool and the caller; rethrows the
  // first exception a task raised, after all tasks finished.
  void run(int n, const std::function<void(int)>& task) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);  // one parallel job at a time
    auto job = std::make_shared<Job>(task, n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work(*job);
    for (int i = 0; i < kSpinIterations && job->pending.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
    if (job->pending.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(job->mutex);
      job->done.wait(lock, [&] { return job->pending.load(std::memory_order_acquire) == 0; });
    }
    std::lock_guard<std::mutex> lock(job->mutex);  // pairs with the error write in work()
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  // One parallel_for: workers that wake late find every index claimed and
  // leave; they never touch a later job through a stale pointer.
  struct Job {
    Job(const std::function<void(int)>& t, int n) : task(t), num_tasks(n), pending(n) {}
    const std::function<void(int)>& task;
    const int num_tasks;
    std::atomic<int> next{0};
    std::mutex mutex;
    std::condition_variable done;
    std::atomic<int> pending;
    std::exception_ptr error;
  };

  void start(int threads) {
    quit_ = false;
    for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this] { loop(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void loop() {
    in_parallel_region() = true;
    uint64_t seen = 0;
    for (;;) {
      for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen &&
                      !quit_.load(std::memory_order_relaxed);
           ++i)
        cpu_relax();
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return quit_.load() || generation_.load() != seen; });
        if (quit_) return;
        seen = generation_.load();
        job = job_;
      }
      if (job) work(*job);
    }
  }

  // Claims task indices of `job` until none are left.
  static void work(Job& job) {
    const bool was = in_parallel_region();
    in_parallel_region() = true;
    for (;;) {
      const int i = job.next.fetch_add(1);
      if (i >= job.num_tasks) break;
      std::exception_ptr err;
      try {
        job.task(i);
      } catch (...) {
        err = std::current_exception();
      }
      if (err) {
        std::lock_guard<std::mutex> lock(job.mutex);
        if (!job.error) job.error = err;
      }
      if (job.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(job.mutex);
        job.done.notify_all();
      }
    }
    in_parallel_region() = was;
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Job> job_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> quit_{false};
};

inline int default_num_threads() {
  if (const char* env = std::getenv("LGH_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

inline ThreadPool& thread_pool() {
  static ThreadPool* pool = new ThreadPool(default_num_threads());  // lives until exit
  return *pool;
}

}  // namespace detail

inline int num_threads() { return detail::thread_pool().size(); }

inline void set_num_threads(int n) {
  LGH_CHECK(n >= 1, "set_num_threads: expected at least 1 thread, got " << n);
  detail::thread_pool().resize(n);
}

// Calls f(lo, hi) over disjoint sub-ranges covering [begin, end), in parallel.
// Each sub-range holds at least `grain` indices (except possibly the last).
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int threads = detail::in_parallel_region() ? 1 : num_threads();
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  if (chunks <= 1) {
    f(begin, end);
    return;
  }
  const int64_t step = (n + chunks - 1) / chunks;
  detail::thread_pool().run(static_cast<int>(chunks), [&](int c) {
    const int64_t lo = begin + c * step;
    const int64_t hi = std::min(end, lo + step);
    if (lo < hi) f(lo, hi);
  });
}

// Runs f(i) for each of n independent tasks, in parallel.
template <typename F>
void parallel_tasks(int n, F&& f) {
  if (n <= 0) return;
  if (n == 1 || detail::in_parallel_region() || num_threads() == 1) {
    for (int i = 0; i < n; ++i) f(i);
    return;
  }
  detail::thread_pool().run(n, [&](int i) { f(i); });
}

}  // namespace lgh
