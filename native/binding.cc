// The addon's N-API surface: the quantization kernels of lib/kernels/contract.ts (same names,
// same arguments), their Promise variants, and the block matmul (matmul_binding.cc). Every
// argument is checked here before a kernel runs; large calls are split by rows over the addon's
// threads, which cannot change any bit (see threads.h). Synchronous calls use the typed arrays in
// place; Promise variants own what they touch (job_buffers.h).
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <functional>
#include <string>
#include <vector>

#include "bitplane_gemm_binding.h"
#include "error_sums_binding.h"
#include "fgmp.h"
#include "fgmp_dequantize_binding.h"
#include "gradient_quant_binding.h"
#include "matmul_binding.h"
#include "elementwise_binding.h"
#include "napi_args.h"
#include "napi_promise.h"
#include "quantize.h"
#include "sum_binding.h"
#include "threads.h"
#include "transpose_binding.h"

namespace fp4kit {
namespace {

constexpr int64_t kMaxDimension = int64_t(1) << 40;
constexpr double kMaxIndex = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER
constexpr int64_t kElementsPerThread = int64_t(1) << 18;

int32_t enumArg(const Napi::Env& env, const Napi::Value& v, const char* name, int32_t count) {
  return static_cast<int32_t>(integerArg(env, v, name, 0, count - 1));
}

uint64_t firstIndexArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return 0;
  return static_cast<uint64_t>(integerArg(info.Env(), info[i], "firstIndex", 0, static_cast<int64_t>(kMaxIndex)));
}

float tensorScaleArg(const Napi::Env& env, const Napi::Value& v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "tensorScale must be a number");
  const float t = static_cast<float>(v.As<Napi::Number>().DoubleValue());
  if (!std::isfinite(t) || t < 1.1754943508222875e-38f) throw Napi::RangeError::New(env, "tensorScale must be a finite float32 >= 2^-126");
  return t;
}

void requireArgs(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  if (info.Length() < n) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments");
}

int64_t minRowsPerThread(int64_t cols) { return std::max<int64_t>(1, kElementsPerThread / std::max<int64_t>(1, cols)); }

// ---- element casts ----

// encodeElements(src, dtype, format, rounding, seed, out, firstIndex?) → NaN inputs met by a format without NaN
Napi::Value EncodeElements(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireArgs(info, 6, "encodeElements");
  ArgumentLog arrays;
  ElementArgs a{};
  a.dtype = enumArg(env, info[1], "dtype", 3);
  a.format = enumArg(env, info[2], "format", kInt8);  // e2m1 … e8m0
  a.rounding = enumArg(env, info[3], "rounding", 2);
  a.seed = static_cast<uint32_t>(integerArg(env, info[4], "seed", 0, 0xffffffffLL));
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "src must be a typed array");
  a.count = static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength());
  a.src = sourceArg(env, info[0], a.dtype, static_cast<size_t>(a.count));
  a.out = typedArrayOf<uint8_t>(env, info[5], "out", napi_uint8_array, "Uint8Array", static_cast<size_t>(a.count));
  arrays.requireOutputsDisjoint(env, "encodeElements", {"out"});
  a.firstIndex = firstIndexArg(info, 6);
  const QuantizeKernels& k = activeKernels();
  std::atomic<int64_t> total{0};
  parallelFor(a.count, kElementsPerThread, [&](int64_t b, int64_t e) { total += k.encodeElements(a, b, e); });
  return Napi::Number::New(env, static_cast<double>(total));
}

// decodeElements(codes, format, out)
Napi::Value DecodeElements(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireArgs(info, 3, "decodeElements");
  ArgumentLog arrays;
  const int32_t format = enumArg(env, info[1], "format", kInt8);
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "codes must be a Uint8Array");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  const uint8_t* codes = typedArrayOf<uint8_t>(env, info[0], "codes", napi_uint8_array, "Uint8Array", n);
  float* out = typedArrayOf<float>(env, info[2], "out", napi_float32_array, "Float32Array", n);
  arrays.requireOutputsDisjoint(env, "decodeElements", {"out"});
  const QuantizeKernels& k = activeKernels();
  parallelFor(static_cast<int64_t>(n), kElementsPerThread, [&](int64_t b, int64_t e) { k.decodeElements(codes, format, out, b, e); });
  return env.Undefined();
}

