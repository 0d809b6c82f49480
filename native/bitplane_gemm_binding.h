// Registers the bit-plane product's functions on the addon's exports (called from binding.cc).
#pragma once
#include <napi.h>

namespace fp4kit {
void registerBitplaneGemm(Napi::Env env, Napi::Object exports);
}
