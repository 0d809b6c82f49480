// FGMP candidates (fgmp.h) vectorised across blocks: one lane per block of 16, so each lane runs
// the scalar kernel's steps (fgmp.cc) for its own block in the same order — the clipping search's
// and the impact's float64 sums stay in element order within a lane, every float step is the same
// single IEEE operation — and the bytes and impacts are the scalar's (kernels_selftest.cc checks).
// Included by quantize_simd.h, so each ISA file (quantize_avx512.cc, quantize_avx2.cc,
// quantize_neon.cc) compiles it at its own lane count.
#pragma once

#include <cmath>

#include "fgmp.h"
#if FP4KIT_LANES == 16 && defined(__AVX512F__)
#include "transpose16_avx512.h"
#define FP4KIT_FGMP_TRANSPOSE16 1  // blocks in and codes out by 16 × 16 transposes
#endif

typedef double F64v __attribute__((vector_size(8 * kLanes)));
typedef int64_t I64v __attribute__((vector_size(8 * kLanes)));

static inline F64v widen(F32v v) { return __builtin_convertvector(v, F64v); }

// std::min(std::max(v, −m), m), the scalar's clamp, lane by lane.
static inline F32v clampSymmetric(F32v v, float m) {
  const F32v low = F32v{} - m, high = F32v{} + m;
  v = v < low ? low : v;    // std::max(v, −m)
  return high < v ? high : v;  // std::min(v, m)
}

// The E2M1 value of a code (sign in bit 3): 0, 0.5, 1, 1.5, 2, 3, 4, 6 (fgmp.cc's table).
static inline F32v e2m1Value(U32v code) {
  const I32v magnitude = (I32v)(code & 7u);
  const F32v m = __builtin_convertvector(magnitude, F32v);
  const F32v v = magnitude < 4 ? m * 0.5f : (magnitude == 7 ? F32v{} + 6.0f : m - 2.0f);
  return (F32v)((U32v)v | ((code & 8u) << 28));
}

// The E4M3 value of a finite code (sign in bit 7): m·2^−9, or (8 + m)·2^(e − 10).
static inline F32v e4m3Value(U32v code) {
  const I32v magnitude = (I32v)(code & 0x7fu), field = magnitude >> 3, mantissa = magnitude & 7;
  const F32v subnormal = __builtin_convertvector(mantissa, F32v) * (1.0f / 512.0f);
  const F32v normal = __builtin_convertvector(mantissa + 8, F32v) * (F32v)((field + (127 - 10)) << 23);
  const F32v v = field == 0 ? subnormal : normal;
  return (F32v)((U32v)v | ((code & 0x80u) << 24));
}

// quantizeFp4Block's codes and values of one element of every lane's block under `total`.
static inline void fp4Element(F32v x, F32v total, U32v& code, F32v& value) {
  const F32v v = clampSymmetric(x / total, 6.0f);
  code = e2m1NearestFromScaled(v, (U32v)v);
  value = e2m1Value(code) * total;
}

// Each lane's FP4 multiplier f32(tensorScale · e4m3[code]) (quantizeFp4Block's `total`).
static inline F32v fp4Totals(const float* e4m3, I32v code, float tensorScale) {
  alignas(64) float value[kLanes];
  for (int l = 0; l < kLanes; l++) value[l] = e4m3[code[l]];
  F32v v;
  std::memcpy(&v, value, sizeof(F32v));
  return tensorScale * v;
}

// One element's term of a float64 weighted sum, the scalar's sum + (w·d)·d; without Fisher weights
// (w = 1, so w·d = d exactly) sum + d·d, the same value with one multiply fewer.
template <bool Weighted>
static inline F64v addWeightedSquare(F64v sum, F64v w, F64v d) {
  if constexpr (Weighted) return sum + (w * d) * d;
  return sum + d * d;
}

template <bool Weighted>
static void fgmpCandidatesLanes(const fp4kit::FgmpArgs& a, int64_t rowBegin, int64_t rowEnd);

static void fgmpCandidatesVector(const fp4kit::FgmpArgs& a, int64_t rowBegin, int64_t rowEnd) {
  if (a.fisher) fgmpCandidatesLanes<true>(a, rowBegin, rowEnd);
  else fgmpCandidatesLanes<false>(a, rowBegin, rowEnd);
}