// ---- block formats ----

struct BlockCall {
  BlockArgs args{};
  BlockKernel kernel = nullptr;
  void run() const {
    parallelFor(args.rows, minRowsPerThread(args.cols), [this](int64_t b, int64_t e) { kernel(args, b, e); });
  }
};

// The fields of a block-kernel call's argument object (lib/kernels/contract.ts BlockArgs). All of
// them are read before any is checked or any buffer pointer taken: reading a field may run a
// getter, which must not be able to detach a buffer whose pointer we already hold. A missing
// field reads as undefined and fails its own check.
struct BlockFields {
  static constexpr const char* kNames[] = {"format", "rows", "cols", "src", "dtype", "data", "scales", "tensorScale",
                                           "scaleRule", "rounding", "seed", "firstIndex", "out"};
  Napi::Env env;
  Napi::Value values[sizeof(kNames) / sizeof(kNames[0])];
  Napi::Value operator[](const char* name) const {
    for (size_t i = 0; i < sizeof(kNames) / sizeof(kNames[0]); i++) {
      if (std::strcmp(kNames[i], name) == 0) return values[i];
    }
    throw Napi::Error::New(env, std::string("internal: no field ") + name);
  }
};

BlockFields blockFields(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsTypedArray()) {
    throw Napi::TypeError::New(env, std::string(fn) + ": arguments must be an object { format, rows, cols, data, scales, … }");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  BlockFields f{env, {}};
  for (size_t i = 0; i < sizeof(BlockFields::kNames) / sizeof(BlockFields::kNames[0]); i++) f.values[i] = o.Get(BlockFields::kNames[i]);
  return f;
}

// format: the block format id, its table entry filled into the call.
const BlockFormat& blockFormatArg(const BlockFields& f, BlockArgs& a) {
  const int32_t id = enumArg(f.env, f["format"], "format", kBlockFormatCount);
  const BlockFormat& format = kBlockFormats[id];
  a.format = format.element;
  return format;
}

void blockShape(const BlockFields& f, BlockArgs& a) {
  a.rows = integerArg(f.env, f["rows"], "rows", 0, kMaxDimension);
  a.cols = integerArg(f.env, f["cols"], "cols", 0, kMaxDimension);
  if (a.cols == 0 && a.rows != 0) throw Napi::RangeError::New(f.env, "cols must be positive when rows > 0");
  if (a.rows > 0 && a.cols > kMaxDimension / a.rows) throw Napi::RangeError::New(f.env, "rows × cols is too large");
}

// data and scales: outputs of a quantize call, inputs of a dequantize call.
void blockBuffers(const BlockFields& f, BlockArgs& a, const BlockFormat& format, bool written, JobBuffers* job) {
  const Napi::Env& env = f.env;
  const int64_t bits = kElementFormats[format.element].bits;
  const size_t dataBytes = static_cast<size_t>(a.rows * packedRowBytes(a.cols, format.blockSize, bits));
  const size_t scaleBytes = static_cast<size_t>(a.rows * ((a.cols + format.blockSize - 1) / format.blockSize));
  if (written) {
    a.data = outputData<uint8_t>(env, f["data"], "data", dataBytes, job, napi_uint8_array, "Uint8Array");
    a.scales = outputData<uint8_t>(env, f["scales"], "scales", scaleBytes, job, napi_uint8_array, "Uint8Array");
  } else {
    a.data = const_cast<uint8_t*>(inputData<uint8_t>(env, f["data"], "data", dataBytes, job, false, napi_uint8_array, "Uint8Array"));
    a.scales = const_cast<uint8_t*>(inputData<uint8_t>(env, f["scales"], "scales", scaleBytes, job, false, napi_uint8_array, "Uint8Array"));
  }
}

