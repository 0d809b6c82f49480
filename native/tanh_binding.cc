// N-API glue of tanh.h: tanhFloat32(x, n, out), the kinds, sizes and overlap checked before any
// memory is touched; the elements spread over the addon's threads.
#include <napi.h>

#include "napi_args.h"
#include "quantize.h"
#include "tanh.h"
#include "tanh_binding.h"
#include "threads.h"

namespace fp4kit {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;

// tanhFloat32(x Float32Array, n, out Float32Array): out[0, n) = tanhf(x[0, n)). out may be x
// itself (each element is read before it is written), not a partly overlapping view.
Napi::Value TanhFloat32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) throw Napi::TypeError::New(env, "tanhFloat32: expected 3 arguments");
  const int64_t n = integerArg(env, info[1], "tanhFloat32: n", 0, kMaxElements);
  const float* x = typedData<float>(env, info[0], "tanhFloat32: x", static_cast<size_t>(n));
  float* out = typedData<float>(env, info[2], "tanhFloat32: out", static_cast<size_t>(n));
  if (x != out && bytesOverlap(x, static_cast<size_t>(n) * 4, out, static_cast<size_t>(n) * 4))
    throw Napi::RangeError::New(env, "tanhFloat32: x and out overlap (only out = x itself is allowed)");
  const TanhKernel kernel = activeKernels().tanh32;
  parallelFor(n, int64_t(1) << 14, [&](int64_t begin, int64_t end) { kernel(x, out, begin, end); });
  return env.Undefined();
}

}  // namespace

void registerTanh(Napi::Env env, Napi::Object exports) { exportFunction(env, exports, "tanhFloat32", TanhFloat32); }

}  // namespace fp4kit
