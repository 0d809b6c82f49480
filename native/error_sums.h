// The sums behind a quantized tensor's error statistics (the checkpoint tool's relative RMSE and
// max |error|), in the order lib/kernels/ref/error-sums.ts defines: every element in float64,
// d = x − y, d·d and x·x never fused; per row eight lanes (element c in lane c mod 8, in increasing
// c), the row's sum ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); the rows added in order by
// the caller (error_sums_binding.cc); max |d| with a NaN |d| counting for nothing. Built with
// -ffp-contract=off, so each operation stays one IEEE float64 operation on every ISA.
#pragma once
#include <cmath>
#include <cstdint>

namespace fp4kit {

// Rows [rowBegin, rowEnd) of src (rows × cols of dtype: f32, bf16 or f16) against decoded (float32,
// same shape): rowSums[2r] = row r's Σd², rowSums[2r + 1] its Σx²; *maxAbs = max(*maxAbs, every
// |d|). The plain scalar loop (error_sums.cc) and the vector one (error_sums_simd.h, eight float64
// lanes: one AVX-512 register, two AVX2 ones, four NEON ones), in the quantize tables as errorSums.
using ErrorSumsKernel = void (*)(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd,
                                 double* rowSums, double* maxAbs);
void errorSumsScalar(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd, double* rowSums,
                     double* maxAbs);

// One element into its lane: num += d·d, den += x·x, m = max(m, |d|) (a NaN |d| leaves m), with
// d = x − y — the scalar loop's step and the vector loop's for a row's last elements.
static inline void errorElement(double x, double y, double& num, double& den, double& m) {
  const double d = x - y;
  num += d * d;
  den += x * x;
  const double a = std::fabs(d);
  if (a > m) m = a;
}

// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): a row's eight lanes as one sum.
static inline double laneTree(const double* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

}  // namespace fp4kit
