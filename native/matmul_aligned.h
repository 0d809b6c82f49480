// The decoded-operand product (matmul.h's matmulDecoded*) on exponent-aligned integers, for operands
// whose element values are short floats (FP8, FP6, FP4, INT8 codes: the FP8 × FP8 gradient products
// of fp4Dense's backward, and any pairing without an integer weight kernel).
//
// The defined order sums each unit's products in float64 and rounds once to float32: D = f32(Σ a·b).
// When that float64 sum is exact, any exact way of computing Σ a·b gives the same D. Here a unit of
// a row (a "row-unit": `unit` consecutive k of one row) is written as int16 integers times one power
// of two, when it can be: every value is x = i · 2^e with |i| < 2^span, span ≤ 15. For a row-unit
// of a and one of b, every product is a multiple of 2^(ea+eb) below 2^(spanA+spanB) in magnitude,
// so with spanA + spanB + log2(unit) ≤ 31 the integer dot Σ ia·ib fits int32 exactly — one int16
// multiply-add instruction per two products — and so does the float64 sum (53 bits), so
//   D = f32(Σ ia·ib) · 2^(ea+eb)      exactly the reference's f32(d),
// provided the power of two keeps f32 normal: −126 ≤ ea + eb ≤ 96 (|Σ| < 2^31). Pairs outside
// this rule (non-finite values, spans over 15, extreme exponents) take the reference's float64 sum,
// lane by lane: same bits either way. The rest of the order (S = f32(sa·sb), acc = f32(acc +
// f32(D·S)), bias) is the reference's.
//
// Kernels: matmulAlignedScalar (matmul_aligned.cc, the plain twin), matmulAlignedAvx512 (VNNI
// vpdpwssd), matmulAlignedAvx2 (vpmaddwd), matmulAlignedNeon (vmlal_s16). The binding calls them only where planAligned says
// the fallbacks are rare enough (a float32 operand never aligns).
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

#include "matmul.h"

