// Argument checks shared by the N-API glue: every typed array's element type, length and
// attachment is checked in C++ before any kernel touches its memory, so a bad call from
// JavaScript becomes a TypeError/RangeError, never a crash.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

#include "formats.h"
#include "job_buffers.h"

namespace fp4kit {

// Whether the byte ranges [a, a + aBytes) and [b, b + bBytes) share a byte (an output that
// overlaps an input is refused: the kernels read and write them in no promised order).
static inline bool bytesOverlap(const void* a, size_t aBytes, const void* b, size_t bBytes) {
  const auto* pa = static_cast<const uint8_t*>(a);
  const auto* pb = static_cast<const uint8_t*>(b);
  return aBytes > 0 && bBytes > 0 && pa < pb + bBytes && pb < pa + aBytes;
}

// The typed arrays of one call, for refusing an output that shares memory with another of its
// arrays: the kernels read and write such memory in no promised order (threads, SIMD widths), so
// the bits would depend on the machine, and a Promise variant, which snapshots its inputs, would
// give other bits than the synchronous call. While a log is open, checkedView records every array
// it checks: its data pointer (the caller's memory, before a job snapshots or stages anything), the
// bytes the call uses (a longer array's tail is not the call's) and its name. Open one where a
// call's parsing starts, or once the fields of its argument object are read (a getter runs
// JavaScript, which may call other functions of the addon: their arrays are not this call's), and
// call requireOutputsDisjoint once every array is checked, before a kernel runs. Calls are parsed
// on their JavaScript thread one at a time; a log opened while another is (a call from a getter)
// is current until it closes, and then the outer one again.
// No allocation: a call has at most kCapacity arrays (8 today), their names (< 48 bytes) copied in.
class ArgumentLog {
 public:
  ArgumentLog() : previous_(current_) { current_ = this; }
  ~ArgumentLog() { current_ = previous_; }
  ArgumentLog(const ArgumentLog&) = delete;
  ArgumentLog& operator=(const ArgumentLog&) = delete;

  // From checkedView: an array of the open log's call (nothing when no log is open).
  static void record(const void* data, size_t bytes, const char* name) {
    ArgumentLog* log = current_;
    if (log == nullptr) return;
    const size_t length = std::strlen(name);
    if (log->count_ == kCapacity || length >= sizeof(Array::name)) {
      log->overflow_ = true;  // refused by requireOutputsDisjoint: the log must hold every array, whole
      return;
    }
    Array& a = log->arrays_[log->count_++];
    a.data = static_cast<const uint8_t*>(data);
    a.bytes = bytes;
    std::memcpy(a.name, name, length + 1);  // a copy: some callers pass a temporary (fn + ": out")
  }

  // A RangeError "<fn>: <output> shares memory with <other>" when an array named in `outputs`
  // shares a byte with any other array of the call, input or output (inputs may share memory with
  // each other: they are only read). Names are matched and reported without a leading "<fn>: ".
  // An output that was not passed (null) is not in the log; empty arrays share nothing.
  void requireOutputsDisjoint(const Napi::Env& env, const char* fn, std::initializer_list<const char*> outputs) const {
    if (overflow_) throw Napi::Error::New(env, std::string(fn) + ": internal: too many arrays, or too long a name, for ArgumentLog");
    // Pairs first (pointer arithmetic only), names only for a pair that shares memory.
    for (size_t i = 0; i < count_; i++) {
      for (size_t j = i + 1; j < count_; j++) {
        if (!bytesOverlap(arrays_[i].data, arrays_[i].bytes, arrays_[j].data, arrays_[j].bytes)) continue;
        const char* a = shortName(fn, arrays_[i].name);
        const char* b = shortName(fn, arrays_[j].name);
        for (const char* o : outputs) {
          if (std::strcmp(a, o) == 0) throw Napi::RangeError::New(env, std::string(fn) + ": " + a + " shares memory with " + b);
          if (std::strcmp(b, o) == 0) throw Napi::RangeError::New(env, std::string(fn) + ": " + b + " shares memory with " + a);
        }
      }
    }
  }
  void requireOutputsDisjoint(const Napi::Env& env, const std::string& fn, std::initializer_list<const char*> outputs) const {
    requireOutputsDisjoint(env, fn.c_str(), outputs);
  }

