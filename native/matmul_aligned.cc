// The aligned decoded-operand product (matmul_aligned.h): the int16 form of row-units, the choice of
// when it pays, the B panel of the SIMD kernels, and the plain scalar twin of those kernels.
#include "matmul_aligned.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include "threads.h"

namespace fp4kit {

namespace {

// A finite non-zero float as sig · 2^lsbExp (sig > 0); false for ±0. `finite` false for Inf/NaN.
struct FloatParts {
  uint32_t sig;
  int32_t lsbExp;
  bool negative;
};
inline bool floatParts(float x, FloatParts& p, bool& finite) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t field = (bits >> 23) & 0xff, mantissa = bits & 0x7fffff;
  finite = field != 255;
  if (!finite || (field == 0 && mantissa == 0)) return false;
  p.sig = field ? (mantissa | 0x800000u) : mantissa;
  p.lsbExp = field ? static_cast<int32_t>(field) - 150 : -149;
  p.negative = (bits >> 31) != 0;
  return true;
}

}  // namespace

// Two int16 as the int32 of vpdpwssd's operand: the first in the low half.
static inline int32_t packPair(int16_t first, int16_t second) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(first)) | (static_cast<uint32_t>(static_cast<uint16_t>(second)) << 16));
}

// The smallest top with |x| < 2^top and the largest low with every x a multiple of 2^low over a
// row-unit (INT32_MIN, INT32_MAX when all are zero); false if one value is Inf or NaN.
static bool unitRange(const float* values, int64_t count, int32_t& top, int32_t& low) {
  top = INT32_MIN;
  low = INT32_MAX;
  for (int64_t i = 0; i < count; i++) {
    FloatParts p;
    bool finite;
    if (!floatParts(values[i], p, finite)) {
      if (!finite) return false;
      continue;
    }
    top = std::max(top, p.lsbExp + 32 - __builtin_clz(p.sig));
    low = std::min(low, p.lsbExp + __builtin_ctz(p.sig));
  }
  return true;
}

int32_t alignRowUnit(const float* values, int64_t count, int16_t* ints, int32_t& exp) {
  int32_t top, low;
  if (!unitRange(values, count, top, low)) return kUnaligned;
  exp = 0;
  if (top == INT32_MIN) {
    std::fill(ints, ints + count, int16_t(0));
    return 0;
  }
  if (top - low > kAlignedMaxSpan) return kUnaligned;
  exp = low;
  for (int64_t i = 0; i < count; i++) {
    FloatParts p;
    bool finite;
    if (!floatParts(values[i], p, finite)) {
      ints[i] = 0;
      continue;
    }
    // low − lsbExp ≤ ctz(sig): the shift drops only zero bits.
    const int32_t magnitude = static_cast<int32_t>(p.sig >> (low - p.lsbExp));
    ints[i] = static_cast<int16_t>(p.negative ? -magnitude : magnitude);
  }
  return top - low;
}

bool splitRowUnit(const float* values, int64_t count, int16_t* hi, int16_t* lo, int32_t form[4]) {
  int32_t top, low;
  if (!unitRange(values, count, top, low) || top == INT32_MIN) return false;
  // hi: elements that are multiples of 2^(top − 15); its exponent is their lowest set bit.
  const int32_t floor = top - kAlignedMaxSpan;
  int32_t hiLow = INT32_MAX, loTop = INT32_MIN, loLow = INT32_MAX;
  for (int64_t i = 0; i < count; i++) {
    FloatParts p;
    bool finite;
    if (!floatParts(values[i], p, finite)) continue;
    const int32_t low = p.lsbExp + __builtin_ctz(p.sig);
    if (low >= floor) {
      hiLow = std::min(hiLow, low);
    } else {
      loTop = std::max(loTop, p.lsbExp + 32 - __builtin_clz(p.sig));
      loLow = std::min(loLow, low);
    }
  }
  if (loTop == INT32_MIN || loTop - loLow > kAlignedMaxSpan) return false;
  const int32_t expHi = hiLow == INT32_MAX ? floor : hiLow;
  for (int64_t i = 0; i < count; i++) {
    FloatParts p;
    bool finite;
    hi[i] = lo[i] = 0;
    if (!floatParts(values[i], p, finite)) continue;
    const bool isHi = p.lsbExp + __builtin_ctz(p.sig) >= floor;
    const int32_t magnitude = static_cast<int32_t>(p.sig >> ((isHi ? expHi : loLow) - p.lsbExp));
    (isHi ? hi : lo)[i] = static_cast<int16_t>(p.negative ? -magnitude : magnitude);
  }
  form[0] = expHi;
  form[1] = hiLow == INT32_MAX ? 0 : top - expHi;
  form[2] = loLow;
  form[3] = loTop - loLow;
  return true;
}