// quantizeBlocks({ format, rows, cols, src, dtype, data, scales, tensorScale, scaleRule, rounding, seed, firstIndex })
BlockCall parseQuantizeBlocks(const Napi::CallbackInfo& info, JobBuffers* job) {
  const BlockFields f = blockFields(info, "quantizeBlocks");
  // Once the fields are read (a getter runs JavaScript, which may call into the addon): the caller's
  // own arrays, which checkedView logs before a job snapshots or stages them.
  ArgumentLog arrays;
  BlockCall call;
  BlockArgs& a = call.args;
  const BlockFormat& format = blockFormatArg(f, a);
  a.dtype = enumArg(f.env, f["dtype"], "dtype", 3);
  blockShape(f, a);
  if (format.tensorScale) a.tensorScale = tensorScaleArg(f.env, f["tensorScale"]);
  else a.scaleRule = enumArg(f.env, f["scaleRule"], "scaleRule", 2);
  a.rounding = enumArg(f.env, f["rounding"], "rounding", 2);
  a.seed = static_cast<uint32_t>(integerArg(f.env, f["seed"], "seed", 0, 0xffffffffLL));
  const Napi::Value first = f["firstIndex"];
  a.firstIndex = first.IsUndefined() ? 0 : static_cast<uint64_t>(integerArg(f.env, first, "firstIndex", 0, static_cast<int64_t>(kMaxIndex)));
  a.src = sourceArg(f.env, f["src"], a.dtype, static_cast<size_t>(a.rows * a.cols), job);
  blockBuffers(f, a, format, true, job);
  arrays.requireOutputsDisjoint(f.env, "quantizeBlocks", {"data", "scales"});
  call.kernel = format.tensorScale ? activeKernels().quantizeNvfp4 : activeKernels().quantizeMx;
  return call;
}

// dequantizeBlocks({ format, rows, cols, data, scales, tensorScale, out })
BlockCall parseDequantizeBlocks(const Napi::CallbackInfo& info, JobBuffers* job) {
  const BlockFields f = blockFields(info, "dequantizeBlocks");
  ArgumentLog arrays;
  BlockCall call;
  BlockArgs& a = call.args;
  const BlockFormat& format = blockFormatArg(f, a);
  blockShape(f, a);
  if (format.tensorScale) a.tensorScale = tensorScaleArg(f.env, f["tensorScale"]);
  blockBuffers(f, a, format, false, job);
  a.out = outputData<float>(f.env, f["out"], "out", static_cast<size_t>(a.rows * a.cols), job, napi_float32_array, "Float32Array");
  arrays.requireOutputsDisjoint(f.env, "dequantizeBlocks", {"out"});
  call.kernel = format.tensorScale ? activeKernels().dequantizeNvfp4 : activeKernels().dequantizeMx;
  return call;
}

template <BlockCall (*Parse)(const Napi::CallbackInfo&, JobBuffers*)>
Napi::Value RunBlockCall(const Napi::CallbackInfo& info) {
  Parse(info, nullptr).run();
  return info.Env().Undefined();
}

// The Promise variant: the work runs on libuv's pool and the addon's threads.
template <BlockCall (*Parse)(const Napi::CallbackInfo&, JobBuffers*)>
Napi::Value RunBlockCallAsync(const Napi::CallbackInfo& info) {
  return PromiseWorker<BlockCall>::Start(info, Parse);
}

// absMax(src, dtype) → max |x| as a number (NaN if any NaN)
Napi::Value AbsMax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireArgs(info, 2, "absMax");
  const int32_t dtype = enumArg(env, info[1], "dtype", 3);
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "src must be a typed array");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  const void* src = sourceArg(env, info[0], dtype, n);
  const QuantizeKernels& k = activeKernels();
  std::mutex lock;
  uint32_t amax = 0;
  parallelFor(static_cast<int64_t>(n), kElementsPerThread * 4, [&](int64_t b, int64_t e) {
    const uint32_t m = k.absMax(src, dtype, b, e);
    std::lock_guard<std::mutex> guard(lock);
    amax = std::max(amax, m);
  });
  if (amax > 0x7f800000u) return Napi::Number::New(env, NAN);
  float f;
  std::memcpy(&f, &amax, 4);
  return Napi::Number::New(env, f);
}

// fgmpCandidates(x f32|bf16|f16, dtype, rows, cols, fisher f32|null, fisherPerElement, tensorScale, fp8Scale,
//                clipping, impacts f64, fp4Codes u8, fp4Scales u8, fp8Codes u8)
struct FgmpCall {
  FgmpArgs args{};
  void run() const {
    const FgmpKernel kernel = activeKernels().fgmpCandidates;
    parallelFor(args.rows, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, args.cols)),
                [this, kernel](int64_t b, int64_t e) { kernel(args, b, e); });
  }
};

