// Gradient quantizers of 1-bit FQT: the C++ twin of lib/kernels/ref/gradient-quant.ts (see
// there for the definition). Phase 1 (ranges) and phase 3 (codes) run over row ranges on the
// addon's threads: each group's min and max do not depend on the order the values are seen in
// (−0 is read as +0 at the end), and each code depends only on its element and its flat index,
// so the bytes never depend on the thread count. Phase 2 (keep decisions) is one pass over the
// groups in index order.
#include "gradient_quant.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "element_codec.h"
#include "gradient_quant_codes.h"
#include "quantize.h"
#include "threads.h"

namespace fp4kit {
namespace {

constexpr uint64_t kKeepStreamBase = uint64_t(1) << 52;
constexpr int64_t kElementsPerThread = int64_t(1) << 16;

inline double rangeOf(const std::vector<float>& lo, const std::vector<float>& hi, int64_t g) {
  return static_cast<double>(hi[g]) - static_cast<double>(lo[g]);
}

// Phase 1 over rows [r0, r1): widen lo/hi (indexed by group). Returns the first non-finite flat index or −1.
// Written branch-free so the compiler vectorises it: a row is first scanned with an integer
// non-finite flag and, only if that is set, again to find the first bad element. A row's
// minimum is taken in 16 lanes, which may meet +0 and −0 in another order than the reference:
// the sign of a zero bound is dropped afterwards.
constexpr int kLanes = 16;

inline uint32_t nonFinite(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return (b & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
}

int64_t firstNonFinite(const float* row, int64_t r, int64_t cols) {
  for (int64_t c = 0; c < cols; c++) {
    if (nonFinite(row[c])) return r * cols + c;
  }
  return -1;
}

// Channel groups: one group per column.
uint32_t rangesOfColumns(const float* __restrict row, int64_t cols, float* __restrict lo, float* __restrict hi) {
  uint32_t bad = 0;
  for (int64_t c = 0; c < cols; c++) {
    const float x = row[c];
    bad |= nonFinite(x);
    lo[c] = x < lo[c] ? x : lo[c];
    hi[c] = x > hi[c] ? x : hi[c];
  }
  return bad;
}

// One group for the whole row.
uint32_t rangesOfRow(const float* __restrict row, int64_t cols, float& lo, float& hi) {
  float l[kLanes], h[kLanes];
  uint32_t bad[kLanes];
  for (int k = 0; k < kLanes; k++) {
    l[k] = lo;
    h[k] = hi;
    bad[k] = 0;
  }
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) {
    for (int k = 0; k < kLanes; k++) {
      const float x = row[c + k];
      bad[k] |= nonFinite(x);
      l[k] = x < l[k] ? x : l[k];
      h[k] = x > h[k] ? x : h[k];
    }
  }
  for (; c < cols; c++) {
    const float x = row[c];
    bad[0] |= nonFinite(x);
    l[0] = x < l[0] ? x : l[0];
    h[0] = x > h[0] ? x : h[0];
  }
  uint32_t any = 0;
  for (int k = 0; k < kLanes; k++) {
    any |= bad[k];
    lo = l[k] < lo ? l[k] : lo;
    hi = h[k] > hi ? h[k] : hi;
  }
  return any;
}

int64_t accumulateRanges(const GradientArgs& a, int64_t r0, int64_t r1, float* lo, float* hi) {
  for (int64_t r = r0; r < r1; r++) {
    const float* row = a.src + r * a.cols;
    uint32_t bad;
    if (a.groups == kGroupsChannel) bad = rangesOfColumns(row, a.cols, lo, hi);
    else {
      const int64_t g = a.groups == kGroupsSample ? r : 0;
      bad = rangesOfRow(row, a.cols, lo[g], hi[g]);
    }
    if (bad) return firstNonFinite(row, r, a.cols);
  }
  return -1;
}

double keepUniform(uint32_t seed, int64_t g) {
  const uint32_t r1 = randomBits(seed, kKeepStreamBase + 2 * static_cast<uint64_t>(g));
  const uint32_t r2 = randomBits(seed, kKeepStreamBase + 2 * static_cast<uint64_t>(g) + 1);
  return static_cast<double>((static_cast<uint64_t>(r1) << 21) | (r2 >> 11)) * 0x1p-53;
}

void agpProbabilities(const std::vector<float>& lo, const std::vector<float>& hi, int64_t count, int32_t bits, std::vector<double>& p) {
  const double K = static_cast<double>(count) / static_cast<double>(bits);
  double c = 0;
  int64_t nClamped = 0;
  std::vector<uint8_t> clamped(static_cast<size_t>(count), 0);
  for (;;) {
    double S = 0;
    for (int64_t g = 0; g < count; g++) {
      const double R = rangeOf(lo, hi, g);
      if (R > 0 && clamped[g] == 0) S += R;
    }
    const double Krem = K - static_cast<double>(nClamped);
    if (S == 0 || Krem <= 0) break;
    c = Krem / S;
    int64_t newly = 0;
    for (int64_t g = 0; g < count; g++) {
      const double R = rangeOf(lo, hi, g);
      if (R > 0 && clamped[g] == 0 && c * R >= 1) {
        clamped[g] = 1;
        newly++;
      }
    }
    if (newly == 0) break;
    nClamped += newly;
  }
  for (int64_t g = 0; g < count; g++) {
    const double R = rangeOf(lo, hi, g);
    if (clamped[g] != 0) p[g] = 1;
    else if (R > 0) p[g] = std::min(1.0, c * R);
    else p[g] = lo[g] != 0 ? 1 : 0;
  }
}

void topkProbabilities(const std::vector<float>& lo, const std::vector<float>& hi, int64_t count, int32_t bits, std::vector<double>& p) {
  if (count == 0) return;
  const int64_t k = std::max<int64_t>(1, count / bits);
  std::vector<float> scores(static_cast<size_t>(count));
  for (int64_t g = 0; g < count; g++) scores[g] = std::max(-lo[g], hi[g]);
  std::vector<float> sorted = scores;
  std::nth_element(sorted.begin(), sorted.begin() + (count - k), sorted.end());
  const float threshold = sorted[count - k];
  for (int64_t g = 0; g < count; g++) p[g] = scores[g] >= threshold ? 1 : 0;
}

// Phase 3's run kernel for the SIMD level dispatch.cc chose (FP4KIT_SIMD caps it as for the rest).
GradientCodesRun chosenCodesRun() {
  static const GradientCodesRun run = [] {
    const std::string level = activeKernels().simd;
#if defined(__x86_64__) || defined(_M_X64)
    if (level == "avx512") return &gradientCodesRunAvx512;
    if (level == "avx2") return &gradientCodesRunAvx2;
#endif
    return &gradientCodesRunScalar;
  }();
  return run;
}

}  // namespace

FP4KIT_GRADIENT_CODES_RUN(gradientCodesRunScalar)

int64_t gradientGroupCount(int64_t rows, int64_t cols, int32_t groups) {
  return groups == kGroupsSample ? rows : groups == kGroupsChannel ? cols : 1;
}

// The rows the element loops visit: none when rows are empty (cols = 0), however many there are
// (2^40 empty rows must not be walked one by one). Every backend uses the same rule.
static int64_t gradientElementRows(int64_t rows, int64_t cols) { return cols == 0 ? 0 : rows; }

int64_t quantizeGradient(const GradientArgs& a) {
  const int64_t count = gradientGroupCount(a.rows, a.cols, a.groups);
  const double B = static_cast<double>((1 << a.bits) - 1);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> lo(static_cast<size_t>(count), inf), hi(static_cast<size_t>(count), -inf);
  const int64_t minRows = std::max<int64_t>(1, kElementsPerThread / std::max<int64_t>(1, a.cols));
  const int64_t rows = gradientElementRows(a.rows, a.cols);

  // Phase 1. Sample groups: each range owns its rows' groups. Otherwise: partial ranges merged
  // under a lock (min and max of a set do not depend on the merge order).
  std::mutex lock;
  int64_t firstBad = -1;
  auto noteBad = [&](int64_t bad) {
    if (bad < 0) return;
    std::lock_guard<std::mutex> guard(lock);
    if (firstBad < 0 || bad < firstBad) firstBad = bad;
  };
  if (a.groups == kGroupsSample) {
    parallelFor(rows, minRows, [&](int64_t r0, int64_t r1) { noteBad(accumulateRanges(a, r0, r1, lo.data(), hi.data())); });
  } else {
    parallelFor(rows, minRows, [&](int64_t r0, int64_t r1) {
      std::vector<float> l(static_cast<size_t>(count), inf), h(static_cast<size_t>(count), -inf);
      const int64_t bad = accumulateRanges(a, r0, r1, l.data(), h.data());
      std::lock_guard<std::mutex> guard(lock);
      if (bad >= 0 && (firstBad < 0 || bad < firstBad)) firstBad = bad;
      for (int64_t g = 0; g < count; g++) {
        if (l[g] < lo[g]) lo[g] = l[g];
        if (h[g] > hi[g]) hi[g] = h[g];
      }
    });
  }
  if (firstBad >= 0) return firstBad;
  for (int64_t g = 0; g < count; g++) {
    if (lo[g] > hi[g]) lo[g] = hi[g] = 0;
    lo[g] = lo[g] + 0.0f;
    hi[g] = hi[g] + 0.0f;
  }

  // Phase 2.
  std::vector<double> p(static_cast<size_t>(count), 1.0), inv(static_cast<size_t>(count), 0.0);
  if (a.prune == kPruneAgp) agpProbabilities(lo, hi, count, a.bits, p);
  else if (a.prune == kPruneTopk) topkProbabilities(lo, hi, count, a.bits, p);
  for (int64_t g = 0; g < count; g++) {
    const double pg = p[g];
    const bool kept = a.prune == kPruneAgp ? keepUniform(a.seed, g) < pg : pg == 1;
    a.keepProbability[g] = static_cast<float>(pg);
    a.mask[g] = kept ? 1 : 0;
    if (kept) {
      const double l = lo[g];
      const double R = static_cast<double>(hi[g]) - l;
      a.scales[g] = static_cast<float>(R / B / pg);
      a.zeros[g] = static_cast<float>(l / pg);
      inv[g] = R > 0 ? B / R : 0;
    } else {
      a.scales[g] = 0;
      a.zeros[g] = 0;
      inv[g] = 0;
    }
  }

  // Phase 3, in runs of a row that never cross a multiple of 2^32 in the flat index (one stream key per run).
  const std::vector<double> lo64(lo.begin(), lo.end());
  const GradientCodesRun run = chosenCodesRun();
  const bool perColumn = a.groups == kGroupsChannel;
  parallelFor(rows, minRows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* row = a.src + r * a.cols;
      uint8_t* out = a.codes + r * a.cols;
      const int64_t g = a.groups == kGroupsSample ? r : 0;
      if (!perColumn && inv[g] == 0) {  // pruned or constant: every code is 0
        std::fill(out, out + a.cols, uint8_t(0));
        continue;
      }
      for (int64_t c = 0; c < a.cols;) {
        const uint64_t index = static_cast<uint64_t>(r * a.cols + c);
        const uint32_t low = static_cast<uint32_t>(index);
        const int64_t len = std::min<int64_t>(a.cols - c, static_cast<int64_t>((uint64_t(1) << 32) - low));
        const uint32_t key = streamKey(a.seed, static_cast<uint32_t>(index >> 32));
        if (perColumn) run(row + c, out + c, len, lo64.data() + c, inv.data() + c, true, B, key, low);
        else run(row + c, out + c, len, lo64.data() + g, inv.data() + g, false, B, key, low);
        c += len;
      }
    }
  });
  return -1;
}

