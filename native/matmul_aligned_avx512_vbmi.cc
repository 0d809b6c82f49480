// Row-units of FP8 codes in their int16 form (matmul_aligned.h) read straight from the codes, with
// AVX-512 VBMI: the aligned kernel's operands, for FP8 × FP8 products (fp4Dense's backward).
//
// A code's value is odd · 2^low with odd ≤ 15, so three 128-entry byte tables indexed by the code
// without its sign (one vpermi2b each, 64 codes at a time) give what alignRowUnit derives from the
// float bits: low (the exponent of the lowest set bit), top (|x| < 2^top) and odd. A row-unit's
// exponent is the minimum of low over its codes, its span the maximum of top minus that, and its
// integers ±odd · 2^(low − exponent) — the same forms, spans and exponents as alignRowUnit on the
// decoded values (+0 where a unit has a NaN or an infinity, or spans over 15; kernels_selftest.cc
// checks every code). Reading one byte per element instead of a float's four, with per-unit
// reductions done for 16 units at once, makes aligning an operand several times cheaper than from
// its values; the products' bits do not change (the form is the same).
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "element_codec.h"
#include "formats.h"
#include "matmul_aligned.h"
#include "matmul_aligned_panel_avx512.h"

namespace fp4kit {
namespace {

constexpr int kCodeUnit = 32;     // codes per row-unit (MX FP8 blocks)
constexpr int32_t kTableBias = 64;  // low and top are stored + 64 (E5M2's smallest low is −16)
constexpr uint8_t kNoLow = 0xff;    // low of ±0: never the minimum
constexpr uint8_t kSpecial = 0xff;  // top of NaN and ±Inf: always the maximum

// The three tables of one element format, 128 entries each as two registers (vpermi2b's operands).
struct CodeTables {
  __m512i low[2], top[2], odd[2];
};

CodeTables buildTables(int32_t element) {
  alignas(64) uint8_t low[128], top[128], odd[128];
  for (uint32_t code = 0; code < 128; code++) {
    const float v = decodeElement(code, kElementFormats[element]);
    low[code] = kNoLow;
    top[code] = 0;
    odd[code] = 0;
    if (!std::isfinite(v)) {
      top[code] = kSpecial;
    } else if (v != 0.0f) {  // FP8 values are normal floats: sig has its implicit bit
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      const uint32_t sig = (bits & 0x7fffff) | 0x800000;
      const int32_t lsbExp = static_cast<int32_t>(bits >> 23 & 0xff) - 150, zeros = __builtin_ctz(sig);
      const uint32_t o = sig >> zeros;
      low[code] = static_cast<uint8_t>(lsbExp + zeros + kTableBias);
      top[code] = static_cast<uint8_t>(lsbExp + zeros + (32 - __builtin_clz(o)) + kTableBias);
      odd[code] = static_cast<uint8_t>(o);
    }
  }
  CodeTables t;
  for (int h = 0; h < 2; h++) {
    t.low[h] = _mm512_load_si512(low + 64 * h);
    t.top[h] = _mm512_load_si512(top + 64 * h);
    t.odd[h] = _mm512_load_si512(odd + 64 * h);
  }
  return t;
}

const CodeTables& tablesFor(int32_t element) {
  static const CodeTables e4m3 = buildTables(kE4m3), e5m2 = buildTables(kE5m2);
  return element == kE4m3 ? e4m3 : e5m2;
}

// Per 32-byte half of v[0..7] (unit 2p in the low half of v[p], unit 2p + 1 in the high half), the
// minimum (Max false) or maximum of its bytes, as 16 int32 in unit order: a tree that halves every
// unit's bytes while packing units together, four levels for all 16.
template <bool Max>
inline __m512i reduceUnits(const __m512i v[8]) {
  auto op = [](__m512i a, __m512i b) { return Max ? _mm512_max_epu8(a, b) : _mm512_min_epu8(a, b); };
  __m512i l1[4], l2[2];
  // l1[q], 128-bit lane ℓ: unit 4q + ℓ's 16 bytes.
  for (int q = 0; q < 4; q++)
    l1[q] = op(_mm512_shuffle_i64x2(v[2 * q], v[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i64x2(v[2 * q], v[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  // l2[r], lane ℓ: unit 8r + ℓ's 8 bytes, then unit 8r + 4 + ℓ's.
  for (int r = 0; r < 2; r++) l2[r] = op(_mm512_unpacklo_epi64(l1[2 * r], l1[2 * r + 1]), _mm512_unpackhi_epi64(l1[2 * r], l1[2 * r + 1]));
  // l3, lane ℓ: 4 bytes each of units ℓ, 4 + ℓ, 8 + ℓ, 12 + ℓ.
  const __m512 e = _mm512_castsi512_ps(l2[0]), f = _mm512_castsi512_ps(l2[1]);
  __m512i l3 = op(_mm512_castps_si512(_mm512_shuffle_ps(e, f, _MM_SHUFFLE(2, 0, 2, 0))), _mm512_castps_si512(_mm512_shuffle_ps(e, f, _MM_SHUFFLE(3, 1, 3, 1))));
  l3 = op(l3, _mm512_srli_epi32(l3, 16));
  l3 = op(l3, _mm512_srli_epi32(l3, 8));
  // Dword 4ℓ + s holds unit ℓ + 4s: into unit order.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(order, _mm512_and_si512(l3, _mm512_set1_epi32(0xff)));
}

// 16 row-units of 32 codes, unit u at base + u·stride (those outside `valid` read as +0 codes, never
// touching memory): forms[u] its 32 int16 in memory order (zero without a form), and per unit its
// span and exponent — alignRowUnit's results on the decoded values.
inline void alignSixteenUnits(const CodeTables& t, const uint8_t* base, int64_t stride, __mmask16 valid, __m512i forms[16], __m512i& span,
                              __m512i& exp) {
  __m512i codes[8], low[8], top[8];
  for (int p = 0; p < 8; p++) {
    const __mmask32 m0 = valid >> (2 * p) & 1 ? ~__mmask32(0) : 0, m1 = valid >> (2 * p + 1) & 1 ? ~__mmask32(0) : 0;
    const __m256i c0 = _mm256_maskz_loadu_epi8(m0, base + (2 * p) * stride), c1 = _mm256_maskz_loadu_epi8(m1, base + (2 * p + 1) * stride);
    codes[p] = _mm512_inserti64x4(_mm512_castsi256_si512(c0), c1, 1);
    // vpermi2b reads the index's low 7 bits: the sign bit does not take part.
    low[p] = _mm512_permutex2var_epi8(t.low[0], codes[p], t.low[1]);
    top[p] = _mm512_permutex2var_epi8(t.top[0], codes[p], t.top[1]);
  }
  const __m512i unitLow = reduceUnits<false>(low), unitTop = reduceUnits<true>(top);
  const __mmask16 special = _mm512_cmpeq_epi32_mask(unitTop, _mm512_set1_epi32(kSpecial));
  const __mmask16 zero = _mm512_cmpeq_epi32_mask(unitLow, _mm512_set1_epi32(kNoLow)) & ~special;
  const __m512i width = _mm512_sub_epi32(unitTop, unitLow);
  const __mmask16 ok = ~special & ~zero & _mm512_cmple_epi32_mask(width, _mm512_set1_epi32(kAlignedMaxSpan));
  span = _mm512_mask_mov_epi32(_mm512_maskz_mov_epi32(~zero, _mm512_set1_epi32(kUnaligned)), ok, width);
  exp = _mm512_maskz_sub_epi32(ok, unitLow, _mm512_set1_epi32(kTableBias));
  // Integers: ±odd · 2^(low − unit low), as int16 (a +0 code's shift is ≥ 175: its 0 stays 0).
  for (int p = 0; p < 8; p++) {
    const __m512i pick = _mm512_add_epi8(_mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi8(4), 1), _mm512_set1_epi8(static_cast<char>(8 * p)));
    const __m512i shift = _mm512_sub_epi8(low[p], _mm512_permutexvar_epi8(pick, unitLow));
    const __m512i odd = _mm512_permutex2var_epi8(t.odd[0], codes[p], t.odd[1]);
    const __mmask64 negative = _mm512_movepi8_mask(codes[p]);
    for (int h = 0; h < 2; h++) {
      const __m256i oddHalf = h ? _mm512_extracti64x4_epi64(odd, 1) : _mm512_castsi512_si256(odd);
      const __m256i shiftHalf = h ? _mm512_extracti64x4_epi64(shift, 1) : _mm512_castsi512_si256(shift);
      __m512i f = _mm512_sllv_epi16(_mm512_cvtepu8_epi16(oddHalf), _mm512_cvtepu8_epi16(shiftHalf));
      f = _mm512_mask_sub_epi16(f, static_cast<__mmask32>(negative >> (32 * h)), _mm512_setzero_si512(), f);
      forms[2 * p + h] = _mm512_maskz_mov_epi32(ok >> (2 * p + h) & 1 ? __mmask16(0xffff) : __mmask16(0), f);
    }
  }
}

void alignRowsFromCodes(const DecodedOperand& x, int64_t r0, int64_t r1, AlignedRows& out) {
  const CodeTables& t = tablesFor(x.codeElement);
  const int64_t units = out.units, pairs = kCodeUnit / 2;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t j0 = 0; j0 < units; j0 += 16) {
      const int64_t count = std::min<int64_t>(16, units - j0);
      const __mmask16 valid = static_cast<__mmask16>((1u << count) - 1);
      __m512i forms[16], span, exp;
      alignSixteenUnits(t, x.codes + r * x.paddedCols + j0 * kCodeUnit, kCodeUnit, valid, forms, span, exp);
      const size_t at = static_cast<size_t>(r * units + j0);
      for (int64_t u = 0; u < count; u++) _mm512_storeu_si512(out.pairs.data() + (at + u) * pairs, forms[u]);
      _mm512_mask_storeu_epi32(out.spans.data() + at, valid, span);
      _mm512_mask_storeu_epi32(out.exps.data() + at, valid, exp);
    }
  }
}

void rowSpansFromCodes(const DecodedOperand& x, int64_t r, int32_t* spans) {
  const CodeTables& t = tablesFor(x.codeElement);
  const int64_t units = (x.cols + kCodeUnit - 1) / kCodeUnit;
  for (int64_t j0 = 0; j0 < units; j0 += 16) {
    const __mmask16 valid = static_cast<__mmask16>((1u << std::min<int64_t>(16, units - j0)) - 1);
    __m512i forms[16], span, exp;
    alignSixteenUnits(t, x.codes + r * x.paddedCols + j0 * kCodeUnit, kCodeUnit, valid, forms, span, exp);
    _mm512_mask_storeu_epi32(spans + j0, valid, span);
  }
}

void fillPanelFromCodes(const DecodedOperand& b, int64_t col0, int64_t cols, int64_t j0, int64_t j1, AlignedPanel& p) {
  const CodeTables& t = tablesFor(b.codeElement);
  // The next as many units' codes: 32 columns' worth of streams, more than the hardware prefetchers
  // follow (the kernel fills a chunk, multiplies it, then fills the next).
  const int64_t units = (b.cols + kCodeUnit - 1) / kCodeUnit, ahead = std::min(units, j1 + (j1 - j0));
  for (int64_t c = 0; c < cols; c++)
    for (int64_t at = j1 * kCodeUnit; at < ahead * kCodeUnit; at += 64) _mm_prefetch(reinterpret_cast<const char*>(b.codes + (col0 + c) * b.paddedCols + at), _MM_HINT_T0);
  for (int g = 0; g < 2; g++) {
    const __mmask16 real = realLanes(cols, g);  // padding columns read as +0 codes: span 0, no integers
    for (int64_t j = j0; j < j1; j++) {
      __m512i forms[16], span, exp;
      alignSixteenUnits(t, b.codes + (col0 + g * 16) * b.paddedCols + j * kCodeUnit, b.paddedCols, real, forms, span, exp);
      storePanelGroup<kCodeUnit / 2>(b, col0, g, real, j, forms, span, exp, p);
    }
  }
}

}  // namespace

const AlignedCodes alignedCodesAvx512Vbmi = {alignRowsFromCodes, rowSpansFromCodes, fillPanelFromCodes};

}  // namespace fp4kit
