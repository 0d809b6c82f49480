// AVX2 fast path of the block matmul (built with -mavx2): the AVX-512 kernel's twin with 8-lane
// vectors. A tile's 16 columns are two 8-lane halves. The u8×s8 products come from vpmaddubsw
// (weights as 2w + 12 ∈ [0, 24], int8 activation codes), whose int16 pair sums are summed in int16
// over the whole unit before one vpmaddwd with ones widens them (see unitStarts for the bound);
// FGMP FP8 planes (bytes up to 255, see dot4Wide) run over each tile's consecutive FP8 slots and are
// permuted into the lanes.
#include <immintrin.h>

#include <algorithm>
#include <vector>

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

// The int16 chains of the E2M1 dot products. In a lane's dword, vpmaddubsw's int16 element 0 sums
// the products of k ≡ 0, 1 (mod 4) and element 1 those of k ≡ 2, 3 (the nibble layout, matmul.h),
// each product (2w + 12)·a with 2w + 12 ∈ [0, 24] and a ∈ [−128, 127], so a pair never saturates
// (|pair| ≤ 2·24·128 = 6144). A unit's element chain starts at −12·Σa over the element's k and adds
// its pairs in int16 (vpaddw): after any number of pairs it holds Σ 2w·a over the k added so far
// − 12·Σa over the k still to come, |·| ≤ (unit/2)·12·128 = 24576 < 2^15 for a unit of 32 (12288
// for 16), so nothing ever wraps, and it ends as the exact Σ 2w·a with the +12 removed. One vpmaddwd
// with ones then adds the two elements into the unit's int32 dot: 2 vpmaddubsw + 2 vpaddw per 8 k
// and lane instead of 2 vpmaddubsw + 2 vpmaddwd + 2 vpaddd, and no −12·Σk per unit afterwards.
// (Not so for FGMP's FP8 planes: bytes up to 255 make pairs up to 2·255·128, see dot4Wide.) The
// start per row and unit is this dword (element 0 low, element 1 high).
void unitStarts(const Int8Activations& a, int64_t unit, int64_t units, std::vector<int32_t>& out) {
  out.resize(static_cast<size_t>(a.rows * units));
  for (int64_t m = 0; m < a.rows; m++) {
    const int8_t* row = a.codes + m * a.paddedK;
    for (int64_t j = 0; j < units; j++) {
      int32_t low = 0, high = 0;
      for (int64_t i = 0; i < unit; i += 4) {
        low += row[j * unit + i] + row[j * unit + i + 1];
        high += row[j * unit + i + 2] + row[j * unit + i + 3];
      }
      const uint32_t lo16 = static_cast<uint16_t>(-12 * low), hi16 = static_cast<uint16_t>(-12 * high);
      out[static_cast<size_t>(m * units + j)] = static_cast<int32_t>(lo16 | hi16 << 16);
    }
  }
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

// FGMP FP8 lanes of one tile-unit: x already rode in the nibbles; add Σk·A + 2048·Σk·B −
// kFp8Bias·Σk (matmul.h), computed over this tile's consecutive slots (8 per vector; ~5 FP8 lanes
// in a typical tile, so usually one vector, not two halves) and permuted into the lanes.
template <int Rows>
inline void addFp8Lanes(const Int8Activations& a, const PackedFp4Weights& b, int64_t tile, int64_t j, int64_t m0, __m256i (&dot)[Rows][kHalves]) {
  const unsigned lanes = b.fp8Lanes[static_cast<size_t>(tile * b.units + j)];
  if (lanes == 0) return;
  const ExpandTables& x = expandTables();
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

// Rows × Tiles tiles at once, units of 8·Groups k. starts: unitStarts of a.
template <int Rows, int Tiles, int Groups, bool HasFp8, bool FastScales>
void step(const Int8Activations& a, const int32_t* starts, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile0, int64_t m0) {
  const __m256i lowNibble = _mm256_set1_epi8(0x0f);
  const __m256i lut = e2m1Lut();
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256 unitScale = _mm256_set1_ps(HasFp8 ? 1.0f / 32768.0f : 1.0f / 128.0f);  // 2^-unitShift
  const int64_t aBlocksPerRow = a.paddedK / 32;
  constexpr int64_t unit = 8 * Groups;
  __m256 acc[Tiles][Rows][kHalves];
  for (int t = 0; t < Tiles; t++)
    for (int r = 0; r < Rows; r++)
      for (int h = 0; h < kHalves; h++) acc[t][r][h] = _mm256_setzero_ps();
  const uint8_t* nibbles = b.nibbles.data() + tile0 * b.kGroups * 64;
  const int8_t* codes = a.codes + m0 * a.paddedK;
  for (int64_t j = 0; j < b.units; j++) {
    __m256i sum[Tiles][Rows][kHalves];
    for (int r = 0; r < Rows; r++) {
      const __m256i start = _mm256_set1_epi32(starts[(m0 + r) * b.units + j]);
      for (int t = 0; t < Tiles; t++)
        for (int h = 0; h < kHalves; h++) sum[t][r][h] = start;
    }
    for (int g = 0; g < Groups; g++) {
      const int64_t group = j * Groups + g;
      __m256i lo[Tiles][kHalves], hi[Tiles][kHalves];
      for (int t = 0; t < Tiles; t++)
        for (int h = 0; h < kHalves; h++) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nibbles + (t * b.kGroups + group) * 64 + 32 * h));
          lo[t][h] = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, lowNibble));
          hi[t][h] = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), lowNibble));
        }
      for (int r = 0; r < Rows; r++) {
        const int8_t* ar = codes + r * a.paddedK + group * 8;
        const __m256i a0 = _mm256_set1_epi32(load4(ar));
        const __m256i a1 = _mm256_set1_epi32(load4(ar + 4));
        for (int t = 0; t < Tiles; t++)
          for (int h = 0; h < kHalves; h++) {
            sum[t][r][h] = _mm256_add_epi16(sum[t][r][h], _mm256_maddubs_epi16(lo[t][h], a0));
            sum[t][r][h] = _mm256_add_epi16(sum[t][r][h], _mm256_maddubs_epi16(hi[t][h], a1));
            // Keeps the chain in its register: left free, GCC reassociates the vpaddw of a unit into
            // a tree and spills every vpmaddubsw result to the stack first.
            __asm__("" : "+x"(sum[t][r][h]));
          }
      }
    }
    for (int t = 0; t < Tiles; t++) {
      __m256i dot[Rows][kHalves];
      for (int r = 0; r < Rows; r++)
        for (int h = 0; h < kHalves; h++) {
          dot[r][h] = _mm256_madd_epi16(sum[t][r][h], ones);
          if (HasFp8) dot[r][h] = _mm256_slli_epi32(dot[r][h], 8);  // line up with the FP8 lanes' 2^-15
        }
      if (HasFp8) addFp8Lanes<Rows>(a, b, tile0 + t, j, m0, dot);
      for (int h = 0; h < kHalves; h++) {
        const __m256 sb = _mm256_loadu_ps(b.scales.data() + ((tile0 + t) * b.units + j) * kTileColumns + 8 * h);
        for (int r = 0; r < Rows; r++) {
          const int64_t aBlock = (m0 + r) * aBlocksPerRow + (j * unit) / 32;
          if (FastScales) {
            // S' = 2^(e − unitShift)·sb by an exponent add; partial = f32(dot · S') (matmul.h).
            const __m256i shift = _mm256_set1_epi32(a.exponentShift[static_cast<size_t>(aBlock)]);
            const __m256 s = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(sb), shift));
            acc[t][r][h] = _mm256_add_ps(acc[t][r][h], _mm256_mul_ps(_mm256_cvtepi32_ps(dot[r][h]), s));
          } else {
            const __m256 d = _mm256_mul_ps(_mm256_cvtepi32_ps(dot[r][h]), unitScale);
            const __m256 s = _mm256_mul_ps(_mm256_set1_ps(a.blockScales[aBlock]), sb);
            acc[t][r][h] = _mm256_add_ps(acc[t][r][h], _mm256_mul_ps(d, s));
          }
        }
      }
    }
  }
  for (int t = 0; t < Tiles; t++) storeTileRows<Rows>(acc[t], bias, out, b.n, tile0 + t, m0);
}