// x̂ = f32(zero + code·scale), +0 in a pruned group; branch-free rows so the compiler vectorises them.
void dequantizeRow(const uint8_t* __restrict codes, float* __restrict out, int64_t n, float zero, float scale) {
  const double z = zero, sc = scale;
  for (int64_t j = 0; j < n; j++) out[j] = static_cast<float>(z + static_cast<double>(codes[j]) * sc);
}

void dequantizeColumns(const uint8_t* __restrict codes, float* __restrict out, int64_t n, const float* __restrict zeros,
                       const float* __restrict scales, const uint8_t* __restrict mask) {
  for (int64_t j = 0; j < n; j++) {
    const float v = static_cast<float>(static_cast<double>(zeros[j]) + static_cast<double>(codes[j]) * static_cast<double>(scales[j]));
    out[j] = mask[j] != 0 ? v : 0.0f;
  }
}

void dequantizeGradient(const GradientDequantArgs& a) {
  const int64_t minRows = std::max<int64_t>(1, kElementsPerThread / std::max<int64_t>(1, a.cols));
  parallelFor(gradientElementRows(a.rows, a.cols), minRows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const uint8_t* codes = a.codes + r * a.cols;
      float* out = a.out + r * a.cols;
      if (a.groups == kGroupsChannel) {
        dequantizeColumns(codes, out, a.cols, a.zeros, a.scales, a.mask);
        continue;
      }
      const int64_t g = a.groups == kGroupsSample ? r : 0;
      if (a.mask[g] == 0) std::fill(out, out + a.cols, 0.0f);
      else dequantizeRow(codes, out, a.cols, a.zeros[g], a.scales[g]);
    }
  });
}

}  // namespace fp4kit
