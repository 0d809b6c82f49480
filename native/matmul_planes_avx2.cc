// Byte-plane weights × MXINT8 activations with AVX2 (matmul_planes.h), over int16 h: AVX2 has no
// u8×s8 dot that cannot saturate, but vpmaddwd multiplies int16 pairs exactly, so h (16 signed
// bits) is one int16 operand and the low bits l another, taken only over the groups of 4 k that
// hold one. Per unit D = 2^s·Σk a·h + Σk a·l, exact in int32, then the defined float32 steps (plain
// order, no fast-scales identity) — the same bits as matmulPlanesScalar. A 256-bit vector holds 4
// lanes × 4 k; vpmaddwd leaves each lane's sum in two dwords, folded at the end of a unit.
//
// h comes from the compact form (hCodes: one byte per weight, rebuilt in registers by two nibble
// lookups and a vpmullw — a product reads half the bytes of int16 planes, which bound a one-row
// product; rebuilt, h costs ~13 instructions per 32 weights and a one-row product is compute-bound)
// or, for weights whose h has no byte (INT8), from int16 planes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "matmul_avx2_shared.h"
#include "matmul_planes.h"

namespace fp4kit {
namespace {

constexpr int kRows = 2;
// How far ahead (in units) a step requests the low bits' groups (~100 ns of memory latency against
// ~20 ns a unit of one row).
constexpr int64_t kLowPrefetchUnits = 8;

// Four activation codes as int16, repeated in every 64-bit lane: the other vpmaddwd operand.
inline __m256i activations4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_cvtepi8_epi16(_mm_set1_epi32(v));
}

// Lanes 0–7 and 8–15 of one unit from the four pair-split sums [lane 4v: 2 dwords, 4v+1, 4v+2, 4v+3].
inline void fold(const __m256i (&p)[4], __m256i& lo, __m256i& hi) {
  lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(p[0], p[1]), 0xD8);
  hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(p[2], p[3]), 0xD8);
}

inline __m256i broadcast16Bytes(const int8_t (&t)[16]) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
}

// A group of 4 k of one tile (64 elements, as four int16 vectors of 16) from the int16 planes.
struct Int16Planes {
  const int16_t* h;    // the tile's first group
  const int16_t* low;  // (split weights only)
  bool kStreams;       // read from the weights (not a buffer in cache): prefetch the low groups
  void prefetchLowGroup(int64_t g) const {
    _mm_prefetch(reinterpret_cast<const char*>(low + g * 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(low + g * 64 + 32), _MM_HINT_T0);
  }
  void hGroup(int64_t g, __m256i (&w)[4]) const {
    for (int v = 0; v < 4; v++) w[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + g * 64 + 16 * v));
  }
  void lowGroup(int64_t g, __m256i (&w)[4]) const {
    for (int v = 0; v < 4; v++) w[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(low + g * 64 + 16 * v));
  }
};

// hFromCodeByte's lookups, as vectors: built once per call, shared by every tile.
struct HCodeLookup {
  __m256i nibble, odd, powLo, powHi;
  HCodeLookup() {
    int8_t lo[16], hi[16];
    for (int j = 0; j < 16; j++) {
      lo[j] = static_cast<int8_t>(kHCodePowers[j] & 0xff);
      hi[j] = static_cast<int8_t>(kHCodePowers[j] >> 8);
    }
    nibble = _mm256_set1_epi8(0x0f);
    odd = broadcast16Bytes(kHCodeOddFactors);
    powLo = broadcast16Bytes(lo);
    powHi = broadcast16Bytes(hi);
  }
};

