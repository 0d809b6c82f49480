// The one place a kernel table is chosen: once, from what the CPU supports, unless FP4KIT_SIMD
// (scalar | avx2 | avx512; on AArch64: scalar) asks for a lower level — so CI can run every path on one machine.
#include <cstdlib>
#include <string>

#include "matmul.h"
#include "quantize.h"

namespace fp4kit {
namespace {

const QuantizeKernels& chooseKernels() {
  const char* forced = std::getenv("FP4KIT_SIMD");
  const std::string want = forced ? forced : "";
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool avx2 = __builtin_cpu_supports("avx2");
  if (want == "scalar") return kScalarKernels;
  if (want == "avx2") return avx2 ? kAvx2Kernels : kScalarKernels;
  if (avx512) return kAvx512Kernels;
  if (avx2) return kAvx2Kernels;
#elif defined(__aarch64__)
  if (want != "scalar") return kNeonKernels;  // NEON is part of every AArch64 CPU
#endif
  return kScalarKernels;
}

MatmulKernel chooseMatmulKernel() {
  const char* forced = std::getenv("FP4KIT_SIMD");
  const std::string want = forced ? forced : "";
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  const bool avx2 = __builtin_cpu_supports("avx2");
  if (want == "scalar") return {"scalar", matmulFp4Int8Scalar, true};
  if (want == "avx2") return avx2 ? MatmulKernel{"avx2", matmulFp4Int8Avx2, false} : MatmulKernel{"scalar", matmulFp4Int8Scalar, true};
  // FP4KIT_SIMD=avx512 keeps AVX-512 but not VBMI, so the vpshufb decoder runs in CI too.
  if (vnni && __builtin_cpu_supports("avx512vbmi") && want != "avx512") return {"avx512-vnni-vbmi", matmulFp4Int8Avx512Vbmi, true};
  if (vnni) return {"avx512-vnni", matmulFp4Int8Avx512, true};
  if (avx2) return {"avx2", matmulFp4Int8Avx2, false};
#endif
  return {"scalar", matmulFp4Int8Scalar, true};
}

}  // namespace

const MatmulKernel& activeMatmulKernel() {
  static const MatmulKernel chosen = chooseMatmulKernel();
  return chosen;
}

const QuantizeKernels& activeKernels() {
  static const QuantizeKernels& chosen = chooseKernels();
  return chosen;
}

}  // namespace fp4kit