 private:
  static constexpr size_t kCapacity = 16;
  struct Array {
    const uint8_t* data;
    size_t bytes;
    char name[48];
  };
  // `name` without a leading "<fn>: ".
  static const char* shortName(const char* fn, const char* name) {
    const size_t n = std::strlen(fn);
    return std::strncmp(name, fn, n) == 0 && name[n] == ':' && name[n + 1] == ' ' ? name + n + 2 : name;
  }
  static inline thread_local ArgumentLog* current_ = nullptr;
  ArgumentLog* previous_;
  size_t count_ = 0;
  bool overflow_ = false;
  Array arrays_[kCapacity];
};

// The unit a length error counts in, as the js and wasm glue words it (lib/kernels/kernel-guards.ts):
// bytes for a byte array, values for any other; a tensor source and a transpose's arrays pass
// "elements" (guardSource, lib/core/transpose.ts), the one text for one refusal on every backend.
static inline const char* lengthUnit(size_t elementSize, const char* unit) { return unit ? unit : elementSize == 1 ? "bytes" : "values"; }

// Checks a typed array argument: element size (or exact kind), length (at least), not detached. The length
// and data pointer come from N-API, never from JavaScript properties a caller could fake.
static inline ArrayView checkedView(const Napi::Env& env, const Napi::Value& v, const char* name, size_t elementSize,
                                    int kind, const char* kindName, size_t expected, const char* unit = nullptr) {
  ArrayView view;
  napi_typedarray_type type;
  size_t length = 0;
  if (!v.IsTypedArray() || !arrayView(env, v, view, type, length)) {
    throw Napi::TypeError::New(env, std::string(name) + (kindName ? std::string(" must be a ") + kindName : " must be a typed array"));
  }
  if (kind >= 0 && type != static_cast<napi_typedarray_type>(kind)) throw Napi::TypeError::New(env, std::string(name) + " must be a " + kindName);
  if (view.elementSize != elementSize) {
    throw Napi::TypeError::New(env, std::string(name) + " has the wrong element type");
  }
  // At least `expected` elements (the kernels use the first `expected`), as the js and wasm glue
  // (lib/kernels/kernel-guards.ts) accept: one rule at the kernel boundary on every backend.
  if (length < expected) {
    throw Napi::RangeError::New(env, std::string(name) + " holds " + std::to_string(length) + " " + lengthUnit(elementSize, unit) + ", " +
                                         std::to_string(expected) + " needed");
  }
  if (expected > 0 && view.data == nullptr) throw Napi::TypeError::New(env, std::string(name) + " is detached");
  ArgumentLog::record(view.data, expected * elementSize, name);
  return view;
}

// A checked input's first `count` elements in memory no other thread can write while the call runs:
// for an input read more than once whose reads must agree (a check, then the work it guards). A
// SharedArrayBuffer's may be written by a Worker meanwhile, so it is copied into `copy` (a bit of
// dequantizeFgmp's mask per block, a 256-entry value table, a batch's indices: small beside the
// call); any other array is used in place, as no JavaScript runs during a synchronous call.
template <typename T>
static const T* stableElements(const ArrayView& view, size_t count, std::vector<T>& copy) {
  const T* data = reinterpret_cast<const T*>(view.data);
  if (!view.shared || count == 0) return data;
  copy.assign(data, data + count);
  return copy.data();
}

// The one typed-array kind a kernel argument of element type T takes, as lib/kernels/contract.ts
// declares it (an Int32Array is not a Float32Array because both have 4-byte elements).
template <typename T>
struct ArrayKind;
template <>
struct ArrayKind<float> {
  static constexpr int type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct ArrayKind<uint8_t> {
  static constexpr int type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};
template <>
struct ArrayKind<int8_t> : ArrayKind<uint8_t> {};  // MXINT8 codes: the bytes of a QuantizedTensor's data
template <>
struct ArrayKind<int32_t> {
  static constexpr int type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};

// In place, for synchronous calls (no JavaScript runs until they return); of T's kind.
template <typename T>
static T* typedData(const Napi::Env& env, const Napi::Value& v, const char* name, size_t expected, bool allowNull = false) {
  if (allowNull && (v.IsNull() || v.IsUndefined())) return nullptr;
  return reinterpret_cast<T*>(checkedView(env, v, name, sizeof(T), ArrayKind<T>::type, ArrayKind<T>::name, expected).data);
}

// A typed array of exactly this kind (Float32Array, Uint16Array, Uint8Array …) and length.
template <typename T>
static T* typedArrayOf(const Napi::Env& env, const Napi::Value& v, const char* name, napi_typedarray_type type,
                       const char* typeName, size_t expected) {
  return reinterpret_cast<T*>(checkedView(env, v, name, sizeof(T), type, typeName, expected).data);
}

// Arguments of calls that may run as a job (see job_buffers.h): with `job`, inputs are snapshotted
// and outputs staged; without, both are used in place.
template <typename T>
static const T* inputData(const Napi::Env& env, const Napi::Value& v, const char* name, size_t expected, JobBuffers* job,
                          bool allowNull = false, int kind = ArrayKind<T>::type, const char* kindName = ArrayKind<T>::name,
                          const char* unit = nullptr) {
  if (allowNull && (v.IsNull() || v.IsUndefined())) return nullptr;
  const ArrayView view = checkedView(env, v, name, sizeof(T), kind, kindName, expected, unit);
  return reinterpret_cast<const T*>(job ? job->input(env, v, view, expected * sizeof(T)) : view.data);
}

template <typename T>
static T* outputData(const Napi::Env& env, const Napi::Value& v, const char* name, size_t expected, JobBuffers* job,
                     int kind = ArrayKind<T>::type, const char* kindName = ArrayKind<T>::name) {
  const ArrayView view = checkedView(env, v, name, sizeof(T), kind, kindName, expected);
  if (!job) return reinterpret_cast<T*>(view.data);
  T* staged = reinterpret_cast<T*>(job->output(env, v, view, expected * sizeof(T)));
  job->nameLastOutput(name);
  return staged;
}

// A kernel's source tensor of `count` elements: a Float32Array for dtype f32, a Uint16Array for bf16
// and f16 (its bits), in place or, with `job`, snapshotted.
static inline const void* sourceArg(const Napi::Env& env, const Napi::Value& v, int32_t dtype, size_t count, JobBuffers* job = nullptr,
                                    const char* name = "src") {
  if (dtype == kF32) return inputData<float>(env, v, name, count, job, false, napi_float32_array, "Float32Array (dtype f32)", "elements");
  return inputData<uint16_t>(env, v, name, count, job, false, napi_uint16_array, "Uint16Array (dtype bf16/f16)", "elements");
}

static int64_t integerArg(const Napi::Env& env, const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int64_t>(d);
}

// a · b for sizes from JavaScript, or a RangeError `message` when the product passes `limit` or
// int64 (hostile sizes must fail before any length check or pointer arithmetic uses them).
static inline int64_t checkedProduct(const Napi::Env& env, int64_t a, int64_t b, const std::string& message,
                                     int64_t limit = INT64_MAX) {
  int64_t p = 0;
  if (__builtin_mul_overflow(a, b, &p) || p > limit) throw Napi::RangeError::New(env, message);
  return p;
}

// The one argument of a kernel that takes an object { … } (read each field once, then check).
static inline Napi::Object argumentObject(const Napi::CallbackInfo& info, const char* fn, const char* fields) {
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsTypedArray()) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": arguments must be an object { " + fields + " }");
  }
  return info[0].As<Napi::Object>();
}

