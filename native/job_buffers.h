// The memory an asynchronous job touches. JavaScript runs on while a job runs on other threads,
// and may detach, transfer, shrink or drop any buffer it passed in, so a job never reads or writes
// the caller's ArrayBuffer memory after the call returns:
// - an input is copied at call time into staging memory the job owns (a snapshot: later writes by
//   the caller are not seen);
// - an output is written into staging memory and copied into the caller's array when the job
//   ends, on the JavaScript thread; if the array was detached or resized meanwhile the Promise
//   rejects and nothing is written;
// - SharedArrayBuffer memory is used in place (it can never be detached or shrunk, and the job
//   holds a reference to the array): the zero-copy path. Concurrent writes to it by other threads
//   give unspecified values, never a crash.
// Staging memory comes from a process-wide pool of reused blocks, because first-touching fresh
// pages costs more here than the copy itself (~12 µs per 4 KiB page). The input copy is on the
// JavaScript thread (it must be done before the call returns), so fresh pages there block the
// event loop: blocks of 2 MiB and more are 2 MiB-aligned and asked for as transparent huge pages
// (Linux, MADV_HUGEPAGE: one fault per 2 MiB; a fresh 256 MiB block took ~800 ms to first-touch
// with 4 KiB pages and ~40 ms with huge pages on the 2-core VM CI runs on), and the pool drops the
// blocks released longest ago first, so the block of the latest (largest) job stays warm.
#pragma once
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "threads.h"

namespace fp4kit {

// One block of staging memory: 64-byte aligned, owned by whoever holds it.
class StagingBlock {
 public:
  StagingBlock() = default;
  StagingBlock(uint8_t* data, size_t capacity) : data_(data), capacity_(capacity) {}
  StagingBlock(StagingBlock&& o) noexcept : data_(std::exchange(o.data_, nullptr)), capacity_(std::exchange(o.capacity_, 0)) {}
  StagingBlock& operator=(StagingBlock&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(capacity_, o.capacity_);
    return *this;
  }
  StagingBlock(const StagingBlock&) = delete;
  StagingBlock& operator=(const StagingBlock&) = delete;
  ~StagingBlock();
  uint8_t* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  // Gives up the memory without handing it back to the pool (the caller frees it).
  uint8_t* detach() {
    capacity_ = 0;
    return std::exchange(data_, nullptr);
  }

 private:
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

// Idle blocks kept for reuse, at most kIdleBytes in all; the blocks released longest ago are
// dropped first (the largest were, before: a job over ~200 MiB after smaller ones then never
// found its block again, and every call first-touched fresh memory on the JavaScript thread).
// Leaked on purpose, like the thread pool: a job still running at process exit may hand a block back.
class StagingPool {
 public:
  static StagingPool& instance() {
    static StagingPool* pool = new StagingPool();
    return *pool;
  }

  StagingBlock acquire(size_t bytes) {
    const size_t want = roundUp(std::max<size_t>(bytes, 1));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Best fit among blocks no more than twice the size asked for.
      size_t best = idle_.size();
      for (size_t i = 0; i < idle_.size(); i++) {
        const size_t c = idle_[i].capacity();
        if (c >= want && c <= 2 * want && (best == idle_.size() || c < idle_[best].capacity())) best = i;
      }
      if (best != idle_.size()) {
        StagingBlock b = std::move(idle_[best]);
        idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(best));
        idleBytes_ -= b.capacity();
        return b;
      }
    }
    void* p = std::aligned_alloc(want >= kHugePage ? kHugePage : 64, want);
    if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // A hint: where transparent huge pages are off (or `never`) it changes nothing.
    if (want >= kHugePage) (void)madvise(p, want, MADV_HUGEPAGE);
#endif
    return StagingBlock(static_cast<uint8_t*>(p), want);
  }

  void release(uint8_t* data, size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.emplace_back(data, capacity);  // newest last
    idleBytes_ += capacity;
    size_t dropped = 0;
    while (idleBytes_ > kIdleBytes) {
      StagingBlock& oldest = idle_[dropped++];
      idleBytes_ -= oldest.capacity();
      // Detached, not overwritten: move-assignment swaps, and a block destroyed here would hand
      // the memory back to this pool while its mutex is held (a deadlock, seen with one staging
      // block over kIdleBytes, i.e. any asynchronous job of more than 256 MiB).
      std::free(oldest.detach());
    }
    idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(dropped));
  }

 private:
  static constexpr size_t kIdleBytes = size_t(256) << 20;
  static constexpr size_t kHugePage = size_t(2) << 20;
  static size_t roundUp(size_t bytes) {
    const size_t grain = bytes < kHugePage ? 4096 : kHugePage;
    return (bytes + grain - 1) / grain * grain;
  }
  std::mutex mutex_;
  std::vector<StagingBlock> idle_;
  size_t idleBytes_ = 0;
};

inline StagingBlock::~StagingBlock() {
  if (data_ != nullptr) StagingPool::instance().release(std::exchange(data_, nullptr), std::exchange(capacity_, 0));
}

