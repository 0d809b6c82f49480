// The bit-plane product's driver and its scalar row kernel (the reference the SIMD row kernels
// match), and the packing of operands. Layouts and the float order: lib/kernels/ref/bitplane-gemm.ts.
#include "bitplane_gemm.h"

#include <algorithm>
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
  // No output: nothing to read either (an empty signs operand has no panel for the kernels to load).
  if (a.m == 0 || a.n == 0) return;
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

// Packing. Rows of the output are independent, so threads take ranges of them (each word is
// written by one thread: the same bits for any thread count). Transposed, a thread walks its
// columns of x in runs of 64 source rows, building one word per column in a small local array,
// so it reads x row by row.
namespace {

inline int64_t signWord(int64_t j, int64_t kk, int64_t words) {
  return ((j / kBitplanePanelRows) * words + (kk >> 6)) * kBitplanePanelRows + j % kBitplanePanelRows;
}

inline bool positive(float v, bool ternary) { return ternary ? v > 0.0f : v >= 0.0f; }

constexpr int64_t kColumnsPerTask = 64;
// A thread's columns are packed in blocks of at most this many, so its scratch has a fixed size
// (a row of 2^31 columns must not ask for gigabytes) and each source row is read in 4 KiB runs.
constexpr int64_t kColumnsPerBlock = 1024;

// Visits columns [begin·kColumnsPerTask, min(cols, end·kColumnsPerTask)) in blocks [c0, c1).
template <typename F>
void forEachColumnBlock(int64_t beginTask, int64_t endTask, int64_t cols, F f) {
  const int64_t last = std::min(cols, endTask * kColumnsPerTask);
  for (int64_t c0 = beginTask * kColumnsPerTask; c0 < last; c0 += kColumnsPerBlock) f(c0, std::min(last, c0 + kColumnsPerBlock));
}

}  // namespace

void packSigns(const float* x, int64_t rows, int64_t cols, bool transpose, bool ternary, uint64_t* out) {
  const int64_t outRows = transpose ? cols : rows;
  const int64_t length = transpose ? rows : cols;
  const int64_t words = bitplaneWords(length);
  const int64_t half = signsWordCount(outRows, length);
  uint64_t* nonzero = ternary ? out + half : nullptr;
  if (words == 0) return;  // reduction length 0: no words to write (however many rows or columns)
  if (!transpose) {
    parallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; r++) {
        const float* row = x + r * cols;
        for (int64_t w = 0; w < words; w++) {
          uint64_t pos = 0, nz = 0;
          const int64_t c0 = w * 64, count = std::min<int64_t>(64, cols - c0);
          for (int64_t b = 0; b < count; b++) {
            const float v = row[c0 + b];
            pos |= static_cast<uint64_t>(positive(v, ternary)) << b;
            nz |= static_cast<uint64_t>(!(v == 0.0f)) << b;
          }
          out[signWord(r, c0, words)] = pos;
          if (nonzero) nonzero[signWord(r, c0, words)] = nz;
        }
      }
    });
  } else {
    const int64_t tasks = (cols + kColumnsPerTask - 1) / kColumnsPerTask;
    parallelFor(tasks, 1, [&](int64_t begin, int64_t end) {
      std::vector<uint64_t> pos(static_cast<size_t>(kColumnsPerBlock)), nz(static_cast<size_t>(kColumnsPerBlock));
      forEachColumnBlock(begin, end, cols, [&](int64_t c0, int64_t c1) {
        for (int64_t r0 = 0; r0 < rows; r0 += 64) {
          std::fill(pos.begin(), pos.end(), 0);
          std::fill(nz.begin(), nz.end(), 0);
          const int64_t count = std::min<int64_t>(64, rows - r0);
          for (int64_t b = 0; b < count; b++) {
            const float* row = x + (r0 + b) * cols;
            for (int64_t c = c0; c < c1; c++) {
              const float v = row[c];
              pos[static_cast<size_t>(c - c0)] |= static_cast<uint64_t>(positive(v, ternary)) << b;
              nz[static_cast<size_t>(c - c0)] |= static_cast<uint64_t>(!(v == 0.0f)) << b;
            }
          }
          for (int64_t c = c0; c < c1; c++) {
            out[signWord(c, r0, words)] = pos[static_cast<size_t>(c - c0)];
            if (nonzero) nonzero[signWord(c, r0, words)] = nz[static_cast<size_t>(c - c0)];
          }
        }
      });
    });
  }
  // Rows past outRows in the last panel stay 0.
  for (int64_t j = outRows; j < (outRows + kBitplanePanelRows - 1) / kBitplanePanelRows * kBitplanePanelRows; j++) {
    for (int64_t w = 0; w < words; w++) {
      out[signWord(j, w * 64, words)] = 0;
      if (nonzero) nonzero[signWord(j, w * 64, words)] = 0;
    }
  }
}

int64_t packBitPlanes(const uint8_t* codes, int64_t rows, int64_t cols, int bits, bool transpose, uint64_t* out) {
  const int64_t length = transpose ? rows : cols;
  const int64_t words = bitplaneWords(length);
  // Codes are checked first, in index order, so the index reported does not depend on threads.
  for (int64_t i = 0; i < rows * cols; i++) {
    if ((static_cast<unsigned>(codes[i]) >> bits) != 0) return i;
  }
  if (words == 0) return -1;  // reduction length 0: no words to write (however many rows or columns)
  if (!transpose) {
    parallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; r++) {
        const uint8_t* row = codes + r * cols;
        for (int64_t w = 0; w < words; w++) {
          uint64_t plane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          const int64_t c0 = w * 64, count = std::min<int64_t>(64, cols - c0);
          for (int64_t b = 0; b < count; b++) {
            const uint64_t code = row[c0 + b];
            for (int p = 0; p < bits; p++) plane[p] |= ((code >> p) & 1) << b;
          }
          for (int p = 0; p < bits; p++) out[(r * bits + p) * words + w] = plane[p];
        }
      }
    });
  } else {
    const int64_t tasks = (cols + kColumnsPerTask - 1) / kColumnsPerTask;
    parallelFor(tasks, 1, [&](int64_t begin, int64_t end) {
      std::vector<uint64_t> plane(static_cast<size_t>(kColumnsPerBlock * bits));
      forEachColumnBlock(begin, end, cols, [&](int64_t c0, int64_t c1) {
        for (int64_t r0 = 0; r0 < rows; r0 += 64) {
          std::fill(plane.begin(), plane.end(), 0);
          const int64_t count = std::min<int64_t>(64, rows - r0);
          for (int64_t b = 0; b < count; b++) {
            const uint8_t* row = codes + (r0 + b) * cols;
            for (int64_t c = c0; c < c1; c++) {
              const uint64_t code = row[c];
              for (int p = 0; p < bits; p++) plane[static_cast<size_t>((c - c0) * bits + p)] |= ((code >> p) & 1) << b;
            }
          }
          for (int64_t c = c0; c < c1; c++) {
            for (int p = 0; p < bits; p++) out[(c * bits + p) * words + (r0 >> 6)] = plane[static_cast<size_t>((c - c0) * bits + p)];
          }
        }
      });
    });
  }
  return -1;
}

}  // namespace fp4kit
