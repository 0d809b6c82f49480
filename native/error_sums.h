// The sums behind a quantized tensor's error statistics (the checkpoint tool's relative RMSE and
// max |error|), in the order lib/kernels/ref/error-sums.ts defines: every element in float64,
// d = x − y, d·d and x·x never fused; per row eight lanes (element c in lane c mod 8, in increasing
// c), the row's sum ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); the rows added in order by
// the caller (error_sums_binding.cc); max |d| with a NaN |d| counting for nothing. Built with
// -ffp-contract=off, so each operation stays one IEEE float64 operation on every ISA.
// Optionally the per-element error histogram: each element counted in the bin of d (errorBin),
// integer counts, so their sum over threads does not depend on the split.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace fp4kit {

// The histogram's bins (lib/kernels/ref/error-sums.ts): 0 counts d = 0 (exact); 1 … 278 the
// binades 2^e ≤ |d| < 2^(e+1), e = −149 … 128 (every nonzero |x − y| of float32 values); then
// ±Inf, then NaN.
constexpr int kErrorBinExact = 0;
constexpr int kErrorBinadeMin = -149;
constexpr int kErrorBinInfinite = 279;
constexpr int kErrorBinNan = 280;
constexpr int kErrorBins = 281;
// A finite nonzero d's bin: its biased float64 exponent minus this (binade −149 → bin 1).
constexpr int64_t kErrorBinOffset = 1023 + kErrorBinadeMin - 1;

// The bin of d: the exponent field E of its bits, E − 873 clamped to [0, kErrorBinInfinite] (d = ±0
// has E = 0: bin 0; ±Inf and NaN have E = 2047: kErrorBinInfinite), one more for a NaN.
static inline int errorBin(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  int64_t bin = static_cast<int64_t>((bits >> 52) & 0x7ff) - kErrorBinOffset;
  bin = bin < 0 ? 0 : bin > kErrorBinInfinite ? kErrorBinInfinite : bin;
  return static_cast<int>(bin) + ((bits & 0x7fffffffffffffffull) > 0x7ff0000000000000ull ? 1 : 0);
}

// Rows [rowBegin, rowEnd) of src (rows × cols of dtype: f32, bf16 or f16) against decoded (float32,
// same shape): rowSums[2r] = row r's Σd², rowSums[2r + 1] its Σx²; *maxAbs = max(*maxAbs, every
// |d|); with `counts` (kErrorBins of them, or null), counts[errorBin(d)] += 1 for every element.
// The plain scalar loop (error_sums.cc) and the vector one (error_sums_simd.h, eight float64
// lanes: one AVX-512 register, two AVX2 ones, four NEON ones), in the quantize tables as errorSums.
using ErrorSumsKernel = void (*)(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd,
                                 double* rowSums, double* maxAbs, uint64_t* counts);
void errorSumsScalar(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd, double* rowSums,
                     double* maxAbs, uint64_t* counts);

// One element into its lane: num += d·d, den += x·x, m = max(m, |d|) (a NaN |d| leaves m), and
// counts[errorBin(d)] += 1 with counts, with d = x − y — the scalar loop's step and the vector
// loop's for a row's last elements.
static inline void errorElement(double x, double y, double& num, double& den, double& m, uint64_t* counts) {
  const double d = x - y;
  num += d * d;
  den += x * x;
  const double a = std::fabs(d);
  if (a > m) m = a;
  if (counts != nullptr) counts[errorBin(d)]++;
}

// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): a row's eight lanes as one sum.
static inline double laneTree(const double* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

}  // namespace fp4kit
