// The bit-plane product's driver and its scalar row kernel (the reference the SIMD row kernels
// match), and the packing of operands. Layouts and the float order: lib/kernels/ref/bitplane-gemm.ts.
#include "bitplane_gemm.h"

#include <cstring>
#include <vector>

#include "threads.h"

namespace fp4kit {
namespace {

// Operands come from JavaScript byte arrays: any alignment.
inline uint64_t loadWord(const uint64_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline int popcount64(uint64_t v) { return __builtin_popcountll(v); }

// Σ_p 2^p · popcount(plane p of the row): the row's code sum (R⁰ of a binary operand).
int32_t codeSum(const uint64_t* row, int bits, int64_t words) {
  int32_t sum = 0;
  for (int p = 0; p < bits; p++) {
    int32_t count = 0;
    for (int64_t w = 0; w < words; w++) count += popcount64(loadWord(row + p * words + w));
    sum += count << p;
  }
  return sum;
}

// T_j = 2·popcount(pos_j) − popcount(nonzero_j) (binary: − length).
std::vector<int32_t> signSums(const BitplaneMatmulArgs& a, int64_t words) {
  std::vector<int32_t> sums(static_cast<size_t>(a.n));
  const uint64_t* nonzero = a.ternary ? a.signs + signsWordCount(a.n, a.length) : nullptr;
  for (int64_t j = 0; j < a.n; j++) {
    int32_t pos = 0, nz = 0;
    for (int64_t w = 0; w < words; w++) {
      const int64_t at = ((j / kBitplanePanelRows) * words + w) * kBitplanePanelRows + j % kBitplanePanelRows;
      pos += popcount64(loadWord(a.signs + at));
      if (nonzero) nz += popcount64(loadWord(nonzero + at));
    }
    sums[static_cast<size_t>(j)] = 2 * pos - (nonzero ? nz : static_cast<int32_t>(a.length));
  }
  return sums;
}

}  // namespace

void bitplaneRowsScalar(const BitplaneRows& r) {
  for (int64_t j = 0; j < r.n; j++) {
    const int64_t panel = (j / kBitplanePanelRows) * r.words * kBitplanePanelRows + j % kBitplanePanelRows;
    for (int i = 0; i < r.rowCount; i++) {
      int32_t pos = 0, nz = 0;
      for (int p = 0; p < r.bits; p++) {
        int32_t countPos = 0, countNz = 0;
        for (int64_t w = 0; w < r.words; w++) {
          const uint64_t plane = loadWord(r.a[i] + p * r.words + w);
          countPos += popcount64(plane & loadWord(r.pos + panel + w * kBitplanePanelRows));
          if (r.nonzero) countNz += popcount64(plane & loadWord(r.nonzero + panel + w * kBitplanePanelRows));
        }
        pos += countPos << p;
        nz += countNz << p;
      }
      r.rPos[i][j] = pos;
      if (r.nonzero) r.rNonzero[i][j] = nz;
    }
  }
}

void bitplaneMatmul(const BitplaneMatmulArgs& a) {
  const int64_t words = bitplaneWords(a.length);
  const std::vector<int32_t> sums = a.scales ? signSums(a, words) : std::vector<int32_t>();
  const uint64_t* nonzero = a.ternary ? a.signs + signsWordCount(a.n, a.length) : nullptr;
  const BitplaneRowsKernel kernel = activeBitplaneKernel().rows;
  const int64_t rowWords = static_cast<int64_t>(a.bits) * words;
  // One output row: I = 2·R⁺ − R⁰, then the integer or the float form.
  auto finish = [&](int64_t i, const int32_t* rPos, const int32_t* rNonzero, int32_t rowCodeSum) {
    const int64_t g = i / a.rowsPerGroup;
    if (a.outInt) {
      int32_t* out = a.outInt + i * a.n;
      for (int64_t j = 0; j < a.n; j++) out[j] = 2 * rPos[j] - (rNonzero ? rNonzero[j] : rowCodeSum);
    } else {
      float* out = a.outFloat + i * a.n;
      const float scale = a.scales[g], zero = a.zeros[g];
      for (int64_t j = 0; j < a.n; j++) {
        const int32_t product = 2 * rPos[j] - (rNonzero ? rNonzero[j] : rowCodeSum);
        const float scaled = scale * static_cast<float>(product);
        const float shift = zero * static_cast<float>(sums[static_cast<size_t>(j)]);
        out[j] = scaled + shift;
      }
    }
  };
  auto clearRow = [&](int64_t i) {
    if (a.outInt) std::memset(a.outInt + i * a.n, 0, static_cast<size_t>(a.n) * sizeof(int32_t));
    if (a.outFloat) std::memset(a.outFloat + i * a.n, 0, static_cast<size_t>(a.n) * sizeof(float));
  };
  // Each range of rows is owned by one thread: results never depend on the thread count.
  const int64_t work = rowWords * a.n + 1;
  const int64_t minRows = std::max<int64_t>(2, (int64_t(1) << 18) / work);
  parallelFor(a.m, minRows, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> scratch(static_cast<size_t>(a.n) * 4);
    int32_t* rPos[2] = {scratch.data(), scratch.data() + a.n};
    int32_t* rNonzero[2] = {scratch.data() + 2 * a.n, scratch.data() + 3 * a.n};
    int64_t pending[2];
    int count = 0;
    auto flush = [&]() {
      if (count == 0) return;
      BitplaneRows r{};
      for (int t = 0; t < count; t++) {
        r.a[t] = a.planes + pending[t] * rowWords;
        r.rPos[t] = rPos[t];
        r.rNonzero[t] = rNonzero[t];
      }
      r.rowCount = count;
      r.bits = a.bits;
      r.words = words;
      r.pos = a.signs;
      r.nonzero = nonzero;
      r.n = a.n;
      kernel(r);
      for (int t = 0; t < count; t++) {
        finish(pending[t], rPos[t], nonzero ? rNonzero[t] : nullptr, nonzero ? 0 : codeSum(r.a[t], a.bits, words));
      }
      count = 0;
    };
    for (int64_t i = begin; i < end; i++) {
      if (a.mask && a.mask[i / a.rowsPerGroup] == 0) {
        clearRow(i);  // pruned: not multiplied
        continue;
      }
      pending[count++] = i;
      if (count == 2) flush();
    }
    flush();
  });
}

void packSigns(const float* x, int64_t rows, int64_t cols, bool transpose, bool ternary, uint64_t* out) {
  const int64_t outRows = transpose ? cols : rows;
  const int64_t length = transpose ? rows : cols;
  const int64_t words = bitplaneWords(length);
  const int64_t half = signsWordCount(outRows, length);
  std::memset(out, 0, static_cast<size_t>(half * (ternary ? 2 : 1)) * sizeof(uint64_t));
  auto wordOf = [&](int64_t j, int64_t kk) {
    return ((j / kBitplanePanelRows) * words + (kk >> 6)) * kBitplanePanelRows + j % kBitplanePanelRows;
  };
  for (int64_t r = 0; r < rows; r++) {
    const float* row = x + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      const float v = row[c];
      const int64_t j = transpose ? c : r, kk = transpose ? r : c;
      const uint64_t bit = uint64_t(1) << (kk & 63);
      const int64_t at = wordOf(j, kk);
      if (ternary ? v > 0.0f : v >= 0.0f) out[at] |= bit;
      if (ternary && !(v == 0.0f)) out[half + at] |= bit;
    }
  }
}

int64_t packBitPlanes(const uint8_t* codes, int64_t rows, int64_t cols, int bits, bool transpose, uint64_t* out) {
  const int64_t outRows = transpose ? cols : rows;
  const int64_t length = transpose ? rows : cols;
  const int64_t words = bitplaneWords(length);
  std::memset(out, 0, static_cast<size_t>(outRows * bits * words) * sizeof(uint64_t));
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t c = 0; c < cols; c++) {
      const unsigned code = codes[r * cols + c];
      if ((code >> bits) != 0) return r * cols + c;
      const int64_t i = transpose ? c : r, kk = transpose ? r : c;
      const uint64_t bit = uint64_t(1) << (kk & 63);
      for (int p = 0; p < bits; p++) {
        if ((code >> p) & 1) out[(i * bits + p) * words + (kk >> 6)] |= bit;
      }
    }
  }
  return -1;
}

}  // namespace fp4kit
