// The one place kernels are chosen: one probe of the CPU, once, and from it the quantize table
// and the matmul kernel — unless FP4KIT_SIMD asks for a lower level (scalar | avx2 | avx512, where
// avx512 means AVX-512 without VBMI; on AArch64: scalar | neon, where neon means without the
// dot-product extension), so CI can run every path on one machine.
// FGMP's candidate search has one scalar implementation (native/fgmp.cc) on every level. The
// bit-plane product's AVX-512 kernel also needs VPOPCNTDQ (without it: the AVX2 kernel).
#include <cstdio>
#include <cstdlib>
#include <string>
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

#include "bitplane_gemm.h"
#include "matmul.h"
#include "matmul_aligned.h"
#include "matmul_planes.h"
#include "quantize.h"
#include "threads.h"

namespace fp4kit {
namespace {

// What this CPU offers, capped by FP4KIT_SIMD.
struct Simd {
  bool avx2 = false, avx512 = false, vnni = false, vbmi = false, vpopcntdq = false, neon = false, dotprod = false;
};

#if defined(__aarch64__)
// The ARMv8.2 dot-product extension (sdot/udot), as the OS reports it.
bool cpuHasDotprod() {
#if defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
  int value = 0;
  size_t size = sizeof(value);
  return sysctlbyname("hw.optional.arm.FEAT_DotProd", &value, &size, nullptr, 0) == 0 && value != 0;
#else
  return false;
#endif
}
#endif

Simd probe() {
  const char* forced = std::getenv("FP4KIT_SIMD");
  std::string want = forced ? forced : "";
#if defined(__x86_64__) || defined(_M_X64)
  const bool known = want.empty() || want == "scalar" || want == "avx2" || want == "avx512";
  const char* levels = "scalar, avx2, avx512";
#elif defined(__aarch64__)
  const bool known = want.empty() || want == "scalar" || want == "neon";
  const char* levels = "scalar, neon";
#else
  const bool known = want.empty() || want == "scalar";
  const char* levels = "scalar";
#endif
  if (!known) {
    // The variable caps the level: a typo must not lift the cap (it would test the full level
    // while claiming another), so an unknown value is the lowest level, said once.
    std::fprintf(stderr, "fp4kit: FP4KIT_SIMD=%s is not one of %s (or unset): the scalar kernels run\n", want.c_str(), levels);
    want = "scalar";
  }
  const char* threads = std::getenv("FP4KIT_THREADS");
  if (threads != nullptr && threads[0] != '\0' && parseThreadCount(threads) == 0) {
    std::fprintf(stderr, "fp4kit: FP4KIT_THREADS=%s is not an integer in 1..64: %d threads run\n", threads, defaultThreadCount());
  }
  Simd s;
  if (want == "scalar") return s;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  s.avx2 = __builtin_cpu_supports("avx2");
  if (want == "avx2") return s;
  s.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
  s.vpopcntdq = s.avx512 && __builtin_cpu_supports("avx512vpopcntdq");
  s.vnni = s.avx512 && __builtin_cpu_supports("avx512vnni");
  s.vbmi = s.vnni && __builtin_cpu_supports("avx512vbmi") && want != "avx512";
#elif defined(__aarch64__)
  s.neon = true;  // part of every AArch64 CPU
  s.dotprod = want != "neon" && cpuHasDotprod();
#endif
  return s;
}

const Simd& simd() {
  static const Simd s = probe();
  return s;
}

const QuantizeKernels& chooseKernels(const Simd& s) {
#if defined(__x86_64__) || defined(_M_X64)
  if (s.avx512) return kAvx512Kernels;
  if (s.avx2) return kAvx2Kernels;
#elif defined(__aarch64__)
  if (s.neon) return kNeonKernels;
#endif
  return kScalarKernels;
}

MatmulKernel chooseMatmulKernel(const Simd& s) {
#if defined(__x86_64__) || defined(_M_X64)
  if (s.vbmi) return {"avx512-vnni-vbmi", matmulFp4Int8Avx512Vbmi, true, matmulDecodedAvx512, true};
  if (s.vnni) return {"avx512-vnni", matmulFp4Int8Avx512, true, matmulDecodedAvx512, true};
  if (s.avx2) return {"avx2", matmulFp4Int8Avx2, false, s.avx512 ? matmulDecodedAvx512 : matmulDecodedAvx2, true};
#elif defined(__aarch64__)
  if (s.dotprod) return {"neon-dotprod", matmulFp4Int8NeonDotprod, false, matmulDecodedScalar, false};
  if (s.neon) return {"neon", matmulFp4Int8Neon, false, matmulDecodedScalar, false};
#endif
  (void)s;
  return {"scalar", matmulFp4Int8Scalar, true, matmulDecodedScalar, true};
}

PlanesKernel choosePlanesKernel(const Simd& s) {
#if defined(__x86_64__) || defined(_M_X64)
  if (s.vnni) return matmulPlanesAvx512;
  if (s.avx2) return matmulPlanesAvx2;  // int16 planes: no u8×s8 dot without saturation
#elif defined(__aarch64__)
  if (s.dotprod) return matmulPlanesNeonDotprod;  // byte planes, sdot on plane − 128
  if (s.neon) return matmulPlanesNeon;  // int16 planes: baseline NEON has no byte dot
#endif
  (void)s;
  return matmulPlanesScalar;
}

AlignedKernel chooseAlignedKernel(const Simd& s) {
#if defined(__x86_64__) || defined(_M_X64)
  if (s.vnni) return matmulAlignedAvx512;
  if (s.avx2) return matmulAlignedAvx2;
#elif defined(__aarch64__)
  if (s.neon) return matmulAlignedNeon;
#endif
  (void)s;
  return matmulAlignedScalar;
}

PlanesKernel choosePlanesFromCodesKernel(const Simd& s) {
#if defined(__x86_64__) || defined(_M_X64)
  if (s.vbmi) return matmulPlanesFromCodesAvx512Vbmi;
#endif
  (void)s;
  return nullptr;
}

BitplaneKernel chooseBitplaneKernel(const Simd& s) {
#if defined(__x86_64__) || defined(_M_X64)
  if (s.vpopcntdq) return {"avx512-vpopcntdq", bitplaneRowsAvx512};
  if (s.avx2) return {"avx2", bitplaneRowsAvx2};
#elif defined(__aarch64__)
  if (s.neon) return {"neon", bitplaneRowsNeon};
#endif
  (void)s;
  return {"scalar", bitplaneRowsScalar};
}

}  // namespace

const BitplaneKernel& activeBitplaneKernel() {
  static const BitplaneKernel chosen = chooseBitplaneKernel(simd());
  return chosen;
}

PlanesKernel activePlanesKernel() {
  static const PlanesKernel chosen = choosePlanesKernel(simd());
  return chosen;
}

bool activeKernelsReadRowBlocks() {
#if defined(__x86_64__) || defined(_M_X64)
  return activePlanesKernel() == matmulPlanesAvx512;  // chosen with the AVX-512 VNNI FP4 kernel
#else
  return false;
#endif
}

PlaneForm activePlaneForm() {
#if defined(__x86_64__) || defined(_M_X64)
  if (activePlanesKernel() == matmulPlanesAvx2) return PlaneForm::Int16Codes;
#elif defined(__aarch64__)
  if (activePlanesKernel() == matmulPlanesNeon) return PlaneForm::Int16;
#endif
  return activePlanesFromCodesKernel() ? PlaneForm::Codes : PlaneForm::Bytes;
}

AlignRowUnitFn activeAlignRowUnit() {
#if defined(__x86_64__) || defined(_M_X64)
  static const AlignRowUnitFn chosen = simd().vnni ? alignRowUnitAvx512 : simd().avx2 ? alignRowUnitAvx2 : alignRowUnit;
#elif defined(__aarch64__)
  static const AlignRowUnitFn chosen = simd().neon ? alignRowUnitNeon : alignRowUnit;
#else
  static const AlignRowUnitFn chosen = alignRowUnit;
#endif
  return chosen;
}

const AlignedCodes* alignedCodesFor(const DecodedOperand& x, int64_t unit) {
  if (x.codes == nullptr || unit != 32 || (x.codeElement != kE4m3 && x.codeElement != kE5m2)) return nullptr;
#if defined(__x86_64__) || defined(_M_X64)
  // With the AVX-512 aligned kernel: its panel is the one the codes fill writes (width 32).
  if (simd().vbmi && activeAlignedKernel() == matmulAlignedAvx512) return &alignedCodesAvx512Vbmi;
#endif
  return nullptr;
}

int64_t activeAlignedRowsPerBlock() {
  const AlignedKernel k = activeAlignedKernel();
#if defined(__x86_64__) || defined(_M_X64)
  if (k == matmulAlignedAvx512) return kAlignedAvx512Rows;
  if (k == matmulAlignedAvx2) return kAlignedAvx2Rows;
#endif
  return 0;
}

AlignedKernel activeAlignedKernel() {
  static const AlignedKernel chosen = chooseAlignedKernel(simd());
  return chosen;
}

PlanesKernel activePlanesFromCodesKernel() {
  static const PlanesKernel chosen = choosePlanesFromCodesKernel(simd());
  return chosen;
}

const MatmulKernel& activeMatmulKernel() {
  static const MatmulKernel chosen = chooseMatmulKernel(simd());
  return chosen;
}

const QuantizeKernels& activeKernels() {
  static const QuantizeKernels& chosen = chooseKernels(simd());
  return chosen;
}

}  // namespace fp4kit
