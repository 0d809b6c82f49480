// error_sums.h's vector loop, written once with GCC vector extensions and compiled by each ISA
// file with its own flags (quantize_avx512.cc, quantize_avx2.cc, quantize_neon.cc). The
// reference's eight float64 lanes (element c in lane c mod 8) are kParts native registers: one
// on AVX-512, two on AVX2, four on NEON. (A 64-byte vector type on AVX2 or NEON is not kept in
// registers by GCC 12: its loop-carried sums went through the stack, and the vector loop was
// slower than the scalar one.) The source is read kLanes elements at a time through
// quantize_simd.h's exact widening; the row's last cols mod max(8, kLanes) elements continue the
// same lanes one at a time. With a histogram, the differences are counted by binade in registers
// too (ErrorBinWindow below); the row's last elements one increment each.
#pragma once

#include <cstring>

#include "error_sums.h"
#include "quantize_simd.h"  // included from its end: kLanes, F32v, U32v, I32v, loadBitsVector

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// Float64 lanes per native register, and registers per eight lanes.
constexpr int kF64Lanes = kLanes / 2;
constexpr int kParts = 8 / kF64Lanes;
typedef double F64reg __attribute__((vector_size(8 * kF64Lanes)));
typedef uint64_t U64reg __attribute__((vector_size(8 * kF64Lanes)));
typedef float F32reg __attribute__((vector_size(4 * kF64Lanes)));  // the float32 values of one register

// Elements per step: whole source vectors, at least the eight lanes.
constexpr int kErrorStep = kLanes > 8 ? kLanes : 8;
constexpr int kStepParts = kErrorStep / kF64Lanes;  // registers of float64 per step

// float32 → float64 of one register's values (exact). GCC 12's generic conversion goes through
// halves and the stack; on x86 one vcvtps2pd does them all.
static inline F64reg widen(F32reg f) {
#if defined(__AVX512F__) && FP4KIT_LANES == 16
  return (F64reg)_mm512_cvtps_pd((__m256)f);
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  return (F64reg)_mm256_cvtps_pd((__m128)f);
#else
  return __builtin_convertvector(f, F64reg);
#endif
}

// Source elements [i, i + kErrorStep) as kStepParts registers of float64.
static inline void sourceParts(const void* src, int32_t dtype, int64_t i, F64reg* x) {
#if FP4KIT_LANES == 16
  const F32v v = (F32v)loadBitsVector(src, dtype, i);
  x[0] = widen(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7));
  x[1] = widen(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
#elif FP4KIT_LANES == 8
  const F32v v = (F32v)loadBitsVector(src, dtype, i);
  x[0] = widen(__builtin_shufflevector(v, v, 0, 1, 2, 3));
  x[1] = widen(__builtin_shufflevector(v, v, 4, 5, 6, 7));
#else
  const F32v a = (F32v)loadBitsVector(src, dtype, i), b = (F32v)loadBitsVector(src, dtype, i + 4);
  x[0] = widen(__builtin_shufflevector(a, a, 0, 1));
  x[1] = widen(__builtin_shufflevector(a, a, 2, 3));
  x[2] = widen(__builtin_shufflevector(b, b, 0, 1));
  x[3] = widen(__builtin_shufflevector(b, b, 2, 3));
#endif
}

// One register of decoded values, widened.
static inline F64reg decodedPart(const float* p) {
  F32reg f;
  std::memcpy(&f, p, sizeof f);
  return widen(f);
}

// The high 32 bits of two registers of differences (sign, exponent, top of the fraction) in one
// register of 32-bit lanes, in some order (the counting does not care which lane holds which).
static inline U32v highWords(F64reg a, F64reg b) {
#if defined(__AVX512F__) && FP4KIT_LANES == 16
  return (U32v)_mm512_shuffle_ps((__m512)a, (__m512)b, 0xdd);
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  return (U32v)_mm256_shuffle_ps((__m256)a, (__m256)b, 0xdd);
#else
  return __builtin_shufflevector((U32v)a, (U32v)b, 1, 3, 5, 7);
#endif
}

// 1 << count per lane, 0 where count is outside 0 … 31: vpsllvd's own rule on x86 (a count is
// unsigned there, so a negative one is large); NEON's shift takes the count's low byte, signed
// (negative: a right shift), so the count is clamped to ±32 first.
static inline U32v oneShiftedOrZero(I32v count) {
#if defined(__AVX512F__) && FP4KIT_LANES == 16
  return (U32v)_mm512_sllv_epi32(_mm512_set1_epi32(1), (__m512i)count);
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  return (U32v)_mm256_sllv_epi32(_mm256_set1_epi32(1), (__m256i)count);
#else
  return (U32v)vshlq_u32(vdupq_n_u32(1), (int32x4_t)maxv(minv(count, splat(32)), splat(-32)));
#endif
}

// Whether every lane of a comparison result (0 or −1 per lane) is set.
static inline bool allLanes(I32v mask) {
#if defined(__AVX512F__) && FP4KIT_LANES == 16
  return _mm512_movepi32_mask((__m512i)mask) == 0xffff;
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  return _mm256_movemask_ps((__m256)mask) == 0xff;
#else
  return vminvq_u32((uint32x4_t)mask) == 0xffffffffu;
#endif
}