template <bool Weighted>
static void fgmpCandidatesLanes(const fp4kit::FgmpArgs& a, int64_t rowBegin, int64_t rowEnd) {
  using namespace fp4kit;
  constexpr int B = kFgmpBlock;
  static_assert(B == 16, "16 elements per block");
  // E4M3 values by code, made once (every rows range of every call reads them).
  static const struct E4m3Table {
    float v[256];
    E4m3Table() {
      for (int c = 0; c < 256; c++) v[c] = decodeElement(static_cast<uint32_t>(c), kElementFormats[kE4m3]);
    }
  } table;
  const float* e4m3 = table.v;
  const int64_t blocksPerRow = (a.cols + B - 1) / B;
  alignas(64) float xs[B][kLanes], ws[B][kLanes];
  alignas(64) int32_t laneInt[kLanes];
  alignas(64) uint32_t codes4[B][kLanes], codes8[B][kLanes];
  for (int64_t r = rowBegin; r < rowEnd; r++) {
    for (int64_t j0 = 0; j0 < blocksPerRow; j0 += kLanes) {
      const int lanes = static_cast<int>(std::min<int64_t>(kLanes, blocksPerRow - j0));
      // Lane l holds block j0 + l: its elements (+0 past its count) and their Fisher weights (0).
      const int64_t first = r * a.cols + j0 * B;  // the element of x at block j0's start
      const float* w = a.fisher ? a.fisher + (a.fisherPerElement ? r * a.cols : 0) + j0 * B : nullptr;
      const int64_t rowLeft = a.cols - j0 * B;  // elements of this row from block j0 on
      // Element by element, widened exactly from any dtype (dtype.h): the path of every ISA
      // without the 16 × 16 transposes, and of f16 sources on AVX-512.
      const auto loadElements = [&](float (&dst)[B][kLanes]) {
        for (int l = 0; l < kLanes; l++) {
          const int n = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(B, rowLeft - l * B)));
          for (int i = 0; i < B; i++) dst[i][l] = i < n ? bitsToFloat(loadBits(a.x, a.dtype, first + l * B + i)) : 0.0f;
        }
      };
#if FP4KIT_FGMP_TRANSPOSE16
      const auto loadTransposed = [&](const float* src, float (&dst)[B][kLanes]) {
        __m512i rows[16];
        for (int l = 0; l < 16; l++) {
          const int64_t n = std::max<int64_t>(0, std::min<int64_t>(B, rowLeft - l * B));
          rows[l] = _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1), src + l * B);
        }
        fp4kit::transpose16x16(rows);
        for (int i = 0; i < B; i++) _mm512_store_si512(dst[i], rows[i]);
      };
      // bf16 is float32's top half: widened in the registers (exact). f16 takes the loop below.
      const auto loadTransposedBf16 = [&](const uint16_t* src, float (&dst)[B][kLanes]) {
        __m512i rows[16];
        for (int l = 0; l < 16; l++) {
          const int64_t n = std::max<int64_t>(0, std::min<int64_t>(B, rowLeft - l * B));
          rows[l] = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << n) - 1), src + l * B)), 16);
        }
        fp4kit::transpose16x16(rows);
        for (int i = 0; i < B; i++) _mm512_store_si512(dst[i], rows[i]);
      };
      if (a.dtype == kF32) loadTransposed(static_cast<const float*>(a.x) + first, xs);
      else if (a.dtype == kBf16) loadTransposedBf16(static_cast<const uint16_t*>(a.x) + first, xs);
      else loadElements(xs);
      if (w) loadTransposed(w, ws);
#else
      loadElements(xs);
      for (int l = 0; l < kLanes; l++) {
        const int n = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(B, rowLeft - l * B)));
        for (int i = 0; i < B; i++) ws[i][l] = i < n && w ? w[l * B + i] : 0.0f;
      }
