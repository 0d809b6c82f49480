// What the AVX-512 integer kernels share (FP4 tiles: matmul_avx512_kernel.h; byte planes:
// matmul_planes_avx512.cc, matmul_planes_avx512_vbmi.cc): the activation loads, the fast-scales row
// test and the float steps of the defined order (matmul.h) for 16 output columns at once. Internal
// linkage, so each file compiles its own copy with its own flags.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "matmul.h"
#include "matmul_planes.h"

namespace fp4kit {
namespace {

// Four consecutive activation codes as one dword (the s8 operand of vpdpbusd, to broadcast).
inline int32_t load4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// A prefetch into L1 for one-row steps (decode), which stream every weight byte once. It may point
// past the end of an array (a prefetch never faults); the address is formed as an integer so no
// out-of-range pointer is ever computed.
inline void prefetchAt(const void* base, int64_t byteOffset) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(byteOffset)), _MM_HINT_T0);
}

// Rows [m0, m0 + Rows) may all take the fast-scales epilogue (matmul.h).
template <int Rows>
inline bool rowsTakeFastScales(const Int8Activations& a, int64_t m0) {
  bool fast = true;
  for (int r = 0; r < Rows; r++) fast = fast && a.fastScaleRow[static_cast<size_t>(m0 + r)];
  return fast;
}

// acc + f32(f32(D)·S) for one activation row and unit, D = dot·2^-u (unitScale), S = f32(sa·sb);
// with FastScales, the same float by matmul.h's identity: S' = 2^(e − u)·sb by an exponent add,
// then f32(dot·S').
template <bool FastScales>
inline __m512 addUnitWith(__m512 acc, __m512i dot, __m512 sb, int32_t exponentShift, float blockScale, __m512 unitScale) {
  if (FastScales) {
    const __m512 s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(sb), _mm512_set1_epi32(exponentShift)));
    return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(dot), s));
  }
  const __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), unitScale);
  const __m512 s = _mm512_mul_ps(_mm512_set1_ps(blockScale), sb);
  return _mm512_add_ps(acc, _mm512_mul_ps(d, s));
}

// The same for activation row `row` of a, block aBlock.
template <bool FastScales>
inline __m512 addUnit(__m512 acc, __m512i dot, __m512 sb, const Int8Activations& a, int64_t row, int64_t aBlock, __m512 unitScale) {
  const int64_t at = row * (a.paddedK / 32) + aBlock;
  return FastScales ? addUnitWith<true>(acc, dot, sb, a.exponentShift[static_cast<size_t>(at)], 0.0f, unitScale)
                    : addUnitWith<false>(acc, dot, sb, 0, a.blockScales[at], unitScale);
}

// Byte planes (matmul_planes.h): one unit's P dot chains of a row and tile — plane 0 starting at
// −offset·Σk, the offset's share, the others at 0 — and their sum Σp 256^p·dot_p, all modulo 2^32,
// which is the true dot.
template <int P>
inline void startPlaneChains(__m512i (&dot)[P], int32_t offset, int32_t unitSum) {
  const uint32_t fix = static_cast<uint32_t>(offset) * static_cast<uint32_t>(unitSum);
  dot[0] = _mm512_set1_epi32(static_cast<int32_t>(0u - fix));
  for (int p = 1; p < P; p++) dot[p] = _mm512_setzero_si512();
}

// Lane multipliers of `tiles` tiles, units [unitBegin, unitEnd), decoded once into a per-thread float
// buffer laid out [t][units][16] (load(t, j): tile t's unit j, 16 lanes): many-row steps read each
// tile-unit's multipliers once per step, so a compact storage decoded there is decoded per step.
template <class Load>
const float* laneScalesAsFloats(int64_t tiles, int64_t units, int64_t unitBegin, int64_t unitEnd, Load load) {
  thread_local std::vector<float> buffer;
  buffer.resize(static_cast<size_t>(tiles * units * kTileColumns));
  for (int64_t t = 0; t < tiles; t++)
    for (int64_t j = unitBegin; j < unitEnd; j++) _mm512_storeu_ps(buffer.data() + (t * units + j) * kTileColumns, load(t, j));
  return buffer.data();
}

// 16 E8M0 codes' multipliers as the compact storages hold them (compactE8m0Multiplier, matmul.h).
inline __m512 compactE8m0Multipliers16(__m128i codes) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu8_epi32(codes), 23)); }

// The 16 lane multipliers of byte-plane weights' tile-unit in either storage (matmul_planes.h's
// laneScale, 16 at once): E8M0 codes shifted into the exponent field; E4M3 codes as binary16 (code
// << 7 is e4m3 · 2^-8, converted exactly) times tensorScale · 2^8, the lanes with bit 7 set
// otherScale; or the floats.
inline __m512 loadPlaneLaneScales(const PackedPlaneWeights& b, int64_t tileUnit) {
  if (b.scaleStorage == ScaleStorage::Float32) return _mm512_loadu_ps(b.scales.data() + tileUnit * kTileColumns);
  const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.compactScales.data() + tileUnit * kTileColumns));
  if (b.scaleStorage == ScaleStorage::E8m0) return compactE8m0Multipliers16(codes);
  const __m512 fp4 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(codes), 7)), _mm512_set1_ps(b.tensorScale * 256.0f));
  return _mm512_mask_blend_ps(_mm_movepi8_mask(codes), fp4, _mm512_set1_ps(b.otherScale));
}

// The multipliers 16 tile-units past this one into L1 (one-row steps stream them with the weights).
inline void prefetchPlaneLaneScales(const PackedPlaneWeights& b, int64_t tileUnit) {
  if (b.scaleStorage == ScaleStorage::Float32) prefetchAt(b.scales.data(), (tileUnit + 16) * kTileColumns * 4);
  else prefetchAt(b.compactScales.data(), (tileUnit + 16) * kTileColumns);
}

template <int P>
inline __m512i combinePlanes(const __m512i (&dot)[P]) {
  __m512i d = dot[0];
  for (int p = 1; p < P; p++) d = _mm512_add_epi32(d, _mm512_slli_epi32(dot[p], 8 * p));
  return d;
}

// Split weights (lowShift s > 0): 2^s · Σp 256^p·dot_p, the low bits' dot still to add.
template <int P>
inline __m512i combineShiftedPlanes(const __m512i (&dot)[P], int lowShift) {
  // Shifts distribute over sums modulo 2^32: one shift by a run-time count instead of P.
  return _mm512_sll_epi32(combinePlanes<P>(dot), _mm_cvtsi32_si128(lowShift));
}

// out[m0 + r][tile (tile0 + t)'s columns] = acc[r][t] (+ bias), the columns past n masked off.
template <int Rows, int Tiles>
inline void storeTiles(__m512 (&acc)[Rows][Tiles], const float* bias, float* out, int64_t n, int64_t tile0, int64_t m0) {
  for (int t = 0; t < Tiles; t++) {
    const int64_t col0 = (tile0 + t) * kTileColumns;
    const int lanes = static_cast<int>(std::min<int64_t>(kTileColumns, n - col0));
    if (lanes <= 0) continue;
    const __mmask16 valid = static_cast<__mmask16>((1u << lanes) - 1);
    for (int r = 0; r < Rows; r++) {
      __m512 v = acc[r][t];
      if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(valid, bias + col0));
      _mm512_mask_storeu_ps(out + (m0 + r) * n + col0, valid, v);
    }
  }
}

}  // namespace
}  // namespace fp4kit