// A typed array of one kind holding at least `needed` elements (the kernels use the first `needed`).
// (checkedView's checks and messages, and its entry in an open ArgumentLog.)
template <typename T>
static T* bufferArg(const Napi::Env& env, const Napi::Value& v, const std::string& name, napi_typedarray_type type, const char* typeName, size_t needed) {
  return reinterpret_cast<T*>(checkedView(env, v, name.c_str(), sizeof(T), type, typeName, needed).data);
}

// Exports a function whose C++ exceptions all become JavaScript errors: node-addon-api turns only
// Napi::Error into one, and anything else (std::bad_alloc of a large scratch buffer, from a
// worker thread too: threads.h rethrows it here) would otherwise reach std::terminate and take the
// process down.
static inline void exportFunction(Napi::Env env, Napi::Object exports, const char* name,
                                  Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [fn, name](const Napi::CallbackInfo& info) -> Napi::Value {
                          try {
                            return fn(info);
                          } catch (const Napi::Error&) {
                            throw;
                          } catch (const std::bad_alloc&) {
                            throw Napi::RangeError::New(info.Env(), std::string(name) + ": out of memory (a native allocation failed)");
                          } catch (const std::exception& e) {
                            throw Napi::Error::New(info.Env(), std::string(name) + ": native error: " + e.what());
                          } catch (...) {
                            throw Napi::Error::New(info.Env(), std::string(name) + ": native error");
                          }
                        },
                        name));
}

}  // namespace fp4kit
