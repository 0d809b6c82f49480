// AVX-512 VNNI fast path of the block matmul (built with -mavx512f -mavx512bw -mavx512vnni).
// Same integer dot products and the same float32 steps, lane by lane, as matmulFp4Int8Scalar:
// each of the 16 lanes of a vector is one output column, so lanes never mix their sums.
#include <immintrin.h>

#include <algorithm>

#include "matmul.h"

namespace fp4kit {
namespace {

constexpr int kRowsPerStep = 4;

// E2M1 code → (2w + 12), an unsigned byte for vpdpbusd; the +12 is removed with 12·Σk per unit.
inline __m512i e2m1Lut() {
  const __m128i t = _mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
  return _mm512_broadcast_i32x4(t);
}

// 16 E4M3 codes (one per lane) → signed int32 multiples of 2^-9.
inline __m512i e4m3ToInt(__m128i codes) {
  const __m512i c = _mm512_cvtepu8_epi32(codes);
  const __m512i mag = _mm512_and_si512(c, _mm512_set1_epi32(0x7f));
  const __m512i exponent = _mm512_srli_epi32(mag, 3);
  const __m512i mantissa = _mm512_and_si512(mag, _mm512_set1_epi32(7));
  const __m512i normal = _mm512_sllv_epi32(_mm512_or_si512(mantissa, _mm512_set1_epi32(8)),
                                           _mm512_sub_epi32(exponent, _mm512_set1_epi32(1)));
  const __mmask16 subnormal = _mm512_cmpeq_epi32_mask(exponent, _mm512_setzero_si512());
  const __m512i v = _mm512_mask_blend_epi32(subnormal, normal, mantissa);
  const __mmask16 negative = _mm512_test_epi32_mask(c, _mm512_set1_epi32(0x80));
  return _mm512_mask_sub_epi32(v, negative, _mm512_setzero_si512(), v);
}

inline int32_t load4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// Rows × Tiles independent accumulator chains: enough parallel dot products to hide the
// dpbusd latency both for many rows (prefill) and for one row (decode, where Tiles carries it).
template <int Rows, int Tiles>
void step(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile0,
          int64_t m0) {
  const __m512i lowNibble = _mm512_set1_epi8(0x0f);
  const __m512i lut = e2m1Lut();
  const __m512 unitScale = _mm512_set1_ps(1.0f / 32768.0f);
  const int64_t aBlocksPerRow = a.paddedK / 32;
  const int64_t groupsPerUnit = b.unit / 8;
  __m512 acc[Rows][Tiles];
  for (int r = 0; r < Rows; r++)
    for (int t = 0; t < Tiles; t++) acc[r][t] = _mm512_setzero_ps();
  for (int64_t j = 0; j < b.units; j++) {
    __m512i dot[Rows][Tiles];
    for (int r = 0; r < Rows; r++)
      for (int t = 0; t < Tiles; t++) dot[r][t] = _mm512_setzero_si512();
    for (int64_t g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
      __m512i lo[Tiles], hi[Tiles];
      for (int t = 0; t < Tiles; t++) {
        const __m512i v = _mm512_loadu_si512(b.nibbles.data() + ((tile0 + t) * b.kGroups + g) * 64);
        lo[t] = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, lowNibble));
        hi[t] = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), lowNibble));
      }
      for (int r = 0; r < Rows; r++) {
        const int8_t* ar = a.codes + (m0 + r) * a.paddedK + g * 8;
        const __m512i a0 = _mm512_set1_epi32(load4(ar));
        const __m512i a1 = _mm512_set1_epi32(load4(ar + 4));
        for (int t = 0; t < Tiles; t++) {
          dot[r][t] = _mm512_dpbusd_epi32(dot[r][t], lo[t], a0);
          dot[r][t] = _mm512_dpbusd_epi32(dot[r][t], hi[t], a1);
        }
      }
    }
    for (int r = 0; r < Rows; r++) {
      const __m512i bias12 = _mm512_set1_epi32(12 * a.unitSums[static_cast<size_t>((m0 + r) * a.units + j)]);
      for (int t = 0; t < Tiles; t++) dot[r][t] = _mm512_slli_epi32(_mm512_sub_epi32(dot[r][t], bias12), 8);
    }
    for (int t = 0; t < Tiles; t++) {
      const int64_t tile = tile0 + t;
      if (!b.hasFp8 || b.fp8Lanes[static_cast<size_t>(tile * b.units + j)] == 0) continue;
      const uint8_t* codes = b.fp8Codes.data() + (tile * b.units + j) * b.unit * kTileColumns;
      for (int64_t i = 0; i < b.unit; i++) {
        const __m512i e = e4m3ToInt(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i * kTileColumns)));
        for (int r = 0; r < Rows; r++) {
          const int32_t k = a.codes[(m0 + r) * a.paddedK + j * b.unit + i];
          dot[r][t] = _mm512_add_epi32(dot[r][t], _mm512_mullo_epi32(e, _mm512_set1_epi32(k)));
        }
      }
    }
    for (int t = 0; t < Tiles; t++) {
      const __m512 sb = _mm512_loadu_ps(b.scales.data() + ((tile0 + t) * b.units + j) * kTileColumns);
      for (int r = 0; r < Rows; r++) {
        const __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(dot[r][t]), unitScale);
        const __m512 s = _mm512_mul_ps(_mm512_set1_ps(a.blockScales[(m0 + r) * aBlocksPerRow + (j * b.unit) / 32]), sb);
        acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_mul_ps(d, s));
      }
    }
  }
  for (int t = 0; t < Tiles; t++) {
    const int64_t col0 = (tile0 + t) * kTileColumns;
    const int lanes = static_cast<int>(std::min<int64_t>(kTileColumns, b.n - col0));
    if (lanes <= 0) continue;
    const __mmask16 valid = static_cast<__mmask16>((1u << lanes) - 1);
    for (int r = 0; r < Rows; r++) {
      __m512 v = acc[r][t];
      if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(valid, bias + col0));
      _mm512_mask_storeu_ps(out + (m0 + r) * b.n + col0, valid, v);
    }
  }
}

template <int Tiles>
void tilesStep(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile0) {
  int64_t m = 0;
  for (; m + kRowsPerStep <= a.rows; m += kRowsPerStep) step<kRowsPerStep, Tiles>(a, b, bias, out, tile0, m);
  for (; m < a.rows; m++) step<1, Tiles>(a, b, bias, out, tile0, m);  // exactly this call's tiles
}

}  // namespace

void matmulFp4Int8Avx512(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd) {
  int64_t tile = tileBegin;
  if (a.rows < kRowsPerStep) {
    // Few rows (decode): four tiles at a time keep four independent accumulator chains per row.
    for (; tile + 4 <= tileEnd; tile += 4) {
      for (int64_t m = 0; m < a.rows; m++) step<1, 4>(a, b, bias, out, tile, m);
    }
  } else {
    for (; tile + 2 <= tileEnd; tile += 2) tilesStep<2>(a, b, bias, out, tile);
  }
  for (; tile < tileEnd; tile++) tilesStep<1>(a, b, bias, out, tile);
}

}  // namespace fp4kit