void splitWideRowUnits(const DecodedOperand& x, AlignedRows& rows) {
  const int64_t unit = rows.unit, pairs = unit / 2;
  std::vector<int16_t> hi(static_cast<size_t>(unit)), lo(static_cast<size_t>(unit));
  rows.splitForms.clear();
  rows.splitLoPairs.clear();
  for (int64_t r = 0; r < rows.rows; r++) {
    for (int64_t j = 0; j < rows.units; j++) {
      const size_t at = static_cast<size_t>(r * rows.units + j);
      if (rows.spans[at] != kUnaligned) continue;
      int32_t form[4];
      if (!splitRowUnit(x.values + r * x.paddedCols + j * unit, unit, hi.data(), lo.data(), form)) continue;
      rows.split[at] = static_cast<int32_t>(rows.splitForms.size() / 4);
      rows.splitForms.insert(rows.splitForms.end(), form, form + 4);
      int32_t* dst = rows.pairs.data() + at * pairs;
      for (int64_t q = 0; q < pairs; q++) {
        dst[q] = packPair(hi[static_cast<size_t>(2 * q)], hi[static_cast<size_t>(2 * q + 1)]);
        rows.splitLoPairs.push_back(packPair(lo[static_cast<size_t>(2 * q)], lo[static_cast<size_t>(2 * q + 1)]));
      }
    }
  }
}

AlignedScratch& threadAlignedScratch() {
  static thread_local AlignedScratch scratch;
  return scratch;
}

void releaseIfLarge(AlignedRows& rows) {
  if (rows.pairs.capacity() * sizeof(int32_t) > kKeptBytes) rows = AlignedRows();
}

void releaseIfLarge(AlignedPanel& p) {
  if (p.pairs.capacity() * sizeof(int32_t) > kKeptBytes) p = AlignedPanel();
}

void alignRowsInit(AlignedRows& out, int64_t rows, int64_t units, int64_t unit) {
  out.rows = rows;
  out.units = units;
  out.unit = unit;
  // alignRows writes every pair, exponent and span of the rows it is given (no clearing pass).
  out.pairs.resize(static_cast<size_t>(rows * units * (unit / 2)));
  out.exps.resize(static_cast<size_t>(rows * units));
  out.spans.resize(static_cast<size_t>(rows * units));
  out.split.assign(static_cast<size_t>(rows * units), -1);
  out.blockRows = 0;
}

void alignRows(const DecodedOperand& x, int64_t unit, int64_t r0, int64_t r1, AlignedRows& out, AlignRowUnitFn align) {
  std::vector<int16_t> ints(static_cast<size_t>(unit));
  const int64_t pairs = unit / 2;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t j = 0; j < out.units; j++) {
      int32_t e = 0;
      const int32_t span = align(x.values + r * x.paddedCols + j * unit, unit, ints.data(), e);
      out.spans[static_cast<size_t>(r * out.units + j)] = span;
      out.exps[static_cast<size_t>(r * out.units + j)] = e;
      int32_t* dst = out.pairs.data() + (r * out.units + j) * pairs;
      // Consecutive int16 are packPair's pairs in memory order (first in the low half): one copy.
      static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "pairs hold the first int16 in the low half");
      if (span == kUnaligned) std::memset(dst, 0, static_cast<size_t>(pairs) * 4);
      else std::memcpy(dst, ints.data(), static_cast<size_t>(pairs) * 4);
    }
  }
}

