// error_sums.h: the plain scalar loop, the C++ twin of lib/kernels/ref/error-sums.ts.
#include "error_sums.h"

#include "dtype.h"

namespace fp4kit {

namespace {

// With kCount false the counting folds away (counts is a constant null): the loop of the sums alone.
template <bool kCount>
void errorSumsRows(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd, double* rowSums,
                   double* maxAbs, uint64_t* counts) {
  double m = *maxAbs;
  for (int64_t r = rowBegin; r < rowEnd; r++) {
    double num[8] = {}, den[8] = {};
    for (int64_t c = 0; c < cols; c++)
      errorElement(bitsToFloat(loadBits(src, dtype, r * cols + c)), decoded[r * cols + c], num[c & 7], den[c & 7], m, kCount ? counts : nullptr);
    rowSums[2 * r] = laneTree(num);
    rowSums[2 * r + 1] = laneTree(den);
  }
  *maxAbs = m;
}

}  // namespace

void errorSumsScalar(const void* src, int32_t dtype, const float* decoded, int64_t cols, int64_t rowBegin, int64_t rowEnd, double* rowSums,
                     double* maxAbs, uint64_t* counts) {
  if (counts != nullptr) errorSumsRows<true>(src, dtype, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, counts);
  else errorSumsRows<false>(src, dtype, decoded, cols, rowBegin, rowEnd, rowSums, maxAbs, nullptr);
}

}  // namespace fp4kit
