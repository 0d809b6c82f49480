// N-API glue of power.h: powerFloat32(x, exponent, n, out), the exponent, kinds, sizes and overlap
// checked before any memory is touched; the elements spread over the addon's threads.
#include <napi.h>

#include "napi_args.h"
#include "power.h"
#include "power_binding.h"
#include "threads.h"

namespace fp4kit {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;

// powerFloat32(x Float32Array, exponent 2 | 3, n, out Float32Array): out[0, n) = x[0, n)^exponent.
// out may be x itself, not a partly overlapping view.
Napi::Value PowerFloat32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) throw Napi::TypeError::New(env, "powerFloat32: expected 4 arguments");
  const int64_t exponent = integerArg(env, info[1], "powerFloat32: exponent", 2, 3);
  const int64_t n = integerArg(env, info[2], "powerFloat32: n", 0, kMaxElements);
  const float* x = typedData<float>(env, info[0], "powerFloat32: x", static_cast<size_t>(n));
  float* out = typedData<float>(env, info[3], "powerFloat32: out", static_cast<size_t>(n));
  if (x != out && bytesOverlap(x, static_cast<size_t>(n) * 4, out, static_cast<size_t>(n) * 4))
    throw Napi::RangeError::New(env, "powerFloat32: x and out overlap (only out = x itself is allowed)");
  const int e = static_cast<int>(exponent);
  parallelFor(n, int64_t(1) << 15, [&](int64_t begin, int64_t end) { powerFloat32(x, e, out, begin, end); });
  return env.Undefined();
}

}  // namespace

void registerPower(Napi::Env env, Napi::Object exports) { exportFunction(env, exports, "powerFloat32", PowerFloat32); }

}  // namespace fp4kit
