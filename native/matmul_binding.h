// Registers the block-matmul functions on the addon's exports (called from binding.cc).
#pragma once
#include <napi.h>

namespace fp4kit {
void registerMatmul(Napi::Env env, Napi::Object exports);
}
