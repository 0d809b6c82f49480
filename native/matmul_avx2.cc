// AVX2 fast path of the block matmul (built with -mavx2): the AVX-512 kernel's twin with 8-lane
// vectors. A tile's 16 columns are two 8-lane halves; u8×s8 dot products of 4 come from
// vpmaddubsw (pairs, no saturation: |(2w+12)·k| ≤ 24·127) followed by vpmaddwd with ones.
#include <immintrin.h>

#include <algorithm>

#include "matmul.h"

namespace fp4kit {
namespace {

constexpr int kRowsPerStep = 4;
constexpr int kHalves = 2;  // 16 lanes of a tile = 2 × 8

inline __m256i e2m1Lut() {
  const __m128i t = _mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
  return _mm256_broadcastsi128_si256(t);
}

inline __m256i dot4(__m256i acc, __m256i bU8, __m256i aS8) {
  const __m256i pairs = _mm256_maddubs_epi16(bU8, aS8);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// 8 E4M3 codes (one per lane) → signed int32 multiples of 2^-9.
inline __m256i e4m3ToInt(__m128i codes8) {
  const __m256i c = _mm256_cvtepu8_epi32(codes8);
  const __m256i mag = _mm256_and_si256(c, _mm256_set1_epi32(0x7f));
  const __m256i exponent = _mm256_srli_epi32(mag, 3);
  const __m256i mantissa = _mm256_and_si256(mag, _mm256_set1_epi32(7));
  const __m256i normal = _mm256_sllv_epi32(_mm256_or_si256(mantissa, _mm256_set1_epi32(8)),
                                           _mm256_sub_epi32(exponent, _mm256_set1_epi32(1)));
  const __m256i subnormal = _mm256_cmpeq_epi32(exponent, _mm256_setzero_si256());
  const __m256i v = _mm256_blendv_epi8(normal, mantissa, subnormal);
  const __m256i negative = _mm256_cmpeq_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), _mm256_set1_epi32(0x80));
  return _mm256_blendv_epi8(v, _mm256_sub_epi32(_mm256_setzero_si256(), v), negative);
}

inline int32_t load4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

template <int Rows>
void step(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile, int64_t m0) {
  const __m256i lowNibble = _mm256_set1_epi8(0x0f);
  const __m256i lut = e2m1Lut();
  const __m256 unitScale = _mm256_set1_ps(1.0f / 32768.0f);
  const int64_t aBlocksPerRow = a.paddedK / 32;
  const int64_t groupsPerUnit = b.unit / 8;
  __m256 acc[Rows][kHalves];
  for (int r = 0; r < Rows; r++)
    for (int h = 0; h < kHalves; h++) acc[r][h] = _mm256_setzero_ps();
  for (int64_t j = 0; j < b.units; j++) {
    __m256i dot[Rows][kHalves];
    for (int r = 0; r < Rows; r++)
      for (int h = 0; h < kHalves; h++) dot[r][h] = _mm256_setzero_si256();
    for (int64_t g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
      __m256i lo[kHalves], hi[kHalves];
      for (int h = 0; h < kHalves; h++) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.nibbles.data() + (tile * b.kGroups + g) * 64 + 32 * h));
        lo[h] = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, lowNibble));
        hi[h] = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), lowNibble));
      }
      for (int r = 0; r < Rows; r++) {
        const int8_t* ar = a.codes + (m0 + r) * a.paddedK + g * 8;
        const __m256i a0 = _mm256_set1_epi32(load4(ar));
        const __m256i a1 = _mm256_set1_epi32(load4(ar + 4));
        for (int h = 0; h < kHalves; h++) {
          dot[r][h] = dot4(dot[r][h], lo[h], a0);
          dot[r][h] = dot4(dot[r][h], hi[h], a1);
        }
      }
    }
    for (int r = 0; r < Rows; r++) {
      const __m256i bias12 = _mm256_set1_epi32(12 * a.unitSums[static_cast<size_t>((m0 + r) * a.units + j)]);
      for (int h = 0; h < kHalves; h++) dot[r][h] = _mm256_slli_epi32(_mm256_sub_epi32(dot[r][h], bias12), 8);
    }
    if (b.hasFp8 && b.fp8Lanes[static_cast<size_t>(tile * b.units + j)] != 0) {
      const uint8_t* codes = b.fp8Codes.data() + (tile * b.units + j) * b.unit * kTileColumns;
      for (int64_t i = 0; i < b.unit; i++) {
        for (int h = 0; h < kHalves; h++) {
          const __m256i e = e4m3ToInt(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i * kTileColumns + 8 * h)));
          for (int r = 0; r < Rows; r++) {
            const int32_t k = a.codes[(m0 + r) * a.paddedK + j * b.unit + i];
            dot[r][h] = _mm256_add_epi32(dot[r][h], _mm256_mullo_epi32(e, _mm256_set1_epi32(k)));
          }
        }
      }
    }
    for (int h = 0; h < kHalves; h++) {
      const __m256 sb = _mm256_loadu_ps(b.scales.data() + (tile * b.units + j) * kTileColumns + 8 * h);
      for (int r = 0; r < Rows; r++) {
        const __m256 d = _mm256_mul_ps(_mm256_cvtepi32_ps(dot[r][h]), unitScale);
        const __m256 s = _mm256_mul_ps(_mm256_set1_ps(a.blockScales[(m0 + r) * aBlocksPerRow + (j * b.unit) / 32]), sb);
        acc[r][h] = _mm256_add_ps(acc[r][h], _mm256_mul_ps(d, s));
      }
    }
  }
  const int64_t col0 = tile * kTileColumns;
  const int lanes = static_cast<int>(std::min<int64_t>(kTileColumns, b.n - col0));
  for (int r = 0; r < Rows; r++) {
    alignas(32) float lane[kTileColumns];
    for (int h = 0; h < kHalves; h++) _mm256_store_ps(lane + 8 * h, acc[r][h]);
    float* o = out + (m0 + r) * b.n + col0;
    for (int l = 0; l < lanes; l++) o[l] = bias ? lane[l] + bias[col0 + l] : lane[l];
  }
}

}  // namespace

void matmulFp4Int8Avx2(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                       int64_t tileBegin, int64_t tileEnd) {
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    int64_t m = 0;
    for (; m + kRowsPerStep <= a.rows; m += kRowsPerStep) step<kRowsPerStep>(a, b, bias, out, tile, m);
    for (; m < a.rows; m++) step<1>(a, b, bias, out, tile, m);
  }
}

}  // namespace fp4kit
