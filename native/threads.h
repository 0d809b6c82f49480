// The addon's threads: work over [0, count) split into one contiguous range per thread. Every
// output element is written by exactly one range, so results never depend on the thread count.
// FP4KIT_THREADS sets the count (default: the hardware's, at most 8); it is read once.
//
// The threads are a persistent pool, started on first use (count − 1 workers; the calling thread
// takes the first range). One call uses the pool at a time: a call that finds it busy — another
// JS environment (worker_threads), a libuv thread running an AsyncWorker, or a nested call — runs
// inline on its own thread, with the same bits. Workers spin briefly after a job, so the next
// call of a token-by-token decode loop starts without a futex wake-up, then sleep. The pool is
// never destroyed: workers are detached and block on a condition variable of a leaked object,
// so no static destructor can run under them and process exit (main thread or worker_threads)
// never waits for them. An exception thrown in any range (std::bad_alloc of a scratch buffer)
// reaches the caller once every range has finished, never std::terminate.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define FP4KIT_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define FP4KIT_PAUSE() __asm__ __volatile__("yield")
#else
#define FP4KIT_PAUSE() ((void)0)
#endif

namespace fp4kit {

// FP4KIT_THREADS as a count: decimal digits only, 1..64 ("4abc", "1e9", " 4" and "0x10" are not
// counts), else 0. (dispatch.cc says once when a value set is not one.)
static inline int parseThreadCount(const char* env) {
  if (env == nullptr) return 0;
  int n = 0;
  for (const char* c = env; *c != '\0'; c++) {
    if (*c < '0' || *c > '9' || n > 64) return 0;
    n = n * 10 + (*c - '0');
  }
  return n >= 1 && n <= 64 ? n : 0;
}

static inline int defaultThreadCount() { return static_cast<int>(std::max(1u, std::min(8u, std::thread::hardware_concurrency()))); }

static inline int threadCount() {
  static const int count = [] {
    const int n = parseThreadCount(std::getenv("FP4KIT_THREADS"));
    return n > 0 ? n : defaultThreadCount();
  }();
  return count;
}

namespace detail {

class ThreadPool {
 public:
  using Body = void (*)(const void* ctx, int64_t begin, int64_t end);

  // The process-wide pool (nullptr when single-threaded). Leaked on purpose (see the header).
  static ThreadPool* instance() {
    static ThreadPool* pool = threadCount() > 1 ? new ThreadPool(threadCount() - 1) : nullptr;
    return pool;
  }

  int threads() const { return workers_ + 1; }

  // Runs ranges 1..threads−1 of `per` items on the workers and range 0 here; false (nothing run)
  // if another call holds the pool.
  bool run(Body body, const void* ctx, int64_t count, int64_t per, int threads) {
    // A flag, not a mutex: a nested call from the thread that holds the pool must see "busy".
    if (busy_.exchange(true, std::memory_order_acquire)) return false;
    body_ = body;
    ctx_ = ctx;
    count_ = count;
    per_ = per;
    threads_ = threads;
    pending_.store(workers_, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    std::exception_ptr error;
    try {
      body(ctx, 0, std::min(count, per));
    } catch (...) {
      error = std::current_exception();  // the workers still use ctx: wait for them first
    }
    // Wait for every worker to acknowledge (the ones without a range do so at once).
    if (!spinUntil([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    std::exception_ptr fromWorker = std::exchange(workerError_, nullptr);
    if (!error) error = fromWorker;
    busy_.store(false, std::memory_order_release);
    if (error) std::rethrow_exception(error);
    return true;
  }

 private:
  explicit ThreadPool(int workers) {
    for (int i = 1; i <= workers; i++) {
      try {
        std::thread([this, i] { work(i); }).detach();
        workers_ = i;
      } catch (...) {
        break;  // fewer threads than asked: still one range per thread, same bits
      }
    }
  }

  // Waits up to kSpinMicros without sleeping: pause first, then yield, so a thread this one waits
  // for still gets the core when the machine is oversubscribed.
  template <typename Ready>
  static bool spinUntil(Ready ready) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 1;; i++) {
      if (ready()) return true;
      if (i < 512) {
        FP4KIT_PAUSE();
      } else {
        std::this_thread::yield();
      }
      if ((i & 15) == 0 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(kSpinMicros)) return false;
    }
  }

  void work(int index) {
    uint64_t seen = 0;
    for (;;) {
      if (!spinUntil([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (index < threads_) {
        const int64_t begin = index * per_, end = std::min(count_, begin + per_);
        if (begin < end) {
          // An exception must not leave a worker (std::terminate): the caller rethrows it.
          try {
            body_(ctx_, begin, end);
          } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!workerError_) workerError_ = std::current_exception();
          }
        }
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
  }

  static constexpr int kSpinMicros = 100;
  int workers_ = 0;
  std::atomic<bool> busy_{false};  // one call at a time
  std::mutex mutex_;               // with the condition variables
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  // The current job: written before generation_ is bumped, read by workers after they see it.
  Body body_ = nullptr;
  const void* ctx_ = nullptr;
  int64_t count_ = 0, per_ = 0;
  int threads_ = 0;
  std::exception_ptr workerError_;  // the first exception a worker caught in this job (under mutex_)
};

}  // namespace detail

// Run f(begin, end) on up to threadCount() threads, giving each at least minPerThread items.
template <typename F>
void parallelFor(int64_t count, int64_t minPerThread, F f) {
  int threads = static_cast<int>(std::min<int64_t>(threadCount(), std::max<int64_t>(1, count / std::max<int64_t>(1, minPerThread))));
  if (threads > 1) {
    if (detail::ThreadPool* pool = detail::ThreadPool::instance()) {
      threads = std::min(threads, pool->threads());
      const int64_t per = (count + threads - 1) / threads;
      const auto body = [](const void* ctx, int64_t b, int64_t e) { (*static_cast<const F*>(ctx))(b, e); };
      if (pool->run(body, &f, count, per, threads)) return;
    }
  }
  if (count > 0) f(0, count);  // one thread, or the pool is busy: inline, same bits
}

}  // namespace fp4kit