// Rows [m0, m0 + Rows), with the fast-scales epilogue when every one of them qualifies.
template <int Rows, int Tiles, int Groups, bool HasFp8>
void rowsStep(const Int8Activations& a, const int32_t* starts, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile0, int64_t m0) {
  bool fast = true;
  for (int r = 0; r < Rows; r++) fast = fast && a.fastScaleRow[static_cast<size_t>(m0 + r)];
  if (fast) step<Rows, Tiles, Groups, HasFp8, true>(a, starts, b, bias, out, tile0, m0);
  else step<Rows, Tiles, Groups, HasFp8, false>(a, starts, b, bias, out, tile0, m0);
}

// Rows [mBegin, mEnd) against tiles [tile0, tile0 + Tiles): steps of 4 rows, then the rest as one step.
template <int Tiles, int Groups, bool HasFp8>
void tilesStep(const Int8Activations& a, const int32_t* starts, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile0,
               int64_t mBegin, int64_t mEnd) {
  int64_t m = mBegin;
  for (; m + kRowsPerStep <= mEnd; m += kRowsPerStep) rowsStep<kRowsPerStep, Tiles, Groups, HasFp8>(a, starts, b, bias, out, tile0, m);
  const int64_t rest = mEnd - m;
  if (rest == 3) rowsStep<3, Tiles, Groups, HasFp8>(a, starts, b, bias, out, tile0, m);
  else if (rest == 2) rowsStep<2, Tiles, Groups, HasFp8>(a, starts, b, bias, out, tile0, m);
  else if (rest == 1) rowsStep<1, Tiles, Groups, HasFp8>(a, starts, b, bias, out, tile0, m);
}

