// error_sums.h's vector loop, written once with GCC vector extensions over eight float64 lanes —
// exactly the reference's eight lanes (element c in lane c mod 8) — and compiled by each ISA file
// with its own flags (quantize_avx512.cc: one register; quantize_avx2.cc: two; quantize_neon.cc:
// four). The source is read kLanes elements at a time through quantize_simd.h's exact widening;
// the row's last cols mod max(8, kLanes) elements continue the same lanes one at a time.
#pragma once

#include <cstring>

#include "error_sums.h"
#include "quantize_simd.h"  // included from its end: kLanes, U32v, loadBitsVector

typedef double F64x8 __attribute__((vector_size(64)));
typedef float F32x8 __attribute__((vector_size(32)));
typedef uint64_t U64x8 __attribute__((vector_size(64)));

// Elements per step: whole source vectors, at least the eight lanes.
constexpr int kErrorStep = kLanes > 8 ? kLanes : 8;

// Lanes += one group of eight elements (x widened exactly, y decoded): num += d·d, den += x·x,
// m = max(m, |d|), where max keeps m for a NaN |d| (the comparison is false).
static inline void errorLanes(F64x8 x, F64x8 y, F64x8& num, F64x8& den, F64x8& m) {
  const F64x8 d = x - y;
  num += d * d;
  den += x * x;
  const F64x8 a = (F64x8)((U64x8)d & 0x7fffffffffffffffull);
  m = a > m ? a : m;
}

// Eight float32 values as float64 (exact). GCC's generic conversion goes through two 4-lane
// halves and the stack; with AVX-512 one vcvtps2pd does all eight.
static inline F64x8 toF64x8(F32x8 f) {
#if defined(__AVX512F__)
  return (F64x8)_mm512_cvtps_pd((__m256)f);
#else
  return __builtin_convertvector(f, F64x8);
#endif
}

static inline F64x8 decoded8(const float* p) {
  F32x8 f;
  std::memcpy(&f, p, sizeof f);
  return toF64x8(f);
}

// Source elements [i, i + kErrorStep) as kErrorStep / 8 groups of eight float32 values.
static inline void source8s(const void* src, int32_t dtype, int64_t i, F32x8* groups) {
#if FP4KIT_LANES == 16
  const F32v v = (F32v)loadBitsVector(src, dtype, i);
  groups[0] = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  groups[1] = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
#elif FP4KIT_LANES == 8
  groups[0] = (F32x8)loadBitsVector(src, dtype, i);
#else
  const F32v a = (F32v)loadBitsVector(src, dtype, i), b = (F32v)loadBitsVector(src, dtype, i + 4);
  groups[0] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7);
#endif
}

static void errorSumsVector(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd,
                            double* rowSums, double* maxAbs) {
  F64x8 m = F64x8{} + *maxAbs;
  for (int64_t r = rowBegin; r < rowEnd; r++) {
    const int64_t base = r * cols;
    F64x8 num = {}, den = {};
    int64_t c = 0;
    for (; c + kErrorStep <= cols; c += kErrorStep) {
      F32x8 x[kErrorStep / 8];
      source8s(src, dtype, base + c, x);
      for (int g = 0; g < kErrorStep / 8; g++) errorLanes(toF64x8(x[g]), decoded8(decoded + base + c + 8 * g), num, den, m);
    }
    double n[8], s[8], mx[8];
    std::memcpy(n, &num, sizeof n);
    std::memcpy(s, &den, sizeof s);
    std::memcpy(mx, &m, sizeof mx);
    // The rest of the row, lane c mod 8 (c is a multiple of 8 here, so lane i takes c + i first).
    for (; c < cols; c++)
      fp4kit::errorElement(fp4kit::bitsToFloat(fp4kit::loadBits(src, dtype, base + c)), decoded[base + c], n[c & 7], s[c & 7], mx[c & 7]);
    std::memcpy(&m, mx, sizeof mx);
    rowSums[2 * r] = fp4kit::laneTree(n);
    rowSums[2 * r + 1] = fp4kit::laneTree(s);
  }
  double mx[8];
  std::memcpy(mx, &m, sizeof mx);
  double result = *maxAbs;
  for (double v : mx)
    if (v > result) result = v;
  *maxAbs = result;
}
