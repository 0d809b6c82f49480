// AVX2 fast path of the block matmul (built with -mavx2): the AVX-512 kernel's twin with 8-lane
// vectors. A tile's 16 columns are two 8-lane halves; u8×s8 dot products of 4 come from
// vpmaddubsw (pairs, no saturation: |(2w+12)·k| ≤ 24·127) followed by vpmaddwd with ones. FGMP
// FP8 planes (bytes up to 255, see dot4Wide) run over each tile's consecutive FP8 slots and are
// permuted into the lanes.
#include <immintrin.h>

#include <algorithm>

#include "matmul.h"
#include "matmul_avx2_shared.h"

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

// u8 × s8 dot products of 4 for bytes up to 255: vpmaddubsw would saturate a pair of 255·(−128),
// so the top bit goes separately (pairs of 128·k stay within [−32768, 32512]).
inline __m256i dot4Wide(__m256i acc, __m256i bU8, __m256i aS8) {
  acc = dot4(acc, _mm256_and_si256(bU8, _mm256_set1_epi8(0x7f)), aS8);
  return dot4(acc, _mm256_and_si256(bU8, _mm256_set1_epi8(static_cast<char>(0x80))), aS8);
}

// Placing slots into the lanes of an 8-bit mask: per mask value, each lane's rank among the set
// lanes (a vpermd index) and a keep mask.
struct ExpandTables {
  alignas(32) int32_t index[256][8];
  alignas(32) int32_t keep[256][8];
  ExpandTables() {
    for (int m = 0; m < 256; m++) {
      int rank = 0;
      for (int l = 0; l < 8; l++) {
        const bool set = (m >> l) & 1;
        index[m][l] = set ? rank : 0;
        keep[m][l] = set ? -1 : 0;
        rank += set;
      }
    }
  }
};
const ExpandTables& expandTables() {
  static const ExpandTables tables;
  return tables;
}

inline int32_t load4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