// Spans of up to `samples` evenly spaced rows of x, counted: index s ≤ 15 a span, kSplitBucket a
// wide row-unit that splits in two (AlignedRows), kWideBucket one that does not.
constexpr int kSplitBucket = kAlignedMaxSpan + 1, kWideBucket = kAlignedMaxSpan + 2;
static void spanHistogram(const DecodedOperand& x, int64_t unit, int64_t units, int64_t samples, std::vector<double>& h) {
  h.assign(kWideBucket + 1, 0.0);
  std::vector<int16_t> ints(static_cast<size_t>(unit)), lo(static_cast<size_t>(unit));
  std::vector<int32_t> spans(static_cast<size_t>(units));
  const AlignedCodes* codes = alignedCodesFor(x, unit);
  const int64_t rows = std::min(samples, x.rows);
  for (int64_t i = 0; i < rows; i++) {
    const int64_t r = i * x.rows / rows;
    if (codes) codes->spans(x, r, spans.data());
    for (int64_t j = 0; j < units; j++) {
      const float* values = x.values + r * x.paddedCols + j * unit;
      int32_t e, form[4];
      const int32_t span = codes ? spans[static_cast<size_t>(j)] : activeAlignRowUnit()(values, unit, ints.data(), e);
      const int bucket = span != kUnaligned ? span : splitRowUnit(values, unit, ints.data(), lo.data(), form) ? kSplitBucket : kWideBucket;
      h[static_cast<size_t>(bucket)] += 1;
    }
  }
}

// The expected share of (row, 16 columns, unit) steps that need the float64 fallback when rows with span histogram `ha` play a and `hb` play b. A split row-unit of a
// counts as span 15 against b, plus a quarter of a step for its second dot.
static double expectedFallback(const std::vector<double>& ha, const std::vector<double>& hb, int64_t unit) {
  double totalA = 0, totalB = 0;
  for (double v : ha) totalA += v;
  for (double v : hb) totalB += v;
  if (totalA == 0 || totalB == 0) return 1.0;
  double fallback = 0;
  for (int sa = 0; sa <= kWideBucket; sa++) {
    const double share = ha[static_cast<size_t>(sa)] / totalA;
    if (sa == kWideBucket) {
      fallback += share;
      continue;
    }
    const int asSpan = sa == kSplitBucket ? kAlignedMaxSpan : sa;
    double failB = 0;  // share of b's row-units that fail against this row-unit of a
    for (int sb = 0; sb <= kWideBucket; sb++)
      if (sb > kAlignedMaxSpan || asSpan + sb + unitBits(unit) > 31) failB += hb[static_cast<size_t>(sb)];
    fallback += share * ((1.0 - std::pow(1.0 - failB / totalB, 16.0)) + (sa == kSplitBucket ? 0.05 : 0.0));
  }
  return fallback;
}