// The same from the compact form: h = odd · 2^j from each byte's nibbles (hFromCodeByte), the
// unpacks undoing int16CodesPosition's chunk swap; l zero-extended.
struct Int16Codes {
  static constexpr bool kStreams = true;
  const uint8_t* h;
  const uint8_t* low;
  HCodeLookup t;  // a copy in the object: the vectors stay in registers across the tile's loop
  void prefetchLowGroup(int64_t g) const { _mm_prefetch(reinterpret_cast<const char*>(low + g * 64), _MM_HINT_T0); }
  Int16Codes(const HCodeLookup& lookup, const uint8_t* hCodes, const uint8_t* lowCodes) : h(hCodes), low(lowCodes), t(lookup) {}
  void hGroup(int64_t g, __m256i (&w)[4]) const {
    for (int half = 0; half < 2; half++) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + g * 64 + 32 * half));
      const __m256i highNibble = _mm256_and_si256(_mm256_srli_epi16(c, 4), t.nibble);
      const __m256i n = _mm256_shuffle_epi8(t.odd, _mm256_and_si256(c, t.nibble));
      const __m256i nSign = _mm256_cmpgt_epi8(_mm256_setzero_si256(), n);
      const __m256i pl = _mm256_shuffle_epi8(t.powLo, highNibble), ph = _mm256_shuffle_epi8(t.powHi, highNibble);
      w[2 * half] = _mm256_mullo_epi16(_mm256_unpacklo_epi8(n, nSign), _mm256_unpacklo_epi8(pl, ph));
      w[2 * half + 1] = _mm256_mullo_epi16(_mm256_unpackhi_epi8(n, nSign), _mm256_unpackhi_epi8(pl, ph));
    }
  }
  void lowGroup(int64_t g, __m256i (&w)[4]) const {
    for (int half = 0; half < 2; half++) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(low + g * 64 + 32 * half));
      w[2 * half] = _mm256_unpacklo_epi8(c, _mm256_setzero_si256());
      w[2 * half + 1] = _mm256_unpackhi_epi8(c, _mm256_setzero_si256());
    }
  }
};

// Σ a·(h or l) over the groups of 4 k [g0, g0 + quads) (or those of them set in `mask`) for Rows rows.
template <int Rows, bool Low, class Source>
inline void groupDots(const Source& src, int64_t g0, const int8_t* aUnit, int64_t aStride, int quads, unsigned mask,
                      __m256i (&lo)[Rows], __m256i (&hi)[Rows]) {
  __m256i p[Rows][4];
  for (int r = 0; r < Rows; r++)
    for (int v = 0; v < 4; v++) p[r][v] = _mm256_setzero_si256();
  for (int q = 0; Low ? mask != 0 : q < quads; q++) {
    int g = q;
    if (Low) {
      g = __builtin_ctz(mask);
      mask &= mask - 1;
    }
    __m256i w[4];
    if (Low) src.lowGroup(g0 + g, w);
    else src.hGroup(g0 + g, w);
    for (int r = 0; r < Rows; r++) {
      const __m256i a4 = activations4(aUnit + r * aStride + 4 * g);
      for (int v = 0; v < 4; v++) p[r][v] = _mm256_add_epi32(p[r][v], _mm256_madd_epi16(w[v], a4));
    }
  }
  for (int r = 0; r < Rows; r++) fold(p[r], lo[r], hi[r]);
}

template <int Rows, class Source>
void step(const Int8Activations& a, const PackedPlaneWeights& b, const Source& src, const float* bias, float* out, int64_t tile,
          int64_t m0) {
  const __m256 unitScale = _mm256_set1_ps(std::ldexp(1.0f, -b.unitShift()));
  const __m128i shift = _mm_cvtsi32_si128(b.lowShift);
  const int quads = static_cast<int>(b.unit / 4);
  const int64_t aBlocksPerRow = a.paddedK / 32;
  __m256 acc[Rows][2];
  for (int r = 0; r < Rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t j = 0; j < b.units; j++) {
    // The low bits' groups are few and scattered (~4 % of E4M3 groups): fetched on demand, each
    // would wait for memory, so they are requested kLowPrefetchUnits units ahead.
    if (src.kStreams && j + kLowPrefetchUnits < b.units)
      for (unsigned mask = b.lowQuadMask(tile, j + kLowPrefetchUnits); mask != 0; mask &= mask - 1)
        src.prefetchLowGroup((j + kLowPrefetchUnits) * quads + __builtin_ctz(mask));
    const int8_t* aUnit = a.codes + m0 * a.paddedK + j * b.unit;
    __m256i lo[Rows], hi[Rows];
    groupDots<Rows, false>(src, j * quads, aUnit, a.paddedK, quads, 0, lo, hi);
    for (int r = 0; r < Rows; r++) {
      lo[r] = _mm256_sll_epi32(lo[r], shift);
      hi[r] = _mm256_sll_epi32(hi[r], shift);
    }
    if (const unsigned mask = b.lowQuadMask(tile, j)) {
      __m256i lowLo[Rows], lowHi[Rows];
      groupDots<Rows, true>(src, j * quads, aUnit, a.paddedK, quads, mask, lowLo, lowHi);
      for (int r = 0; r < Rows; r++) {
        lo[r] = _mm256_add_epi32(lo[r], lowLo[r]);
        hi[r] = _mm256_add_epi32(hi[r], lowHi[r]);
      }
    }
    const float* sb = b.scales.data() + (tile * b.units + j) * kTileColumns;
    for (int r = 0; r < Rows; r++) {
      const __m256 sa = _mm256_set1_ps(a.blockScales[(m0 + r) * aBlocksPerRow + (j * b.unit) / 32]);
      const __m256 dLo = _mm256_mul_ps(_mm256_cvtepi32_ps(lo[r]), unitScale);
      const __m256 dHi = _mm256_mul_ps(_mm256_cvtepi32_ps(hi[r]), unitScale);
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_mul_ps(dLo, _mm256_mul_ps(sa, _mm256_loadu_ps(sb))));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_mul_ps(dHi, _mm256_mul_ps(sa, _mm256_loadu_ps(sb + 8))));
    }
  }
  storeTileRows<Rows>(acc, bias, out, b.n, tile, m0);
}