namespace fp4kit {

constexpr int kAlignedMaxSpan = 15;   // |integer| < 2^15: an int16
constexpr int32_t kUnaligned = 100;   // the span of a row-unit without an int16 form
constexpr int kAlignedMinExp = -126;  // ea + eb range that keeps D = f32(Σ)·2^(ea+eb) a normal float
constexpr int kAlignedMaxExp = 96;

struct AlignedRowBlock {
  int32_t maxSpan, minExp, maxExp;
  int32_t minScaleExp, maxScaleExp;  // log2 sa; INT32_MIN / 2 and INT32_MAX / 2 if one is not a power of two
  int32_t minRowExp, maxRowExp;      // expA + log2 sa
};
struct AlignedRowBlocks {
  std::vector<AlignedRowBlock> blocks;  // [blocks][units]
  std::vector<float> rowFactors;        // [rows][units]
};

// Row-units of a decoded operand as int16 integers × 2^exp, two consecutive k per int32 (k even in
// the low half: the operand shape of vpdpwssd / vpmaddwd).
//
// A finite row-unit too wide for one form (span over 15; an E5M2 gradient row with one tiny element)
// may still split in two: hi, the elements that are multiples of 2^expHi with |x| < 2^(expHi+15),
// and lo, the rest, with a span of at most 15 — D = Σhi·2^expHi + Σlo·2^expLo, each sum exact in
// int32 and their sum exact in float64 (see splitDot in the AVX-512 kernel). Its span stays
// kUnaligned (a kernel without the split takes the float64 fallback) and its pairs hold hi.
struct AlignedRows {
  std::vector<int32_t> pairs;  // rows × units·unit/2
  std::vector<int32_t> exps;   // rows × units
  std::vector<int32_t> spans;  // rows × units (kUnaligned: none)
  std::vector<int32_t> split;  // rows × units: index of the row-unit's split, −1 if none
  std::vector<int32_t> splitForms;    // per split: expHi, spanHi, expLo, spanLo
  std::vector<int32_t> splitLoPairs;  // per split: unit/2 pairs of lo
  int64_t rows = 0, units = 0, unit = 0;
  // The SIMD kernels' row-block summary, made once per product for every pool thread
  // (summarizeRowBlocksShared) when blockRows is the kernel's rows per block; 0: none.
  AlignedRowBlocks summary;
  int64_t blockRows = 0;
  const int32_t* rowPairs(int64_t r) const { return pairs.data() + r * units * (unit / 2); }
};

// Buffers kept between calls (the JavaScript thread's aligned a, each thread's panel) are freed
// after a call that grew them past this, so a one-off huge product does not pin its memory.
constexpr size_t kKeptBytes = size_t(64) << 20;
void releaseIfLarge(AlignedRows& rows);

// The two forms of a wide row-unit (see AlignedRows): false when it has none (non-finite values,
// or lo wider than 15).
bool splitRowUnit(const float* values, int64_t count, int16_t* hi, int16_t* lo, int32_t form[4]);
// Splits the row-units of `rows` that have no single form, where they can be (a serial pass).
void splitWideRowUnits(const DecodedOperand& x, AlignedRows& rows);

// A step's rows of a: m0 … m0 + Rows − 1, those past the end repeating the last row (computed,
// never stored), with their int16 pairs.
template <int Rows>
struct AlignedRowStep {
  int64_t row[Rows];
  const int32_t* pairs[Rows];
  AlignedRowStep(const AlignedRows& a, int64_t m0, int64_t rows) {
    for (int r = 0; r < Rows; r++) {
      row[r] = m0 + (r < rows ? r : rows - 1);
      pairs[r] = a.rowPairs(row[r]);
    }
  }
};

// log2 of the unit (16 or 32): the bits the sum of `unit` products may add.
static inline int unitBits(int64_t unit) { return unit <= 16 ? 4 : 5; }

// Whether the integer dot of a row-unit pair gives the reference's D exactly (see above).
static inline bool alignedPairExact(int32_t spanA, int32_t expA, int32_t spanB, int32_t expB, int64_t unit) {
  const int32_t e = expA + expB;
  return spanA + spanB + unitBits(unit) <= 31 && e >= kAlignedMinExp && e <= kAlignedMaxExp;
}

// 2^e as a float, e in [−126, 127].
static inline float powerOfTwo(int32_t e) {
  const uint32_t bits = static_cast<uint32_t>(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The reference's float64 sum of one unit's products, in k order.
static inline double referenceUnitDot(const float* a, const float* b, int64_t count) {
  double d = 0.0;
  for (int64_t i = 0; i < count; i++) d += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return d;
}

// One row-unit's int16 form: writes `count` integers and returns its span (kUnaligned if it has
// none), with exp set when it has one. An all-zero row-unit has span 0 and exp 0. The AVX-512, AVX2
// and NEON variants (units of 16 and 32 without subnormals; others go to the scalar one) give the same.
int32_t alignRowUnit(const float* values, int64_t count, int16_t* ints, int32_t& exp);
int32_t alignRowUnitAvx512(const float* values, int64_t count, int16_t* ints, int32_t& exp);
int32_t alignRowUnitAvx2(const float* values, int64_t count, int16_t* ints, int32_t& exp);
int32_t alignRowUnitNeon(const float* values, int64_t count, int16_t* ints, int32_t& exp);
using AlignRowUnitFn = int32_t (*)(const float*, int64_t, int16_t*, int32_t&);
// The variant for this CPU (dispatch.cc).
AlignRowUnitFn activeAlignRowUnit();

// Rows [r0, r1) of `x` into `out` (sized by alignRowsInit).
void alignRowsInit(AlignedRows& out, int64_t rows, int64_t units, int64_t unit);
void alignRows(const DecodedOperand& x, int64_t unit, int64_t r0, int64_t r1, AlignedRows& out, AlignRowUnitFn align = alignRowUnit);

// Whether the aligned kernel should run a product, and which way: Direct aligns a into `aligned`
// (threads of the pool) and runs a · bᵀ; Swapped aligns b and runs b · aᵀ, whose transpose is the
// product (every output's operations are symmetric in a and b: the same products in the same k
// order, f32(sa·sb), the same accumulation), for when b holds the wide row-units that only the
// operand in a's place can split (fp4Dense's ∇W = Âᵀ·G). Needs enough rows in a's place to
// amortize aligning the other operand's columns, and few expected fallbacks, estimated from a
// sample of both operands' row-units.
enum class AlignedPlan { None, Direct, Swapped };
AlignedPlan planAligned(const DecodedOperand& a, const DecodedOperand& b, AlignedRows& aligned);

// Output columns [nBegin, nEnd), every output in the reference's order and bits.
using AlignedKernel = void (*)(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias,
                               float* out, int64_t nBegin, int64_t nEnd);
void matmulAlignedScalar(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                         int64_t nBegin, int64_t nEnd);
void matmulAlignedAvx512(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                         int64_t nBegin, int64_t nEnd);
void matmulAlignedAvx2(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                       int64_t nBegin, int64_t nEnd);
void matmulAlignedNeon(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                       int64_t nBegin, int64_t nEnd);
// The variant for this CPU (dispatch.cc): AVX-512 VNNI, AVX2, NEON, else the scalar twin.
AlignedKernel activeAlignedKernel();

// A side of the SIMD kernels: per block of `rowsPerBlock` rows (tail rows repeat the last) and unit,
// what the panel tests need, so a kernel tests a whole block of rows against a panel unit at once;
// per row-unit the power-of-two epilogue's 2^rowExp (0 where it does not apply).
void summarizeRowBlocks(const DecodedOperand& a, const AlignedRows& aligned, int64_t rowsPerBlock, AlignedRowBlocks& out);
// The summary into aligned.summary, blocks split over the thread pool (each kernel thread made its
// own before: the same work once per thread, the whole of it on each).
void summarizeRowBlocksShared(const DecodedOperand& a, AlignedRows& aligned, int64_t rowsPerBlock);
// The summary a kernel step reads: the shared one when it was made for kRows, else `scratch`, made here.
const AlignedRowBlocks& rowBlocksFor(const DecodedOperand& a, const AlignedRows& aligned, int64_t kRows, AlignedRowBlocks& scratch);
// Rows per step (and per summary block) of the SIMD kernels; of the active one (0: it reads no summary).
constexpr int kAlignedAvx512Rows = 6, kAlignedAvx2Rows = 4;
int64_t activeAlignedRowsPerBlock();

// The B side of the SIMD kernels: `width` columns side by side (padding columns zero, span 0).
struct AlignedPanel {
  std::vector<int32_t> pairs;   // [units][unit/2][width]
  std::vector<int32_t> exps;    // [units][width]
  std::vector<int32_t> spans;   // [units][width]
  std::vector<float> scales;    // [units][width] b's block multipliers
  std::vector<int32_t> maxSpan, minExp, maxExp;  // [units] over the panel's real columns
  // Power-of-two scales (MX operands; fp4Dense's backward, all 1): where every real column's
  // multiplier sb of unit j is a positive normal power of two with 2^expB·sb normal and below
  // 2^97, powerUnit[j] = 1, laneFactors = 2^expB·sb, and log2 sb spans [minScaleExp, maxScaleExp].
  std::vector<uint8_t> powerUnit;     // [units]
  std::vector<float> laneFactors;     // [units][width], 0 in padding columns
  std::vector<int32_t> minScaleExp, maxScaleExp;  // [units]
};

// log2 of a positive normal power of two, else INT32_MIN.
static inline int32_t powerOfTwoExponent(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t field = bits >> 23;  // sign 0 and the exponent field
  return (bits & 0x7fffff) == 0 && field >= 1 && field <= 254 ? static_cast<int32_t>(field) - 127 : INT32_MIN;
}

// Every row of a block passes the exactness rule against every column of panel unit j, and the
// power-of-two epilogue applies to each (powerScalesExact's conditions, for the whole block).
static inline bool rowBlockFast(const AlignedRowBlock& rb, const AlignedPanel& p, int64_t j, int32_t sumBits) {
  const size_t u = static_cast<size_t>(j);
  return rb.maxSpan + p.maxSpan[u] <= sumBits && rb.minExp + p.minExp[u] >= kAlignedMinExp && rb.maxExp + p.maxExp[u] <= kAlignedMaxExp &&
         p.powerUnit[u] && rb.minRowExp >= -126 && rb.maxRowExp <= 127 && rb.minScaleExp + p.minScaleExp[u] >= -149 &&
         rb.maxScaleExp + p.maxScaleExp[u] <= 127;
}

// The power-of-two epilogue of a row-unit against panel unit j whose pairs are all exact: with sa =
// 2^x and every sb = 2^y (normal), the reference's S = f32(sa·sb) is exact while x + y ≥ −149 and
// ≤ 127, and f32(D)·S = Σ·2^(expA+expB)·sa·sb = (Σ·laneFactor)·2^rowExp with rowExp = expA + x —
// the first product exact (Σ < 2^31, laneFactor normal ≤ 2^96), the second rounding once, as the
// reference does. Sets rowExp when it applies (2^rowExp normal).
static inline bool powerScalesExact(const AlignedPanel& p, int64_t j, float sa, int32_t expA, int32_t& rowExp) {
  if (!p.powerUnit[static_cast<size_t>(j)]) return false;
  const int32_t x = powerOfTwoExponent(sa);
  if (x == INT32_MIN) return false;
  rowExp = expA + x;
  return rowExp >= -126 && rowExp <= 127 && x + p.minScaleExp[static_cast<size_t>(j)] >= -149 && x + p.maxScaleExp[static_cast<size_t>(j)] <= 127;
}
void fillAlignedPanel(const DecodedOperand& b, int64_t unit, int64_t col0, int64_t cols, int64_t width, AlignedPanel& p,
                      AlignRowUnitFn align = alignRowUnit);
// fillAlignedPanel with any callable in alignRowUnit's shape, for an ISA file to inline its own
// (static: each file's copy is compiled with that file's flags, never merged with another's).
template <class Align>
static void fillAlignedPanelWith(const DecodedOperand& b, int64_t unit, int64_t col0, int64_t cols, int64_t width, AlignedPanel& p,
                                 Align&& align);
void releaseIfLarge(AlignedPanel& p);

// Each thread's panel and row-block summary, kept between calls (a fresh buffer costs a page fault
// per 4 KiB); one per thread, so the SIMD kernels of one product never share them.
struct AlignedScratch {
  AlignedPanel panel;
  AlignedRowBlocks blocks;
};
AlignedScratch& threadAlignedScratch();

// Row-unit forms read from FP8 codes instead of values (units of 32, E4M3 or E5M2 codes; VBMI byte
// tables, matmul_aligned_avx512_vbmi.cc): what alignRows and the panel fills write from the values,
// entry for entry, at a fraction of the cost.
struct AlignedCodes {
  void (*rows)(const DecodedOperand& x, int64_t r0, int64_t r1, AlignedRows& out);  // alignRows
  void (*spans)(const DecodedOperand& x, int64_t r, int32_t* spans);                 // row r's spans only (the planner's sample)
  // Units [j0, j1) of a panel of width 32 made ready by preparePanel (matmul_aligned_panel.h).
  void (*panel)(const DecodedOperand& b, int64_t col0, int64_t cols, int64_t j0, int64_t j1, AlignedPanel& p);
};
extern const AlignedCodes alignedCodesAvx512Vbmi;
// The codes path for x's row-units of `unit` on this CPU (dispatch.cc), or null: x carries codes of
// a format it reads, the unit is 32, and the CPU has VBMI.
const AlignedCodes* alignedCodesFor(const DecodedOperand& x, int64_t unit);

#include "matmul_aligned_panel.h"  // fillAlignedPanelWith's definition

}  // namespace fp4kit
