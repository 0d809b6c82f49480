// The addon's threads: work over [0, count) split into one contiguous range per thread. Every
// output element is written by exactly one range, so results never depend on the thread count.
// FP4KIT_THREADS sets the count (default: the hardware's, at most 8).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace fp4kit {

static inline int threadCount() {
  const char* env = std::getenv("FP4KIT_THREADS");
  if (env) {
    const int n = std::atoi(env);
    if (n >= 1 && n <= 64) return n;
  }
  return static_cast<int>(std::max(1u, std::min(8u, std::thread::hardware_concurrency())));
}

// Run f(begin, end) on up to threadCount() threads, giving each at least minPerThread items.
template <typename F>
void parallelFor(int64_t count, int64_t minPerThread, F f) {
  const int threads = static_cast<int>(std::min<int64_t>(threadCount(), std::max<int64_t>(1, count / std::max<int64_t>(1, minPerThread))));
  if (threads <= 1) {
    if (count > 0) f(0, count);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (count + threads - 1) / threads;
  for (int t = 1; t < threads; t++) {
    const int64_t b = t * per, e = std::min(count, b + per);
    if (b < e) pool.emplace_back([=] { f(b, e); });
  }
  f(0, std::min(count, per));
  for (auto& th : pool) th.join();
}

}  // namespace fp4kit