AlignedPlan planAligned(const DecodedOperand& a, const DecodedOperand& b, AlignedRows& aligned) {
  // Aligning the other operand costs about what one row of the product does; below this many rows
  // the float64 kernel is as quick.
  constexpr int64_t kMinRows = 8, kSamples = 64;
  // A fallback lane is one float64 sum, latency-bound (~130 cycles against ~10 for an integer
  // step): Gaussian MXFP8 × MXFP8 operands, estimated at 0.15, ran at half the float64 loop's speed.
  constexpr double kMaxFallback = 0.05;
  if (a.rows == 0 || b.rows == 0) return AlignedPlan::None;
  const int64_t unit = std::min(a.blockSize, b.blockSize);
  const int64_t units = (a.cols + unit - 1) / unit;
  std::vector<double> ha, hb;
  spanHistogram(a, unit, units, kSamples, ha);
  spanHistogram(b, unit, units, kSamples, hb);
  // Only the operand in a's place can split wide row-units: the one that has them goes there.
  const double direct = a.rows >= kMinRows ? expectedFallback(ha, hb, unit) : 2.0;
  const double swapped = b.rows >= kMinRows ? expectedFallback(hb, ha, unit) : 2.0;
  const AlignedPlan plan = std::min(direct, swapped) > kMaxFallback ? AlignedPlan::None : swapped < direct ? AlignedPlan::Swapped : AlignedPlan::Direct;
  if (plan == AlignedPlan::None) return plan;
  const DecodedOperand& x = plan == AlignedPlan::Direct ? a : b;
  alignRowsInit(aligned, x.rows, units, unit);
  const AlignedCodes* codes = alignedCodesFor(x, unit);
  parallelFor(x.rows, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, x.cols)), [&](int64_t r0, int64_t r1) {
    if (codes) codes->rows(x, r0, r1, aligned);
    else alignRows(x, unit, r0, r1, aligned, activeAlignRowUnit());
  });
  splitWideRowUnits(x, aligned);
  summarizeRowBlocksShared(x, aligned, activeAlignedRowsPerBlock());
  return plan;
}

// Blocks [blk0, blk1) of the summary (out sized for all of them).
static void summarizeRowBlockRange(const DecodedOperand& a, const AlignedRows& aligned, int64_t rowsPerBlock, int64_t blk0, int64_t blk1,
                                   AlignedRowBlocks& out) {
  const int64_t units = aligned.units;
  for (int64_t blk = blk0; blk < blk1; blk++) {
    for (int64_t j = 0; j < units; j++) {
      AlignedRowBlock rb{INT32_MIN / 2, INT32_MAX / 2, INT32_MIN / 2, INT32_MAX / 2, INT32_MIN / 2, INT32_MAX / 2, INT32_MIN / 2};
      for (int64_t i = 0; i < rowsPerBlock; i++) {
        const int64_t r = std::min(blk * rowsPerBlock + i, a.rows - 1);
        const size_t ra = static_cast<size_t>(r * units + j);
        const int32_t x = powerOfTwoExponent(a.blockScales[r * a.blocksPerRow + (j * aligned.unit) / a.blockSize]);
        const int32_t span = aligned.spans[ra], e = aligned.exps[ra];
        rb.maxSpan = std::max(rb.maxSpan, span);
        rb.minExp = std::min(rb.minExp, e);
        rb.maxExp = std::max(rb.maxExp, e);
        if (x == INT32_MIN) {
          rb.minScaleExp = INT32_MIN / 2;  // fails every test
          rb.maxScaleExp = INT32_MAX / 2;
          out.rowFactors[ra] = 0.0f;
          continue;
        }
        rb.minScaleExp = std::min(rb.minScaleExp, x);
        rb.maxScaleExp = std::max(rb.maxScaleExp, x);
        rb.minRowExp = std::min(rb.minRowExp, e + x);
        rb.maxRowExp = std::max(rb.maxRowExp, e + x);
        out.rowFactors[ra] = e + x >= -126 && e + x <= 127 ? powerOfTwo(e + x) : 0.0f;
      }
      out.blocks[static_cast<size_t>(blk * units + j)] = rb;
    }
  }
}

static void sizeSummary(const DecodedOperand& a, const AlignedRows& aligned, int64_t rowsPerBlock, AlignedRowBlocks& out) {
  out.blocks.resize(static_cast<size_t>((a.rows + rowsPerBlock - 1) / rowsPerBlock * aligned.units));
  out.rowFactors.resize(static_cast<size_t>(a.rows * aligned.units));
}

