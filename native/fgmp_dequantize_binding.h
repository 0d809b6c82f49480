// Registers dequantizeFgmp on the addon's exports (called from binding.cc).
#pragma once
#include <napi.h>

namespace fp4kit {
void registerFgmpDequantize(Napi::Env env, Napi::Object exports);
}
