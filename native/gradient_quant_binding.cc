// N-API glue of the gradient quantizers (gradient_quant.cc): quantizeGradient(args) and
// dequantizeGradient(args) with the argument objects of lib/kernels/contract.ts
// (GradientQuantArgs, GradientDequantArgs). Every field is read before any is checked or any
// buffer pointer taken (a getter must not detach a buffer we hold); then types, ranges and
// exact-enough lengths are checked here, so a bad call throws instead of touching memory.
#include <napi.h>

#include <string>

#include "gradient_quant.h"
#include "gradient_quant_binding.h"
#include "napi_args.h"

namespace fp4kit {
namespace {

constexpr int64_t kMaxDimension = int64_t(1) << 40;

void shapeArgs(const Napi::Env& env, const std::string& fn, const Napi::Value& rows, const Napi::Value& cols, int64_t& r, int64_t& c) {
  r = integerArg(env, rows, (fn + ": rows").c_str(), 0, kMaxDimension);
  c = integerArg(env, cols, (fn + ": cols").c_str(), 0, kMaxDimension);
  if (r > 0 && c > kMaxDimension / r) throw Napi::RangeError::New(env, fn + ": rows × cols is too large");
}

// quantizeGradient({ src, rows, cols, bits, groups, prune, seed, codes, scales, zeros, mask, keepProbability }) → −1 or first non-finite index
Napi::Value QuantizeGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "quantizeGradient";
  Napi::Object o = argumentObject(info, fn.c_str(), "src, rows, cols, bits, groups, prune, seed, codes, scales, zeros, mask, keepProbability");
  const char* names[] = {"src", "rows", "cols", "bits", "groups", "prune", "seed", "codes", "scales", "zeros", "mask", "keepProbability"};
  Napi::Value v[12];
  for (int i = 0; i < 12; i++) v[i] = o.Get(names[i]);
  ArgumentLog arrays;  // once the fields are read: a getter runs JavaScript, which may call into the addon
  GradientArgs a{};
  shapeArgs(env, fn, v[1], v[2], a.rows, a.cols);
  a.bits = static_cast<int32_t>(integerArg(env, v[3], (fn + ": bits").c_str(), 1, 8));
  a.groups = static_cast<int32_t>(integerArg(env, v[4], (fn + ": groups").c_str(), 0, 2));
  a.prune = static_cast<int32_t>(integerArg(env, v[5], (fn + ": prune").c_str(), 0, 2));
  a.seed = static_cast<uint32_t>(integerArg(env, v[6], (fn + ": seed").c_str(), 0, 0xffffffffLL));
  const size_t n = static_cast<size_t>(a.rows * a.cols);
  const size_t count = static_cast<size_t>(gradientGroupCount(a.rows, a.cols, a.groups));
  a.src = bufferArg<float>(env, v[0], fn + ": src", napi_float32_array, "Float32Array", n);
  a.codes = bufferArg<uint8_t>(env, v[7], fn + ": codes", napi_uint8_array, "Uint8Array", n);
  a.scales = bufferArg<float>(env, v[8], fn + ": scales", napi_float32_array, "Float32Array", count);
  a.zeros = bufferArg<float>(env, v[9], fn + ": zeros", napi_float32_array, "Float32Array", count);
  a.mask = bufferArg<uint8_t>(env, v[10], fn + ": mask", napi_uint8_array, "Uint8Array", count);
  a.keepProbability = bufferArg<float>(env, v[11], fn + ": keepProbability", napi_float32_array, "Float32Array", count);
  arrays.requireOutputsDisjoint(env, fn, {"codes", "scales", "zeros", "mask", "keepProbability"});
  return Napi::Number::New(env, static_cast<double>(quantizeGradient(a)));
}

// dequantizeGradient({ codes, scales, zeros, mask, rows, cols, groups, out })
Napi::Value DequantizeGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "dequantizeGradient";
  Napi::Object o = argumentObject(info, fn.c_str(), "codes, scales, zeros, mask, rows, cols, groups, out");
  const char* names[] = {"codes", "scales", "zeros", "mask", "rows", "cols", "groups", "out"};
  Napi::Value v[8];
  for (int i = 0; i < 8; i++) v[i] = o.Get(names[i]);
  ArgumentLog arrays;
  GradientDequantArgs a{};
  shapeArgs(env, fn, v[4], v[5], a.rows, a.cols);
  a.groups = static_cast<int32_t>(integerArg(env, v[6], (fn + ": groups").c_str(), 0, 2));
  const size_t n = static_cast<size_t>(a.rows * a.cols);
  const size_t count = static_cast<size_t>(gradientGroupCount(a.rows, a.cols, a.groups));
  a.codes = bufferArg<uint8_t>(env, v[0], fn + ": codes", napi_uint8_array, "Uint8Array", n);
  a.scales = bufferArg<float>(env, v[1], fn + ": scales", napi_float32_array, "Float32Array", count);
  a.zeros = bufferArg<float>(env, v[2], fn + ": zeros", napi_float32_array, "Float32Array", count);
  a.mask = bufferArg<uint8_t>(env, v[3], fn + ": mask", napi_uint8_array, "Uint8Array", count);
  a.out = bufferArg<float>(env, v[7], fn + ": out", napi_float32_array, "Float32Array", n);
  arrays.requireOutputsDisjoint(env, fn, {"out"});
  dequantizeGradient(a);
  return env.Undefined();
}

}  // namespace

void registerGradientQuant(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "quantizeGradient", QuantizeGradient);
  exportFunction(env, exports, "dequantizeGradient", DequantizeGradient);
}

}  // namespace fp4kit
