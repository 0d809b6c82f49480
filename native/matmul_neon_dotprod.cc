// NEON fast path of the block matmul with the dot-product extension (ARMv8.2 DotProd: Apple
// M-series, Neoverse N1/V1 and later, Cortex-A76 and later), compiled alone with
// -march=armv8.2-a+dotprod and chosen at run time (dispatch.cc): matmul_neon_kernel.h with one
// sdot per quarter and 4 k — 4 int8 × int8 products into each int32 lane, 16 per instruction
// where the baseline kernel's smull + sadalp make 4 per instruction, and no fold at the end.
#if defined(__aarch64__)
#include "matmul_neon_kernel.h"

namespace fp4kit {
namespace {

struct Sdot {
  // 4 rows × 4 quarters of sums + 8 decoded quarters + the table, the mask and 2 activation
  // vectors: 28 of 32 registers.
  static constexpr int kRowsPerStep = 4;
  struct Sums {
    int32x4_t lanes;
  };
  static void clear(Sums& s) { s.lanes = vdupq_n_s32(0); }
  static void add(Sums& s, int8x16_t w, int8x16_t a) { s.lanes = vdotq_s32(s.lanes, w, a); }
  static int32x4_t total(const Sums& s) { return s.lanes; }
};

}  // namespace

void matmulFp4Int8NeonDotprod(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tileBegin,
                              int64_t tileEnd) {
  matmulFp4Int8NeonWith<Sdot>(a, b, bias, out, tileBegin, tileEnd);
}

}  // namespace fp4kit
#endif  // __aarch64__