template <class Source>
void tileRows(const Int8Activations& a, const PackedPlaneWeights& b, const Source& src, const float* bias, float* out, int64_t tile) {
  int64_t m = 0;
  for (; m + kRows <= a.rows; m += kRows) step<kRows>(a, b, src, bias, out, tile, m);
  for (; m < a.rows; m++) step<1>(a, b, src, bias, out, tile, m);
}

// The compact form's tile as int16 planes in per-thread buffers (h everywhere, l in the groups
// that lowQuads marks): for products of several rows, which then rebuild each weight once.
Int16Planes decodedTile(const PackedPlaneWeights& b, const Int16Codes& src, int64_t tile) {
  static thread_local std::vector<int16_t> h, low;  // kept between calls: a fresh buffer costs a page fault per 4 KiB
  const size_t elements = static_cast<size_t>(b.kQuads * 64);
  if (h.size() < elements) h.resize(elements);
  if (src.low && low.size() < elements) low.resize(elements);
  for (int64_t g = 0; g < b.kQuads; g++) {
    __m256i w[4];
    src.hGroup(g, w);
    for (int v = 0; v < 4; v++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(h.data() + g * 64 + 16 * v), w[v]);
  }
  const int64_t quads = b.unit / 4;
  for (int64_t j = 0; src.low && j < b.units; j++)
    for (unsigned mask = b.lowQuadMask(tile, j); mask != 0; mask &= mask - 1) {
      const int64_t g = j * quads + __builtin_ctz(mask);
      __m256i w[4];
      src.lowGroup(g, w);
      for (int v = 0; v < 4; v++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(low.data() + g * 64 + 16 * v), w[v]);
    }
  return {h.data(), src.low ? low.data() : nullptr, false};
}

}  // namespace

void matmulPlanesAvx2(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tileBegin,
                      int64_t tileEnd) {
  const bool compact = !b.hCodes.empty(), int16 = !b.h16.empty();
  if ((!compact && !int16 && b.tiles > 0) || b.scaleStorage != ScaleStorage::Float32) {
    matmulPlanesScalar(a, b, bias, out, tileBegin, tileEnd);  // byte planes or byte multipliers: not this kernel's form
    return;
  }
  const size_t tileElements = static_cast<size_t>(b.kQuads * 64);
  const HCodeLookup lookup;
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    const size_t at = static_cast<size_t>(tile) * tileElements;
    if (compact) {
      const Int16Codes codes(lookup, b.hCodes.data() + at, b.hCodesLow.empty() ? nullptr : b.hCodesLow.data() + at);
      if (a.rows > kRows) tileRows(a, b, decodedTile(b, codes, tile), bias, out, tile);
      else tileRows(a, b, codes, bias, out, tile);
    } else {
      tileRows(a, b, Int16Planes{b.h16.data() + at, b.low16.empty() ? nullptr : b.low16.data() + at, true}, bias, out, tile);
    }
  }
}

}  // namespace fp4kit
