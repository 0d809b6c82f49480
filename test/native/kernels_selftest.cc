// Self-test of the quantization kernel tables without Node: every SIMD table this build has
// (AVX2, AVX-512 on x86-64; NEON on AArch64) must give the bytes of the scalar reference on
// random and adversarial inputs, for every element format, rounding mode, scale rule and dtype.
// CI builds it natively and cross-compiled for AArch64, run under qemu (scripts/native-selftest.sh).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/block_scale.h"
#include "../../native/element_codec.h"
#include "../../native/quantize.h"

using namespace fp4kit;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    if (failures < 20) std::printf("FAIL %s\n", what.c_str());
    failures++;
  }
}

std::vector<uint32_t> makeInput(size_t n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> bits(n);
  const float grid[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 448.0f, 464.0f, 0.5f, 7.75f, 30.0f};
  for (size_t i = 0; i < n; i++) {
    const int scale = static_cast<int>((i / 16) % 60) - 30;
    float v;
    switch (rng() % 5) {
      case 0: v = grid[rng() % 13] * std::ldexp(1.0f, scale); break;                  // ties
      case 1: v = bitsToFloat(floatToBits(grid[rng() % 13]) + (rng() % 3) - 1); break;  // ±1 ulp
      case 2: v = bitsToFloat(rng() % 0x00800000u); break;                              // subnormals
      default: v = std::ldexp(static_cast<float>(rng() % 100000) / 100000.0f, scale);
    }
    if (rng() % 2) v = -v;
    bits[i] = floatToBits(v);
    if (specials && rng() % 200 == 0) bits[i] = (rng() % 2) ? 0x7fc00000u : 0xff800000u;
  }
  return bits;
}

void compareTables(const QuantizeKernels& simd) {
  const int64_t rows = 23, cols = 1000;  // whole and ragged blocks, groups of 16 NVFP4 blocks
  for (uint32_t seed = 1; seed <= 4; seed++) {
    const bool specials = seed % 2 == 1;
    const std::vector<uint32_t> f32 = makeInput(rows * cols, seed, specials);
    std::vector<uint16_t> half(f32.size());
    for (size_t i = 0; i < f32.size(); i++) half[i] = static_cast<uint16_t>(f32[i] >> 16);  // bf16 and f16 bit patterns
    for (int32_t dtype : {kF32, kBf16, kF16}) {
      const void* src = dtype == kF32 ? static_cast<const void*>(f32.data()) : static_cast<const void*>(half.data());
      for (int32_t format : {kE2m1, kE2m3, kE3m2, kE4m3, kE5m2, kInt8}) {
        for (int32_t rounding : {kNearest, kStochastic}) {
          for (int32_t rule : {kScaleFloor, kScaleCeil}) {
            BlockArgs a{};
            a.src = src; a.dtype = dtype; a.rows = rows; a.cols = cols; a.format = format;
            a.scaleRule = rule; a.rounding = rounding; a.seed = seed * 7; a.firstIndex = 4294967296ull - 5000;
            const int64_t bytes = rows * packedRowBytes(cols, kMxBlock, kElementFormats[format].bits);
            std::vector<uint8_t> d1(bytes), s1(rows * 32), d2(bytes), s2(rows * 32);
            a.data = d1.data(); a.scales = s1.data();
            kScalarKernels.quantizeMx(a, 0, rows);
            a.data = d2.data(); a.scales = s2.data();
            simd.quantizeMx(a, 0, rows);
            const std::string what = std::string(simd.simd) + " mx format " + std::to_string(format) + " dtype " + std::to_string(dtype) +
                                     " rounding " + std::to_string(rounding) + " rule " + std::to_string(rule) + " seed " + std::to_string(seed);
            check(d1 == d2 && s1 == s2, what);
            std::vector<float> o1(rows * cols), o2(rows * cols);
            a.out = o1.data(); a.data = d1.data(); a.scales = s1.data();
            kScalarKernels.dequantizeMx(a, 0, rows);
            a.out = o2.data();
            simd.dequantizeMx(a, 0, rows);
            check(std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0, "dequantize " + what);
          }
        }
      }
      if (specials) continue;  // NVFP4 input has no NaN/Inf (the API rejects it)
      for (int32_t rounding : {kNearest, kStochastic}) {
        for (float t : {1e-3f, 0.0172f, 1.1754944e-38f}) {
          BlockArgs a{};
          a.src = src; a.dtype = dtype; a.rows = rows; a.cols = cols; a.format = kE2m1; a.rounding = rounding;
          a.seed = 99; a.tensorScale = t;
          const int64_t bytes = rows * packedRowBytes(cols, kNvfp4Block, 4);
          std::vector<uint8_t> d1(bytes), s1(rows * 63), d2(bytes), s2(rows * 63);
          a.data = d1.data(); a.scales = s1.data();
          kScalarKernels.quantizeNvfp4(a, 0, rows);
          a.data = d2.data(); a.scales = s2.data();
          simd.quantizeNvfp4(a, 0, rows);
          const std::string what = std::string(simd.simd) + " nvfp4 dtype " + std::to_string(dtype) + " rounding " + std::to_string(rounding);
          check(d1 == d2 && s1 == s2, what);
          std::vector<float> o1(rows * cols), o2(rows * cols);
          a.out = o1.data(); a.data = d1.data(); a.scales = s1.data();
          kScalarKernels.dequantizeNvfp4(a, 0, rows);
          a.out = o2.data();
          simd.dequantizeNvfp4(a, 0, rows);
          check(std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0, "dequantize " + what);
        }
      }
      check(kScalarKernels.absMax(src, dtype, 0, rows * cols) == simd.absMax(src, dtype, 0, rows * cols) ||
                (kScalarKernels.absMax(src, dtype, 0, rows * cols) > 0x7f800000u && simd.absMax(src, dtype, 0, rows * cols) > 0x7f800000u),
            std::string(simd.simd) + " absMax");
    }
  }
}

}  // namespace

int main() {
  std::vector<const QuantizeKernels*> tables;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) tables.push_back(&kAvx2Kernels);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) tables.push_back(&kAvx512Kernels);
#elif defined(__aarch64__)
  tables.push_back(&kNeonKernels);
#endif
  for (const QuantizeKernels* t : tables) {
    compareTables(*t);
    std::printf("%s: compared with the scalar kernels\n", t->simd);
  }
  std::printf("%d failures\n", failures);
  return failures == 0 && !tables.empty() ? 0 : 1;
}