// Activation bytes per block of rows that runs over every tile before the next block: the block
// stays in L2 while each tile's weights are read once per block (a whole product's activations,
// e.g. 2 MiB at M = 512, K = 4096, came from L3 once per tile).
constexpr int64_t kRowBlockBytes = 128 << 10;

template <int Groups, bool HasFp8>
void matmulTiles(const Int8Activations& a, const int32_t* starts, const PackedFp4Weights& b, const float* bias, float* out,
                 int64_t tileBegin, int64_t tileEnd) {
  if (a.rows == 1) {
    // One row (decode): two tiles per step, four int16 chains (one tile per step ran 0.9–1.0× as
    // fast, three or four tiles 0.85–0.95×: their chains spill).
    int64_t tile = tileBegin;
    for (; tile + 2 <= tileEnd; tile += 2) rowsStep<1, 2, Groups, HasFp8>(a, starts, b, bias, out, tile, 0);
    for (; tile < tileEnd; tile++) rowsStep<1, 1, Groups, HasFp8>(a, starts, b, bias, out, tile, 0);
    return;
  }
  const int64_t blockRows = std::max<int64_t>(kRowsPerStep, kRowBlockBytes / std::max<int64_t>(a.paddedK, 1) / kRowsPerStep * kRowsPerStep);
  for (int64_t m = 0; m < a.rows; m += blockRows) {
    const int64_t mEnd = std::min(a.rows, m + blockRows);
    for (int64_t tile = tileBegin; tile < tileEnd; tile++) tilesStep<1, Groups, HasFp8>(a, starts, b, bias, out, tile, m, mEnd);
  }
}

}  // namespace

void matmulFp4Int8Avx2(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                       int64_t tileBegin, int64_t tileEnd) {
  // Float32 scales only (readsCompactScales = false), and units of 16 or 32 (the bound of unitStarts).
  if (b.scaleStorage != ScaleStorage::Float32 || (b.unit != 16 && b.unit != 32) || (b.hasFp8 && b.unit != 16)) {
    matmulFp4Int8Scalar(a, b, bias, out, tileBegin, tileEnd);
    return;
  }
  static thread_local std::vector<int32_t> starts;  // kept between calls: a fresh buffer costs a page fault per 4 KiB
  unitStarts(a, b.unit, b.units, starts);
  if (b.hasFp8) matmulTiles<2, true>(a, starts.data(), b, bias, out, tileBegin, tileEnd);
  else if (b.unit == 16) matmulTiles<2, false>(a, starts.data(), b, bias, out, tileBegin, tileEnd);
  else matmulTiles<4, false>(a, starts.data(), b, bias, out, tileBegin, tileEnd);
}

}  // namespace fp4kit
