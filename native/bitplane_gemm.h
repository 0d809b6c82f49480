// Binary × b-bit products by bit planes (1-bit FQT). The operand layouts, the product and its float
// form are defined in lib/kernels/ref/bitplane-gemm.ts; this is the C++ twin: one driver
// (bitplane_gemm.cc: argument struct, row groups, pruning, threads, integer → float) over a
// per-ISA row kernel (scalar reference in bitplane_gemm.cc, _avx2.cc, _avx512.cc, _neon.cc) that
// counts R⁺ and R⁰ of up to two code rows against every signs row.
#pragma once
#include <cstdint>

namespace fp4kit {

constexpr int kBitplanePanelRows = 8;
constexpr int64_t kMaxBitplaneLength = int64_t(1) << 22;

static inline int64_t bitplaneWords(int64_t length) { return (length + 63) / 64; }
static inline int64_t signsWordCount(int64_t rows, int64_t length) {
  return (rows + kBitplanePanelRows - 1) / kBitplanePanelRows * kBitplanePanelRows * bitplaneWords(length);
}

struct BitplaneMatmulArgs {
  const uint64_t* planes;  // m × bits × words
  int64_t m;
  int32_t bits;
  const uint64_t* signs;  // panels; a ternary operand's non-zero array follows
  int64_t n;
  int64_t length;
  bool ternary;
  int64_t rowsPerGroup;
  const uint8_t* mask;  // per group, or null: every row kept
  const float* scales;  // per group; null: the integer form
  const float* zeros;
  int32_t* outInt;  // m × n (integer form)
  float* outFloat;  // m × n (float form)
};

// R⁺[r][j] = Σ_p 2^p Σ_w popcount(a[r] plane p word w & pos[j][w]) for r < rowCount (1 or 2) and
// every signs row j < n; R⁰ the same against the non-zero array (only when `nonzero` is given).
struct BitplaneRows {
  const uint64_t* a[2];
  int rowCount;
  int bits;
  int64_t words;
  const uint64_t* pos;
  const uint64_t* nonzero;  // null: binary operand
  int64_t n;
  int32_t* rPos[2];
  int32_t* rNonzero[2];
};
using BitplaneRowsKernel = void (*)(const BitplaneRows& r);

void bitplaneRowsScalar(const BitplaneRows& r);
void bitplaneRowsAvx2(const BitplaneRows& r);
void bitplaneRowsAvx512(const BitplaneRows& r);  // needs AVX512_VPOPCNTDQ
void bitplaneRowsNeon(const BitplaneRows& r);

struct BitplaneKernel {
  const char* simd;  // "avx512-vpopcntdq", "avx2", "neon", "scalar"
  BitplaneRowsKernel rows;
};
const BitplaneKernel& activeBitplaneKernel();

void bitplaneMatmul(const BitplaneMatmulArgs& a);

// Packing (scalar, shared by every level): see the reference for the layouts.
void packSigns(const float* x, int64_t rows, int64_t cols, bool transpose, bool ternary, uint64_t* out);
// −1, or the flat index of the first code ≥ 2^bits.
int64_t packBitPlanes(const uint8_t* codes, int64_t rows, int64_t cols, int bits, bool transpose, uint64_t* out);

}  // namespace fp4kit
