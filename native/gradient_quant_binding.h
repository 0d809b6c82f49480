// Registers the gradient-quantizer functions on the addon's exports (called from binding.cc).
#pragma once
#include <napi.h>

namespace fp4kit {
void registerGradientQuant(Napi::Env env, Napi::Object exports);
}
