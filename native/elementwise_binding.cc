// N-API glue of the elementwise float32 kernels behind the tfjs backend's Tanh and Pow:
//   tanhFloat32(x, n, out)              out[0, n) = tanhf(x[0, n))   (tanh.h, the quantize tables' tanh32)
//   powerFloat32(x, exponent, n, out)   out[0, n) = x[0, n)^2 or ^3  (pow.h)
// Kinds, sizes and overlap are checked before any memory is touched (out may be x itself, not a
// partly overlapping view); the elements spread over the addon's threads.
#include <napi.h>

#include <string>

#include "elementwise_binding.h"
#include "napi_args.h"
#include "pow.h"
#include "quantize.h"
#include "threads.h"

namespace fp4kit {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;

struct UnaryFloat32 {
  const float* x;
  int64_t n;
  float* out;
};

// x at info[xAt], n at info[nAt], out at info[outAt], for the function `fn`.
UnaryFloat32 unaryArgs(const Napi::CallbackInfo& info, const std::string& fn, int xAt, int nAt, int outAt) {
  Napi::Env env = info.Env();
  const int64_t n = integerArg(env, info[nAt], (fn + ": n").c_str(), 0, kMaxElements);
  const float* x = typedData<float>(env, info[xAt], (fn + ": x").c_str(), static_cast<size_t>(n));
  float* out = typedData<float>(env, info[outAt], (fn + ": out").c_str(), static_cast<size_t>(n));
  if (x != out && bytesOverlap(x, static_cast<size_t>(n) * 4, out, static_cast<size_t>(n) * 4))
    throw Napi::RangeError::New(env, fn + ": x and out overlap (only out = x itself is allowed)");
  return {x, n, out};
}

Napi::Value TanhFloat32(const Napi::CallbackInfo& info) {
  if (info.Length() < 3) throw Napi::TypeError::New(info.Env(), "tanhFloat32: expected 3 arguments");
  const UnaryFloat32 a = unaryArgs(info, "tanhFloat32", 0, 1, 2);
  const TanhKernel kernel = activeKernels().tanh32;
  parallelFor(a.n, int64_t(1) << 14, [&](int64_t begin, int64_t end) { kernel(a.x, a.out, begin, end); });
  return info.Env().Undefined();
}

Napi::Value PowerFloat32(const Napi::CallbackInfo& info) {
  if (info.Length() < 4) throw Napi::TypeError::New(info.Env(), "powerFloat32: expected 4 arguments");
  const int exponent = static_cast<int>(integerArg(info.Env(), info[1], "powerFloat32: exponent", 2, 3));
  const UnaryFloat32 a = unaryArgs(info, "powerFloat32", 0, 2, 3);
  parallelFor(a.n, int64_t(1) << 15, [&](int64_t begin, int64_t end) { powerFloat32(a.x, exponent, a.out, begin, end); });
  return info.Env().Undefined();
}

}  // namespace

void registerElementwise(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "tanhFloat32", TanhFloat32);
  exportFunction(env, exports, "powerFloat32", PowerFloat32);
}

}  // namespace fp4kit