FgmpCall parseFgmpCandidates(const Napi::CallbackInfo& info, JobBuffers* job) {
  Napi::Env env = info.Env();
  requireArgs(info, 13, "fgmpCandidates");
  ArgumentLog arrays;  // the caller's own arrays: checkedView logs each before a job snapshots or stages it
  FgmpCall call;
  FgmpArgs& a = call.args;
  a.dtype = enumArg(env, info[1], "dtype", 3);
  a.rows = integerArg(env, info[2], "rows", 0, kMaxDimension);
  a.cols = integerArg(env, info[3], "cols", 0, kMaxDimension);
  if (a.rows > 0 && a.cols > kMaxDimension / a.rows) throw Napi::RangeError::New(env, "rows × cols is too large");
  if (a.rows > 0 && a.cols == 0) throw Napi::RangeError::New(env, "cols must be positive when rows > 0");
  const size_t count = static_cast<size_t>(a.rows * a.cols);
  a.x = sourceArg(env, info[0], a.dtype, count, job, "x");
  if (!info[5].IsBoolean() || !info[8].IsBoolean()) throw Napi::TypeError::New(env, "fisherPerElement and clipping must be booleans");
  a.fisherPerElement = info[5].As<Napi::Boolean>().Value();
  a.clipping = info[8].As<Napi::Boolean>().Value();
  a.fisher = inputData<float>(env, info[4], "fisher", a.fisherPerElement ? count : static_cast<size_t>(a.cols), job, true,
                             napi_float32_array, "Float32Array");
  a.tensorScale = tensorScaleArg(env, info[6]);
  a.fp8Scale = tensorScaleArg(env, info[7]);
  const int64_t blocks = a.rows * ((a.cols + kFgmpBlock - 1) / kFgmpBlock);
  a.impacts = outputData<double>(env, info[9], "impacts", static_cast<size_t>(blocks), job, napi_float64_array, "Float64Array");
  a.fp4Codes = outputData<uint8_t>(env, info[10], "fp4Codes", static_cast<size_t>(blocks * kFgmpBlock), job, napi_uint8_array, "Uint8Array");
  a.fp4Scales = outputData<uint8_t>(env, info[11], "fp4Scales", static_cast<size_t>(blocks), job, napi_uint8_array, "Uint8Array");
  a.fp8Codes = outputData<uint8_t>(env, info[12], "fp8Codes", static_cast<size_t>(blocks * kFgmpBlock), job, napi_uint8_array, "Uint8Array");
  arrays.requireOutputsDisjoint(env, "fgmpCandidates", {"impacts", "fp4Codes", "fp4Scales", "fp8Codes"});
  return call;
}

Napi::Value FgmpCandidates(const Napi::CallbackInfo& info) {
  parseFgmpCandidates(info, nullptr).run();
  return info.Env().Undefined();
}

Napi::Value FgmpCandidatesAsync(const Napi::CallbackInfo& info) {
  return PromiseWorker<FgmpCall>::Start(info, parseFgmpCandidates);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "fgmpCandidates", FgmpCandidates);
  exportFunction(env, exports, "fgmpCandidatesAsync", FgmpCandidatesAsync);
  exportFunction(env, exports, "encodeElements", EncodeElements);
  exportFunction(env, exports, "decodeElements", DecodeElements);
  exportFunction(env, exports, "quantizeBlocks", RunBlockCall<parseQuantizeBlocks>);
  exportFunction(env, exports, "quantizeBlocksAsync", RunBlockCallAsync<parseQuantizeBlocks>);
  exportFunction(env, exports, "dequantizeBlocks", RunBlockCall<parseDequantizeBlocks>);
  exportFunction(env, exports, "absMax", AbsMax);
  exports.Set("simd", Napi::String::New(env, activeKernels().simd));
  exports.Set("threads", Napi::Number::New(env, threadCount()));
  registerMatmul(env, exports);
  registerGradientQuant(env, exports);
  registerBitplaneGemm(env, exports);
  registerTranspose(env, exports);
  registerSum(env, exports);
  registerElementwise(env, exports);
  registerErrorSums(env, exports);
  registerFgmpDequantize(env, exports);
  return exports;
}

}  // namespace
}  // namespace fp4kit

static Napi::Object InitFp4kit(Napi::Env env, Napi::Object exports) { return fp4kit::Init(env, exports); }

NODE_API_MODULE(fp4kit, InitFp4kit)