// The histogram's vector counting, on the differences' high words (kWords registers a step): a
// window of 16 consecutive binades (biased exponents lo … lo + 15) counted in two registers of
// 4-bit counters — nibble j of a lane of nibbles[k] counts that lane's elements of exponent
// lo + 8k + j: an element adds 1 << 4·(E − lo − 8k), which is 0 outside register k's eight — and
// the exact elements (d = 0: exponent 0, as no difference of float32 values is a float64
// subnormal) in a register of their own. A nibble gains at most kWords a step: every few steps
// the nibbles are moved into byte counters (even and odd nibbles apart), and every 17 moves the
// bytes into counts, before a byte can pass 255. Any other element (outside the window, Inf, NaN)
// is counted one at a time, and one above the window moves the window up to it (everything is
// emptied into counts first), so the window follows the largest errors and the mass below them.
// Integer counts: the same totals however the elements are split between the window and the
// one-at-a-time path. Every method is inlined: a call would take the object's address and keep
// its registers in memory.
struct ErrorBinWindow {
  static constexpr int kWords = kStepParts / 2;
  static constexpr int kStepsPerMove = 15 / kWords;  // before a nibble can pass 15
  static constexpr int kMovesPerEmpty = 17;          // 17 × 15 = 255: before a byte can pass 255
  static constexpr int32_t kLowest = fp4kit::kErrorBinOffset + 1;                              // binade −149
  static constexpr int32_t kHighest = fp4kit::kErrorBinOffset + fp4kit::kErrorBinInfinite - 1;  // binade 128
  int32_t lo = -16;  // no window yet: no exponent is in lo … lo + 15
  U32v loField = U32v{} + (static_cast<uint32_t>(lo) << 20);  // lo in the exponent field, per lane
  int steps = 0;  // since the nibbles were last moved
  int moves = 0;  // since the bytes were last emptied
  U32v nibbles[2] = {};  // binades lo + 8k + j in nibble j
  U32v bytes[4] = {};    // bytes[2k]: binades lo + 8k + 2j in byte j; bytes[2k + 1]: lo + 8k + 2j + 1
  I32v exact = {};       // minus the exact elements, per lane
  uint64_t* counts;

  explicit ErrorBinWindow(uint64_t* c) : counts(c) {}

  // The nibbles into the bytes, and from zero again.
  __attribute__((always_inline)) void moveNibbles() {
    for (int k = 0; k < 2; k++) {
      bytes[2 * k] += nibbles[k] & 0x0f0f0f0fu;
      bytes[2 * k + 1] += (nibbles[k] >> 4) & 0x0f0f0f0fu;
      nibbles[k] = U32v{};
    }
  }

  // Everything into counts, and from zero again.
  __attribute__((always_inline)) void empty() {
    moveNibbles();
    // Through a copy, indexed by constants only: a member indexed by a variable, or whose address
    // is taken, would be kept in memory throughout the loop.
    const U32v copy[5] = {bytes[0], bytes[1], bytes[2], bytes[3], (U32v)exact};
    uint32_t lanes[5][kLanes];
    std::memcpy(lanes, copy, sizeof lanes);
    // Before the first window no element can be in it (its counters are 0); after, lo keeps the
    // window's bins within the binades' (1 … 278), so no count lands outside counts.
    if (lo >= kLowest && lo <= kHighest - 15)
      for (int r = 0; r < 4; r++)
        for (uint32_t v : lanes[r])
          for (int j = 0; v != 0; j++, v >>= 8) counts[lo + 8 * (r / 2) + 2 * j + r % 2 - fp4kit::kErrorBinOffset] += v & 0xff;
    for (uint32_t v : lanes[4]) counts[fp4kit::kErrorBinExact] += static_cast<uint64_t>(-int64_t(static_cast<int32_t>(v)));
    bytes[0] = bytes[1] = bytes[2] = bytes[3] = U32v{};
    exact = I32v{};
    moves = 0;
  }

  // One step's differences (kStepParts registers).
  __attribute__((always_inline)) void add(const F64reg* d) {
    I32v counted = splat(-1);
    for (int w = 0; w < kWords; w++) {
      // The exponent field in place, and 4·(E − lo) from it: a difference of multiples of 2^20
      // (modulo 2^32: below the first window it can wrap, to a shift outside 0 … 60 all the
      // same), then an arithmetic shift.
      const U32v exponentBits = highWords(d[2 * w], d[2 * w + 1]) & 0x7ff00000u;
      const I32v shift = (I32v)(exponentBits - loField) >> 18;  // 0, 4, …, 60 in the window
      nibbles[0] += oneShiftedOrZero(shift);
      nibbles[1] += oneShiftedOrZero(shift - 32);
      const I32v isExact = (I32v)(exponentBits == 0u);
      exact += isExact;
      counted &= ((shift & ~0x3c) == 0) | isExact;
    }
    if (__builtin_expect(!allLanes(counted), 0)) addOutliers(d);
  }