template <int Rows, bool FastScales>
void step(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile, int64_t m0) {
  const __m256i lowNibble = _mm256_set1_epi8(0x0f);
  const __m256i lut = e2m1Lut();
  const __m256 unitScale = _mm256_set1_ps(b.hasFp8 ? 1.0f / 32768.0f : 1.0f / 128.0f);  // 2^-unitShift
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
      for (int h = 0; h < kHalves; h++) {
        dot[r][h] = _mm256_sub_epi32(dot[r][h], bias12);
        if (b.hasFp8) dot[r][h] = _mm256_slli_epi32(dot[r][h], 8);  // line up with the FP8 lanes' 2^-15
      }
    }
    if (b.hasFp8 && b.fp8Lanes[static_cast<size_t>(tile * b.units + j)] != 0) {
      // FP8 lanes: x already rode in the nibbles; add Σk·A + 2048·Σk·B − kFp8Bias·Σk (matmul.h),
      // computed over this tile's consecutive slots (8 per vector; ~5 FP8 lanes in a typical
      // tile, so usually one vector, not two halves) and permuted into the lanes.
      const ExpandTables& x = expandTables();
      const unsigned lanes = b.fp8Lanes[static_cast<size_t>(tile * b.units + j)];
      const Fp8Place place = fp8Place(b, tile * b.units + j);
      const int count = __builtin_popcount(lanes), low = __builtin_popcount(lanes & 0xff);
      const int vectors = (count + 7) / 8;
      const int64_t stride = 4 * place.span;
      const uint8_t* group = b.fp8Planes.data() + place.offset;
      uint32_t present[4];
      const uint8_t* planeA[4];  // each q's nonzero A dwords
      planeA[0] = group + 8 + 4 * stride;
      for (int q = 0; q < 4; q++) {
        present[q] = group[2 * q] | (group[2 * q + 1] << 8);
        if (q < 3) planeA[q + 1] = planeA[q] + 4 * __builtin_popcount(present[q]);
      }
      __m256i comb[Rows][2];
      for (int v = 0; v < vectors; v++) {
        const int base = place.first + 8 * v;  // this vector's first slot
        __m256i pa[4], pb[4];  // unit 16: four groups of 4 k (FGMP only); reads stay in the padding
        for (int q = 0; q < 4; q++) {
          pb[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group + 8 + q * stride + 4 * base));
          const unsigned m8 = (present[q] >> base) & 0xff;
          const uint8_t* src = planeA[q] + 4 * __builtin_popcount(present[q] & ((1u << base) - 1));
          const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
          pa[q] = _mm256_and_si256(_mm256_permutevar8x32_epi32(raw, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.index[m8]))),
                                   _mm256_load_si256(reinterpret_cast<const __m256i*>(x.keep[m8])));
        }
        for (int r = 0; r < Rows; r++) {
          const int8_t* ar = a.codes + (m0 + r) * a.paddedK + j * 16;
          __m256i da = _mm256_setzero_si256(), db = _mm256_setzero_si256();
          for (int q = 0; q < 4; q++) {
            const __m256i av = _mm256_set1_epi32(load4(ar + 4 * q));
            da = dot4Wide(da, pa[q], av);
            db = dot4Wide(db, pb[q], av);
          }
          const __m256i fix = _mm256_set1_epi32(kFp8Bias * a.unitSums[static_cast<size_t>((m0 + r) * a.units + j)]);
          comb[r][v] = _mm256_sub_epi32(_mm256_add_epi32(da, _mm256_slli_epi32(db, kFp8HighShift)), fix);
        }
      }
      for (int h = 0; h < kHalves; h++) {
        const unsigned half = (lanes >> (8 * h)) & 0xff;
        if (half == 0) continue;
        // Lane l of this half takes slot rank(l) (+ the low half's count for the high half).
        const __m256i slot = _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(x.index[half])), _mm256_set1_epi32(h ? low : 0));
        const __m256i keep = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.keep[half]));
        const __m256i second = _mm256_cmpgt_epi32(slot, _mm256_set1_epi32(7));
        for (int r = 0; r < Rows; r++) {
          __m256i val = _mm256_permutevar8x32_epi32(comb[r][0], slot);
          if (vectors > 1) val = _mm256_blendv_epi8(val, _mm256_permutevar8x32_epi32(comb[r][1], slot), second);
          dot[r][h] = _mm256_add_epi32(dot[r][h], _mm256_and_si256(val, keep));
        }
      }
    }
    for (int h = 0; h < kHalves; h++) {
      const __m256 sb = _mm256_loadu_ps(b.scales.data() + (tile * b.units + j) * kTileColumns + 8 * h);
      for (int r = 0; r < Rows; r++) {
        const int64_t aBlock = (m0 + r) * aBlocksPerRow + (j * b.unit) / 32;
        if (FastScales) {
          // S' = 2^(e − unitShift)·sb by an exponent add; partial = f32(dot · S') (matmul.h).
          const __m256i shift = _mm256_set1_epi32(a.exponentShift[static_cast<size_t>(aBlock)]);
          const __m256 s = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(sb), shift));
          acc[r][h] = _mm256_add_ps(acc[r][h], _mm256_mul_ps(_mm256_cvtepi32_ps(dot[r][h]), s));
        } else {
          const __m256 d = _mm256_mul_ps(_mm256_cvtepi32_ps(dot[r][h]), unitScale);
          const __m256 s = _mm256_mul_ps(_mm256_set1_ps(a.blockScales[aBlock]), sb);
          acc[r][h] = _mm256_add_ps(acc[r][h], _mm256_mul_ps(d, s));
        }
      }
    }
  }
  storeTileRows<Rows>(acc, bias, out, b.n, tile, m0);
}

// Rows [m0, m0 + Rows), with the fast-scales epilogue when every one of them qualifies.
template <int Rows>
void rowsStep(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile, int64_t m0) {
  bool fast = true;
  for (int r = 0; r < Rows; r++) fast = fast && a.fastScaleRow[static_cast<size_t>(m0 + r)];
  if (fast) step<Rows, true>(a, b, bias, out, tile, m0);
  else step<Rows, false>(a, b, bias, out, tile, m0);
}

}  // namespace

void matmulFp4Int8Avx2(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                       int64_t tileBegin, int64_t tileEnd) {
  if (b.scaleStorage != ScaleStorage::Float32) {  // not made for this kernel (readsCompactScales = false)
    matmulFp4Int8Scalar(a, b, bias, out, tileBegin, tileEnd);
    return;
  }
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    int64_t m = 0;
    for (; m + kRowsPerStep <= a.rows; m += kRowsPerStep) rowsStep<kRowsPerStep>(a, b, bias, out, tile, m);
    for (; m < a.rows; m++) rowsStep<1>(a, b, bias, out, tile, m);
  }
}

}  // namespace fp4kit
