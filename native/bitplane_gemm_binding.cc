// N-API glue of the bit-plane product (bitplane_gemm.cc): packSigns, packBitPlanes and
// bitplaneMatmul with the argument objects of lib/kernels/contract.ts. Every field is read before
// any is checked or any buffer pointer taken; shapes, ranges, buffer kinds, lengths and 8-byte
// alignment of the word arrays are checked here, so a bad call throws instead of touching memory.
#include <napi.h>

#include <cmath>

#include <string>

#include "bitplane_gemm.h"
#include "bitplane_gemm_binding.h"
#include "napi_args.h"

namespace fp4kit {
namespace {

constexpr int64_t kMaxRows = int64_t(1) << 31;

// A Uint8Array of at least `bytes` bytes holding 64-bit words: its data must be 8-byte aligned.
uint64_t* wordsArg(const Napi::Env& env, const Napi::Value& v, const std::string& name, size_t bytes) {
  uint8_t* data = bufferArg<uint8_t>(env, v, name, napi_uint8_array, "Uint8Array", bytes);
  if (bytes > 0 && reinterpret_cast<uintptr_t>(data) % 8 != 0) throw Napi::RangeError::New(env, name + " must start at a multiple of 8 bytes");
  return reinterpret_cast<uint64_t*>(data);
}

bool boolArg(const Napi::Env& env, const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) throw Napi::TypeError::New(env, name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

void readFields(const Napi::Object& o, const char* const* names, int count, Napi::Value* v) {
  for (int i = 0; i < count; i++) v[i] = o.Get(names[i]);
}

// The output rows and the reduction length of a packed [rows, cols] input.
void packShape(const Napi::Env& env, const std::string& fn, int64_t rows, int64_t cols, bool transpose, int64_t& outRows, int64_t& length) {
  outRows = transpose ? cols : rows;
  length = transpose ? rows : cols;
  if (length > kMaxBitplaneLength) throw Napi::RangeError::New(env, fn + ": the reduction length " + std::to_string(length) + " exceeds 2^22");
  if (outRows > kMaxRows) throw Napi::RangeError::New(env, fn + ": too many rows");
}

// packSigns({ src, rows, cols, transpose, ternary, out })
Napi::Value PackSigns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "packSigns";
  const char* names[] = {"src", "rows", "cols", "transpose", "ternary", "out"};
  Napi::Value v[6];
  readFields(argumentObject(info, fn.c_str(), "src, rows, cols, transpose, ternary, out"), names, 6, v);
  ArgumentLog arrays;  // once the fields are read: a getter runs JavaScript, which may call into the addon
  const int64_t rows = integerArg(env, v[1], (fn + ": rows").c_str(), 0, kMaxRows);
  const int64_t cols = integerArg(env, v[2], (fn + ": cols").c_str(), 0, kMaxRows);
  const bool transpose = boolArg(env, v[3], fn + ": transpose");
  const bool ternary = boolArg(env, v[4], fn + ": ternary");
  int64_t outRows, length;
  packShape(env, fn, rows, cols, transpose, outRows, length);
  const float* src = bufferArg<float>(env, v[0], fn + ": src", napi_float32_array, "Float32Array", static_cast<size_t>(rows * cols));
  const size_t bytes = static_cast<size_t>(signsWordCount(outRows, length) * 8 * (ternary ? 2 : 1));
  uint64_t* out = wordsArg(env, v[5], fn + ": out", bytes);
  arrays.requireOutputsDisjoint(env, fn, {"out"});
  packSigns(src, rows, cols, transpose, ternary, out);
  return env.Undefined();
}

// packBitPlanes({ codes, rows, cols, bits, transpose, out }) → −1 or the first code ≥ 2^bits
Napi::Value PackBitPlanes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "packBitPlanes";
  const char* names[] = {"codes", "rows", "cols", "bits", "transpose", "out"};
  Napi::Value v[6];
  readFields(argumentObject(info, fn.c_str(), "codes, rows, cols, bits, transpose, out"), names, 6, v);
  ArgumentLog arrays;
  const int64_t rows = integerArg(env, v[1], (fn + ": rows").c_str(), 0, kMaxRows);
  const int64_t cols = integerArg(env, v[2], (fn + ": cols").c_str(), 0, kMaxRows);
  const int bits = static_cast<int>(integerArg(env, v[3], (fn + ": bits").c_str(), 1, 8));
  const bool transpose = boolArg(env, v[4], fn + ": transpose");
  int64_t outRows, length;
  packShape(env, fn, rows, cols, transpose, outRows, length);
  const uint8_t* codes = bufferArg<uint8_t>(env, v[0], fn + ": codes", napi_uint8_array, "Uint8Array", static_cast<size_t>(rows * cols));
  uint64_t* out = wordsArg(env, v[5], fn + ": out", static_cast<size_t>(outRows * bits * bitplaneWords(length) * 8));
  arrays.requireOutputsDisjoint(env, fn, {"out"});
  return Napi::Number::New(env, static_cast<double>(packBitPlanes(codes, rows, cols, bits, transpose, out)));
}

// bitplaneMatmul({ planes, m, bits, signs, n, length, ternary, rowsPerGroup, mask, scales, zeros, outInt, outFloat })
Napi::Value BitplaneMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "bitplaneMatmul";
  const char* names[] = {"planes", "m", "bits", "signs", "n", "length", "ternary", "rowsPerGroup", "mask", "scales", "zeros", "outInt", "outFloat"};
  Napi::Value v[13];
  readFields(argumentObject(info, fn.c_str(), "planes, m, bits, signs, n, length, ternary, rowsPerGroup, mask, scales, zeros, outInt, outFloat"), names, 13, v);
  ArgumentLog arrays;
  BitplaneMatmulArgs a{};
  a.m = integerArg(env, v[1], (fn + ": m").c_str(), 0, kMaxRows);
  a.bits = static_cast<int32_t>(integerArg(env, v[2], (fn + ": bits").c_str(), 1, 8));
  a.n = integerArg(env, v[4], (fn + ": n").c_str(), 0, kMaxRows);
  a.length = integerArg(env, v[5], (fn + ": length").c_str(), 0, kMaxBitplaneLength);
  a.ternary = boolArg(env, v[6], fn + ": ternary");
  a.rowsPerGroup = integerArg(env, v[7], (fn + ": rowsPerGroup").c_str(), 1, kMaxRows);
  const int64_t groups = (a.m + a.rowsPerGroup - 1) / a.rowsPerGroup;
  const size_t out = static_cast<size_t>(a.m * a.n);
  if (static_cast<double>(a.m) * static_cast<double>(a.n) > 9.0e15) throw Napi::RangeError::New(env, fn + ": m × n is too large");
  const bool isFloat = !(v[9].IsNull() || v[9].IsUndefined());
  if (isFloat == (v[10].IsNull() || v[10].IsUndefined())) throw Napi::TypeError::New(env, fn + ": scales and zeros must both be Float32Arrays or both null");
  if (isFloat == (v[12].IsNull() || v[12].IsUndefined()) || isFloat != (v[11].IsNull() || v[11].IsUndefined())) {
    throw Napi::TypeError::New(env, fn + ": the float form (scales, zeros) writes outFloat, the integer form outInt; the other must be null");
  }
  a.planes = wordsArg(env, v[0], fn + ": planes", static_cast<size_t>(a.m * a.bits * bitplaneWords(a.length) * 8));
  a.signs = wordsArg(env, v[3], fn + ": signs", static_cast<size_t>(signsWordCount(a.n, a.length) * 8 * (a.ternary ? 2 : 1)));
  a.mask = (v[8].IsNull() || v[8].IsUndefined()) ? nullptr : bufferArg<uint8_t>(env, v[8], fn + ": mask", napi_uint8_array, "Uint8Array", static_cast<size_t>(groups));
  if (isFloat) {
    a.scales = bufferArg<float>(env, v[9], fn + ": scales", napi_float32_array, "Float32Array", static_cast<size_t>(groups));
    a.zeros = bufferArg<float>(env, v[10], fn + ": zeros", napi_float32_array, "Float32Array", static_cast<size_t>(groups));
    // A quantized gradient's ranges are finite (quantizeGradient refuses the rest): a NaN or ±Inf
    // would make NaNs whose bits differ between kernels.
    for (int64_t g = 0; g < groups; g++) {
      if (!std::isfinite(a.scales[g]) || !std::isfinite(a.zeros[g])) {
        throw Napi::RangeError::New(env, fn + ": group " + std::to_string(g) + "'s scale or zero point is not finite");
      }
    }
    a.outFloat = bufferArg<float>(env, v[12], fn + ": outFloat", napi_float32_array, "Float32Array", out);
  } else {
    a.outInt = bufferArg<int32_t>(env, v[11], fn + ": outInt", napi_int32_array, "Int32Array", out);
  }
  arrays.requireOutputsDisjoint(env, fn, {"outInt", "outFloat"});
  bitplaneMatmul(a);
  return env.Undefined();
}

}  // namespace

void registerBitplaneGemm(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "packSigns", PackSigns);
  exportFunction(env, exports, "packBitPlanes", PackBitPlanes);
  exportFunction(env, exports, "bitplaneMatmul", BitplaneMatmul);
  exports.Set("bitplaneSimd", Napi::String::New(env, activeBitplaneKernel().simd));
}

}  // namespace fp4kit
