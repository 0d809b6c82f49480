// Registers sumLeadingRows on the addon's exports (called from binding.cc).
#pragma once
#include <napi.h>

namespace fp4kit {
void registerSum(Napi::Env env, Napi::Object exports);
}
