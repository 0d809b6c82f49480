// Registers the elementwise float32 kernels tanhFloat32 (tanh.h) and powerFloat32 (pow.h) on the
// addon's exports (called from binding.cc).
#pragma once
#include <napi.h>

namespace fp4kit {
void registerElementwise(Napi::Env env, Napi::Object exports);
}
