// NEON fast path of the block matmul (AArch64's baseline: no dot-product extension needed), the
// AVX2 kernel's twin with 4-lane vectors: matmul_neon_kernel.h with products 2w·a (|2w·a| ≤ 12·128,
// exact int16: smull) summed in pairs into int32 (sadalp) and folded per unit by one pairwise add
// per quarter. CPUs with the dot-product extension run matmul_neon_dotprod.cc instead.
#include "matmul_neon_kernel.h"

namespace fp4kit {
namespace {

struct PairwiseDot {
  // 2 rows × 8 pair accumulators + the decoded tile: 30 of 32 registers.
  static constexpr int kRowsPerStep = 2;
  // pairs[0]: lanes 4c, 4c+1 as [(k0+k1), (k2+k3)] each; pairs[1]: lanes 4c+2, 4c+3.
  struct Sums {
    int32x4_t pairs[2];
  };
  static void clear(Sums& s) { s.pairs[0] = s.pairs[1] = vdupq_n_s32(0); }
  static void add(Sums& s, int8x16_t w, int8x16_t a) {
    s.pairs[0] = vpadalq_s16(s.pairs[0], vmull_s8(vget_low_s8(w), vget_low_s8(a)));
    s.pairs[1] = vpadalq_s16(s.pairs[1], vmull_high_s8(w, a));
  }
  static int32x4_t total(const Sums& s) { return vpaddq_s32(s.pairs[0], s.pairs[1]); }
};

}  // namespace

void matmulFp4Int8Neon(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tileBegin,
                       int64_t tileEnd) {
  matmulFp4Int8NeonWith<PairwiseDot>(a, b, bias, out, tileBegin, tileEnd);
}

}  // namespace fp4kit