  // How many steps add() may take before stepped() (the nibbles' room).
  int room() const { return kStepsPerMove - steps; }

  // After n steps of add(): the nibbles moved when full, the bytes emptied when full. (A window
  // move empties everything in between: the counters then hold fewer steps than counted here,
  // which only moves and empties them early.)
  __attribute__((always_inline)) void stepped(int n) {
    steps += n;
    if (steps < kStepsPerMove) return;
    steps = 0;
    moveNibbles();
    if (++moves == kMovesPerEmpty) empty();
  }

  // The step's elements the window did not count, one at a time; the window moves up to the largest.
  __attribute__((always_inline)) void addOutliers(const F64reg* d) {
    int32_t top = -1;
    double v[kErrorStep];
    std::memcpy(v, d, sizeof v);
    for (double x : v) {
      uint64_t bits;
      std::memcpy(&bits, &x, sizeof bits);
      const int32_t e = static_cast<int32_t>((bits >> 52) & 0x7ff);
      if (e == 0 || (e >= lo && e <= lo + 15)) continue;  // counted by the window
      counts[fp4kit::errorBin(x)]++;
      if (e <= kHighest && e > top) top = e;
    }
    if (top > lo + 15) {
      empty();
      // Two binades of room above the largest so far; within the binades a difference can have.
      lo = std::min(std::max(top - 13, kLowest), kHighest - 15);
      loField = U32v{} + (static_cast<uint32_t>(lo) << 20);
    }
  }
};

// One loop per dtype (a constant here: the widening's branches fold away and leave the registers
// to the sums) and per whether it counts.
template <bool kCount, int32_t dtype>
static void errorSumsVectorRows(const void* src, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd, double* rowSums,
                                double* maxAbs, uint64_t* counts) {
  ErrorBinWindow window(counts);
  F64reg m[kParts];
  for (int p = 0; p < kParts; p++) m[p] = F64reg{} + *maxAbs;
  for (int64_t r = rowBegin; r < rowEnd; r++) {
    const int64_t base = r * cols;
    F64reg num[kParts] = {}, den[kParts] = {};
    const int64_t steps = cols / kErrorStep;
    for (int64_t step = 0; step < steps;) {
      // Runs of steps the window's counters have room for, so that no step has to ask.
      const int64_t run = kCount ? std::min<int64_t>(steps - step, window.room()) : steps - step;
      for (const int64_t end = step + run; step < end; step++) {
        const int64_t c = step * kErrorStep;
        F64reg x[kStepParts], d[kStepParts];
        sourceParts(src, dtype, base + c, x);
        for (int q = 0; q < kStepParts; q++) {
          // Register q of the step holds lanes (q mod kParts)·kF64Lanes …: num += d·d, den += x·x,
          // m = max(m, |d|), where max keeps m for a NaN |d| (the comparison is false).
          const int p = q % kParts;
          d[q] = x[q] - decodedPart(decoded + base + c + q * kF64Lanes);
          num[p] += d[q] * d[q];
          den[p] += x[q] * x[q];
          const F64reg a = (F64reg)((U64reg)d[q] & 0x7fffffffffffffffull);
          m[p] = a > m[p] ? a : m[p];
        }
        if (kCount) window.add(d);
      }
      if (kCount) window.stepped(static_cast<int>(run));
    }
    int64_t c = steps * kErrorStep;
    double n[8], s[8], mx[8];
    std::memcpy(n, num, sizeof n);
    std::memcpy(s, den, sizeof s);
    std::memcpy(mx, m, sizeof mx);
    // The rest of the row, lane c mod 8 (c is a multiple of 8 here, so lane i takes c + i first).
    for (; c < cols; c++)
      fp4kit::errorElement(fp4kit::bitsToFloat(fp4kit::loadBits(src, dtype, base + c)), decoded[base + c], n[c & 7], s[c & 7], mx[c & 7],
                           counts);
    std::memcpy(m, mx, sizeof mx);
    rowSums[2 * r] = fp4kit::laneTree(n);
    rowSums[2 * r + 1] = fp4kit::laneTree(s);
  }
  if (kCount) window.empty();
  double mx[8];
  std::memcpy(mx, m, sizeof mx);
  double result = *maxAbs;
  for (double v : mx)
    if (v > result) result = v;
  *maxAbs = result;
}

static void errorSumsVector(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd,
                            double* rowSums, double* maxAbs, uint64_t* counts) {
  using fp4kit::kBf16;
  using fp4kit::kF32;
  if (counts != nullptr) {
    if (dtype == kF32) errorSumsVectorRows<true, kF32>(src, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, counts);
    else if (dtype == kBf16) errorSumsVectorRows<true, kBf16>(src, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, counts);
    else errorSumsVectorRows<true, fp4kit::kF16>(src, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, counts);
  } else {
    if (dtype == kF32) errorSumsVectorRows<false, kF32>(src, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, nullptr);
    else if (dtype == kBf16) errorSumsVectorRows<false, kBf16>(src, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, nullptr);
    else errorSumsVectorRows<false, fp4kit::kF16>(src, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, nullptr);
  }
}