void summarizeRowBlocks(const DecodedOperand& a, const AlignedRows& aligned, int64_t rowsPerBlock, AlignedRowBlocks& out) {
  sizeSummary(a, aligned, rowsPerBlock, out);
  summarizeRowBlockRange(a, aligned, rowsPerBlock, 0, (a.rows + rowsPerBlock - 1) / rowsPerBlock, out);
}

void summarizeRowBlocksShared(const DecodedOperand& a, AlignedRows& aligned, int64_t rowsPerBlock) {
  aligned.blockRows = 0;
  if (rowsPerBlock <= 0) return;
  sizeSummary(a, aligned, rowsPerBlock, aligned.summary);
  const int64_t blocks = (a.rows + rowsPerBlock - 1) / rowsPerBlock;
  parallelFor(blocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, aligned.units * rowsPerBlock)),
              [&](int64_t b0, int64_t b1) { summarizeRowBlockRange(a, aligned, rowsPerBlock, b0, b1, aligned.summary); });
  aligned.blockRows = rowsPerBlock;
}

const AlignedRowBlocks& rowBlocksFor(const DecodedOperand& a, const AlignedRows& aligned, int64_t kRows, AlignedRowBlocks& scratch) {
  if (aligned.blockRows == kRows) return aligned.summary;
  summarizeRowBlocks(a, aligned, kRows, scratch);
  return scratch;
}

void fillAlignedPanel(const DecodedOperand& b, int64_t unit, int64_t col0, int64_t cols, int64_t width, AlignedPanel& p, AlignRowUnitFn align) {
  fillAlignedPanelWith(b, unit, col0, cols, width, p, align);
}

void matmulAlignedScalar(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                         int64_t nBegin, int64_t nEnd) {
  const int64_t unit = aAligned.unit, units = aAligned.units, pairs = unit / 2, n = b.rows;
  AlignedRows column;  // one column of b (a row of b's storage) at a time
  alignRowsInit(column, 1, units, unit);
  for (int64_t col = nBegin; col < nEnd; col++) {
    DecodedOperand one = b;
    one.values = b.values + col * b.paddedCols;
    one.rows = 1;
    alignRows(one, unit, 0, 1, column);
    for (int64_t m = 0; m < a.rows; m++) {
      float acc = 0.0f;
      for (int64_t j = 0; j < units; j++) {
        const size_t ja = static_cast<size_t>(m * units + j), jb = static_cast<size_t>(j);
        float d;
        if (alignedPairExact(aAligned.spans[ja], aAligned.exps[ja], column.spans[jb], column.exps[jb], unit)) {
          const int32_t* pa = aAligned.rowPairs(m) + j * pairs;
          const int32_t* pb = column.rowPairs(0) + j * pairs;
          int32_t sum = 0;  // exact: the rule bounds it below 2^31
          for (int64_t q = 0; q < pairs; q++) {
            sum += static_cast<int16_t>(pa[q] & 0xffff) * static_cast<int16_t>(pb[q] & 0xffff);
            sum += static_cast<int16_t>(static_cast<uint32_t>(pa[q]) >> 16) * static_cast<int16_t>(static_cast<uint32_t>(pb[q]) >> 16);
          }
          d = static_cast<float>(sum) * powerOfTwo(aAligned.exps[ja] + column.exps[jb]);
        } else {
          d = static_cast<float>(referenceUnitDot(a.values + m * a.paddedCols + j * unit, b.values + col * b.paddedCols + j * unit, unit));
        }
        const float s = a.blockScales[m * a.blocksPerRow + (j * unit) / a.blockSize] * b.blockScales[col * b.blocksPerRow + (j * unit) / b.blockSize];
        const float partial = d * s;
        acc = acc + partial;
      }
      out[m * n + col] = bias ? acc + bias[col] : acc;
    }
  }
}

}  // namespace fp4kit