#endif
      F32v X[B];
      F64v XD[B], W[B];  // x widened once for the clipping search's nine passes
      F32v amax = F32v{};
      for (int i = 0; i < B; i++) {
        std::memcpy(&X[i], xs[i], sizeof(F32v));
        XD[i] = widen(X[i]);
        F32v wi;
        std::memcpy(&wi, ws[i], sizeof(F32v));
        W[i] = Weighted ? widen(wi) : F64v{} + 1.0;
        const F32v magnitude = (F32v)((U32v)X[i] & 0x7fffffffu);
        amax = amax < magnitude ? magnitude : amax;  // std::max(amax, |x|)
      }
      // The recipe's scale code per block (one per lane: scalar).
      I32v chosen;
      for (int l = 0; l < kLanes; l++)
        chosen[l] = encodeElementBits(floatToBits(nvfp4ScaledBlockScale(amax[l], a.tensorScale)), kElementFormats[kE4m3], -1);
      if (a.clipping) {
        // clippedScaleCode: codes from the recipe's down to half its value, the least error first
        // found (ties keep the larger scale). At most 9 codes (8 per binade, both ends).
        const I32v base = chosen;
        F32v floor;
        for (int l = 0; l < kLanes; l++) floor[l] = e4m3[base[l]] * 0.5f;  // exact: halving a normal float
        F64v bestError = F64v{} + INFINITY;
        for (int step = 0; step <= 8; step++) {
          const I32v code = base - step;
          I64v valid;
          bool any = false;
          for (int l = 0; l < kLanes; l++) {
            const bool ok = code[l] >= 1 && e4m3[code[l] >= 1 ? code[l] : 0] >= floor[l];
            valid[l] = ok ? -1 : 0;
            any |= ok;
          }
          if (!any) break;
          const F32v total = fp4Totals(e4m3, code < 1 ? I32v{} + 1 : code, a.tensorScale);  // lanes past their codes: any value
          // Every element, also past a block's count: there x = +0 gives q = +0 and a term of ±0,
          // which leaves the sum as it is (it starts at +0 and never becomes −0) — the scalar's
          // sum over the count alone, without a mask.
          F64v error = F64v{};
          for (int i = 0; i < B; i++) {
            U32v c;
            F32v q;
            fp4Element(X[i], total, c, q);
            error = addWeightedSquare<Weighted>(error, W[i], XD[i] - widen(q));
          }
          const I64v better = valid & (error < bestError);
          bestError = better ? error : bestError;
          chosen = __builtin_convertvector(better, I32v) ? code : chosen;
        }
      }
      // Both encodings of every element, and the impact of choosing FP4.
      const F32v total = fp4Totals(e4m3, chosen, a.tensorScale);
      F64v impact = F64v{};
      // Past a block's count x = +0: both codes 0 (the scalar's), a term of ±0 (see above).
      for (int i = 0; i < B; i++) {
        U32v c4;
        F32v q4;
        fp4Element(X[i], total, c4, q4);
        const F32v v8 = clampSymmetric(X[i] / a.fp8Scale, 448.0f);
        const U32v c8 = floatNearestFromScaled<kE4m3>(v8, (U32v)v8);
        const F32v q8 = e4m3Value(c8) * a.fp8Scale;
        std::memcpy(codes4[i], &c4, sizeof(U32v));
        std::memcpy(codes8[i], &c8, sizeof(U32v));
        impact = addWeightedSquare<Weighted>(impact, W[i], widen(q4) - widen(q8));
      }
      std::memcpy(laneInt, &chosen, sizeof(I32v));
      const int64_t b0 = r * blocksPerRow + j0;
      for (int l = 0; l < lanes; l++) {
        a.fp4Scales[b0 + l] = static_cast<uint8_t>(laneInt[l]);
        a.impacts[b0 + l] = impact[l];
      }
#if FP4KIT_FGMP_TRANSPOSE16
      const auto storeTransposed = [&](uint32_t (&src)[B][kLanes], uint8_t* dst) {
        __m512i rows[16];
        for (int i = 0; i < 16; i++) rows[i] = _mm512_load_si512(src[i]);
        fp4kit::transpose16x16(rows);
        for (int l = 0; l < lanes; l++) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (b0 + l) * B), _mm512_cvtepi32_epi8(rows[l]));
      };
      storeTransposed(codes4, a.fp4Codes);
      storeTransposed(codes8, a.fp8Codes);
#else
      for (int l = 0; l < lanes; l++) {
        for (int i = 0; i < B; i++) {
          a.fp4Codes[(b0 + l) * B + i] = static_cast<uint8_t>(codes4[i][l]);
          a.fp8Codes[(b0 + l) * B + i] = static_cast<uint8_t>(codes8[i][l]);
        }
      }
#endif
    }
  }
}