// A memcpy split over the addon's threads (copies of tens of MB are memory-bound).
static inline void parallelCopy(void* dst, const void* src, size_t bytes) {
  constexpr int64_t kChunk = int64_t(1) << 20;
  const int64_t chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
  parallelFor(chunks, 4, [&](int64_t b, int64_t e) {
    const size_t begin = static_cast<size_t>(b * kChunk);
    const size_t end = std::min(bytes, static_cast<size_t>(e * kChunk));
    std::memcpy(static_cast<uint8_t*>(dst) + begin, static_cast<const uint8_t*>(src) + begin, end - begin);
  });
}

// A typed array's memory as seen at argument-check time.
struct ArrayView {
  uint8_t* data = nullptr;
  size_t bytes = 0;
  size_t elementSize = 1;
  bool shared = false;  // backed by a SharedArrayBuffer
};

// Reads a typed array's data pointer, byte length and buffer kind straight from N-API (never from
// JavaScript properties a caller could fake).
static inline bool arrayView(napi_env env, napi_value value, ArrayView& view, napi_typedarray_type& type, size_t& length) {
  void* data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok) return false;
  bool isArrayBuffer = false;
  if (napi_is_arraybuffer(env, buffer, &isArrayBuffer) != napi_ok) return false;
  view.shared = !isArrayBuffer;  // a typed array's buffer is an ArrayBuffer or a SharedArrayBuffer
  view.data = static_cast<uint8_t*>(data);
  size_t elementSize = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: elementSize = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: elementSize = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elementSize = 8; break;
    default: break;
  }
  view.elementSize = elementSize;
  view.bytes = length * elementSize;
  return true;
}

// The buffers of one asynchronous job (see the header). Synchronous calls pass no JobBuffers and
// use the caller's memory in place: no JavaScript runs until they return.
class JobBuffers {
 public:
  // The memory the job reads for this input: its first `used` bytes (the array may be longer).
  // Memory used in place (a SharedArrayBuffer's) is kept alive by a reference to `array`: the
  // argument object that held it may be the only other thing referring to it (a getter's fresh
  // array, a field the caller reassigns), and a collection would free it under the running job.
  const uint8_t* input(napi_env env, napi_value array, const ArrayView& view, size_t used) {
    if (used == 0) return view.data;
    if (view.shared) {
      keep(env, array);
      return view.data;
    }
    inputs_.push_back(StagingPool::instance().acquire(used));
    parallelCopy(inputs_.back().data(), view.data, used);
    return inputs_.back().data();
  }

  // The memory the job writes for this output: its first `used` bytes, which finish() copies into
  // `array` (the rest of a longer array is left as it is).
  uint8_t* output(napi_env env, napi_value array, const ArrayView& view, size_t used) {
    if (used == 0) return view.data;
    if (view.shared) {
      keep(env, array);  // written in place: kept alive as an input is
      return view.data;
    }
    Output o;
    o.block = StagingPool::instance().acquire(used);
    o.bytes = used;
    o.arrayBytes = view.bytes;
    o.name = "out";
    if (napi_create_reference(env, array, 1, &o.array) != napi_ok) throw std::bad_alloc();
    outputs_.push_back(std::move(o));
    return outputs_.back().block.data();
  }

  // Names the last output in errors ("data", "scales", …).
  void nameLastOutput(const char* name) {
    if (!outputs_.empty()) outputs_.back().name = name;
  }

  // On the JavaScript thread when the job is done: every staged output into its array. Throws a
  // TypeError (before writing anything) if an array was detached or resized while the job ran.
  void finish(Napi::Env env) {
    std::vector<ArrayView> targets(outputs_.size());
    for (size_t i = 0; i < outputs_.size(); i++) {
      napi_value array = nullptr;
      napi_typedarray_type type;
      size_t length = 0;
      if (napi_get_reference_value(env, outputs_[i].array, &array) != napi_ok || array == nullptr ||
          !arrayView(env, array, targets[i], type, length) || targets[i].bytes != outputs_[i].arrayBytes || targets[i].data == nullptr) {
        throw Napi::TypeError::New(env, std::string(outputs_[i].name) +
                                            " was detached or resized while the job ran; nothing was written");
      }
    }
    for (size_t i = 0; i < outputs_.size(); i++) parallelCopy(targets[i].data, outputs_[i].block.data(), outputs_[i].bytes);
  }

  // Drops the references (JavaScript thread only).
  void release(napi_env env) {
    for (Output& o : outputs_) {
      if (o.array != nullptr) napi_delete_reference(env, o.array);
      o.array = nullptr;
    }
    for (napi_ref& r : kept_) {
      if (r != nullptr) napi_delete_reference(env, r);
      r = nullptr;
    }
    kept_.clear();
  }

 private:
  struct Output {
    napi_ref array = nullptr;
    StagingBlock block;
    size_t bytes = 0;       // staged and copied back
    size_t arrayBytes = 0;  // the array's length at the call: any other at the end means it was resized
    const char* name = "out";
  };
  void keep(napi_env env, napi_value array) {
    napi_ref r = nullptr;
    if (napi_create_reference(env, array, 1, &r) != napi_ok) throw std::bad_alloc();
    kept_.push_back(r);
  }

  std::vector<StagingBlock> inputs_;
  std::vector<Output> outputs_;
  std::vector<napi_ref> kept_;  // arrays used in place (SharedArrayBuffer-backed), alive until the job settles
};

}  // namespace fp4kit
