// Gradient quantizers of 1-bit FQT: the C++ twin of lib/kernels/ref/gradient-quant.ts (see
// there for the definition). Phase 1 (ranges) and phase 3 (codes) run over row ranges on the
// addon's threads: each group's min and max do not depend on the order the values are seen in
// (−0 is read as +0 at the end), and each code depends only on its element and its flat index,
// so the bytes never depend on the thread count. Phase 2 (keep decisions) is one pass over the
// groups in index order.
#include "gradient_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "element_codec.h"
#include "threads.h"

namespace fp4kit {
namespace {

constexpr uint64_t kKeepStreamBase = uint64_t(1) << 52;
constexpr int64_t kElementsPerThread = int64_t(1) << 16;

inline int64_t groupOf(int32_t groups, int64_t row, int64_t col) {
  return groups == kGroupsSample ? row : groups == kGroupsChannel ? col : 0;
}

inline double rangeOf(const std::vector<float>& lo, const std::vector<float>& hi, int64_t g) {
  return static_cast<double>(hi[g]) - static_cast<double>(lo[g]);
}

// Phase 1 over rows [r0, r1): widen lo/hi (indexed by group). Returns the first non-finite flat index or −1.
template <int32_t Groups>
int64_t accumulateRangesOf(const GradientArgs& a, int64_t r0, int64_t r1, float* lo, float* hi) {
  for (int64_t r = r0; r < r1; r++) {
    const float* row = a.src + r * a.cols;
    for (int64_t c = 0; c < a.cols; c++) {
      const float x = row[c];
      if (x - x != 0.0f) return r * a.cols + c;
      const int64_t g = groupOf(Groups, r, c);
      if (x < lo[g]) lo[g] = x;
      if (x > hi[g]) hi[g] = x;
    }
  }
  return -1;
}

int64_t accumulateRanges(const GradientArgs& a, int64_t r0, int64_t r1, float* lo, float* hi) {
  if (a.groups == kGroupsSample) return accumulateRangesOf<kGroupsSample>(a, r0, r1, lo, hi);
  if (a.groups == kGroupsChannel) return accumulateRangesOf<kGroupsChannel>(a, r0, r1, lo, hi);
  return accumulateRangesOf<kGroupsTensor>(a, r0, r1, lo, hi);
}

// Phase 3 over rows [r0, r1). u ≥ 0, so truncation is floor; the stream key of randomBits is
// recomputed only when the index's high word changes (the same bits as randomBits).
template <int32_t Groups>
void codesOf(const GradientArgs& a, const float* lo, const double* inv, double B, int64_t r0, int64_t r1) {
  uint32_t keyHigh = 0;
  uint32_t key = streamKey(a.seed, 0);
  for (int64_t r = r0; r < r1; r++) {
    const float* row = a.src + r * a.cols;
    uint8_t* out = a.codes + r * a.cols;
    if (Groups == kGroupsSample && inv[r] == 0) {
      std::fill(out, out + a.cols, uint8_t(0));
      continue;
    }
    for (int64_t c = 0; c < a.cols; c++) {
      const int64_t g = groupOf(Groups, r, c);
      const double m = inv[g];
      if (m == 0) {
        out[c] = 0;
        continue;
      }
      double u = (static_cast<double>(row[c]) - static_cast<double>(lo[g])) * m;
      if (u > B) u = B;
      const int32_t f = static_cast<int32_t>(u);
      const uint64_t index = static_cast<uint64_t>(r * a.cols + c);
      const uint32_t high = static_cast<uint32_t>(index >> 32);
      if (high != keyHigh) {
        keyHigh = high;
        key = streamKey(a.seed, high);
      }
      const uint32_t bits = fmix32(static_cast<uint32_t>(index) ^ key);
      out[c] = static_cast<uint8_t>(f + (static_cast<double>(bits) < (u - static_cast<double>(f)) * 4294967296.0 ? 1 : 0));
    }
  }
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

}  // namespace

int64_t gradientGroupCount(int64_t rows, int64_t cols, int32_t groups) {
  return groups == kGroupsSample ? rows : groups == kGroupsChannel ? cols : 1;
}

int64_t quantizeGradient(const GradientArgs& a) {
  const int64_t count = gradientGroupCount(a.rows, a.cols, a.groups);
  const double B = static_cast<double>((1 << a.bits) - 1);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> lo(static_cast<size_t>(count), inf), hi(static_cast<size_t>(count), -inf);
  const int64_t minRows = std::max<int64_t>(1, kElementsPerThread / std::max<int64_t>(1, a.cols));

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
    parallelFor(a.rows, minRows, [&](int64_t r0, int64_t r1) { noteBad(accumulateRanges(a, r0, r1, lo.data(), hi.data())); });
  } else {
    parallelFor(a.rows, minRows, [&](int64_t r0, int64_t r1) {
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

  // Phase 3.
  parallelFor(a.rows, minRows, [&](int64_t r0, int64_t r1) {
    if (a.groups == kGroupsSample) codesOf<kGroupsSample>(a, lo.data(), inv.data(), B, r0, r1);
    else if (a.groups == kGroupsChannel) codesOf<kGroupsChannel>(a, lo.data(), inv.data(), B, r0, r1);
    else codesOf<kGroupsTensor>(a, lo.data(), inv.data(), B, r0, r1);
  });
  return -1;
}

void dequantizeGradient(const GradientDequantArgs& a) {
  const int64_t minRows = std::max<int64_t>(1, kElementsPerThread / std::max<int64_t>(1, a.cols));
  parallelFor(a.rows, minRows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      for (int64_t c = 0; c < a.cols; c++) {
        const int64_t i = r * a.cols + c;
        const int64_t g = groupOf(a.groups, r, c);
        a.out[i] = a.mask[g] == 0 ? 0.0f
                                  : static_cast<float>(static_cast<double>(a.zeros[g]) + static_cast<double>(a.codes[i]) * static_cast<double>(a.scales[g]));
      }
    }
  });
}

}  // namespace fp4kit
