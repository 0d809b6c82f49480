// Phase 3 of the gradient quantizer (lib/kernels/ref/gradient-quant.ts) on one run of a row:
// branch-free, so the compiler vectorises it at each ISA's width. It is compiled once per
// instruction set (gradient_quant.cc baseline, gradient_quant_avx2.cc, gradient_quant_avx512.cc,
// each with its own -m flags) and every lane performs the reference's float64 operations in the
// same order, so every width gives the same bytes:
//   u = min((x − lo)·inv, B);  f = trunc(u) (= ⌊u⌋, u ≥ 0);  code = f + [bits < (u − f)·2^32]
// A group with inv = 0 (pruned, or R = 0) gets u = 0 and code 0, as the reference's shortcut does.
#pragma once
#include <cstdint>

#include "stochastic.h"

namespace fp4kit {

// x[0..n) of one row; flat indices have low words firstLow + j (the run never crosses a multiple
// of 2^32) under stream key `key`. perColumn: lo[j], inv[j] per element; else lo[0], inv[0].
using GradientCodesRun = void (*)(const float* x, uint8_t* out, int64_t n, const double* lo, const double* inv, bool perColumn,
                                  double B, uint32_t key, uint32_t firstLow);

void gradientCodesRunScalar(const float* x, uint8_t* out, int64_t n, const double* lo, const double* inv, bool perColumn, double B,
                            uint32_t key, uint32_t firstLow);
#if defined(__x86_64__) || defined(_M_X64)
void gradientCodesRunAvx2(const float* x, uint8_t* out, int64_t n, const double* lo, const double* inv, bool perColumn, double B,
                          uint32_t key, uint32_t firstLow);
void gradientCodesRunAvx512(const float* x, uint8_t* out, int64_t n, const double* lo, const double* inv, bool perColumn, double B,
                            uint32_t key, uint32_t firstLow);
#endif

namespace gradient_detail {

template <bool PerColumn>
static inline void codesRun(const float* __restrict x, uint8_t* __restrict out, int64_t n, const double* __restrict lo,
                            const double* __restrict inv, double B, uint32_t key, uint32_t firstLow) {
  const double l0 = lo[0], m0 = inv[0];
  for (int64_t j = 0; j < n; j++) {
    const double l = PerColumn ? lo[j] : l0;
    const double m = PerColumn ? inv[j] : m0;
    double u = (static_cast<double>(x[j]) - l) * m;
    u = u > B ? B : u;
    const int32_t f = static_cast<int32_t>(u);
    const uint32_t bits = fmix32((firstLow + static_cast<uint32_t>(j)) ^ key);
    // bits as a double without an unsigned conversion: (bits − 2^31 as int32) + 2^31, exact
    const double r = static_cast<double>(static_cast<int32_t>(bits ^ 0x80000000u)) + 2147483648.0;
    out[j] = static_cast<uint8_t>(f + (r < (u - static_cast<double>(f)) * 4294967296.0 ? 1 : 0));
  }
}

}  // namespace gradient_detail

#define FP4KIT_GRADIENT_CODES_RUN(name)                                                                                      \
  void name(const float* x, uint8_t* out, int64_t n, const double* lo, const double* inv, bool perColumn, double B, uint32_t key, \
            uint32_t firstLow) {                                                                                             \
    if (perColumn) gradient_detail::codesRun<true>(x, out, n, lo, inv, B, key, firstLow);                                   \
    else gradient_detail::codesRun<false>(x, out, n, lo, inv, B, key, firstLow);                                            \
  }

}  // namespace fp4kit
