// tanh.h with AVX-512, 16 lanes at a time: every lane computes each branch of musl's tanhf and
// expm1f that its range can take (GCC vector extensions; a branch is a lane-wise select), with
// the scalar code's float operations in the scalar code's order — so each lane's result is the
// bits tanhFloat32 gives (and the wasm base's). Same code as tanh.cc, restated branch-free; the
// tail (fewer than 16 elements) goes to the scalar loop.
#include <cstring>

#include "tanh.h"

namespace fp4kit {

namespace {

typedef float F __attribute__((vector_size(64)));
typedef int32_t I __attribute__((vector_size(64)));
typedef uint32_t U __attribute__((vector_size(64)));

inline F splat(float v) { return F{} + v; }
inline I splati(int32_t v) { return I{} + v; }
inline U bitsOf(F x) { U u; std::memcpy(&u, &x, 64); return u; }
inline F fromBits(U u) { F x; std::memcpy(&x, &u, 64); return x; }

// musl's expm1f on the arguments tanhf gives it: y in (0.5, 20] (2|x|) or [−0.511, −2^-125] (−2|x|):
// not NaN, never ≥ o_threshold, k ∈ {−1, 0, 1, …, 29}.
F expm1fOfTanh(F y) {
  const U hx = bitsOf(y) & 0x7fffffffu;
  const I negative = (bitsOf(y) >> 31) != 0;
  const I reduced = hx > 0x3eb17218u;            // |y| > 0.5·ln2
  const I nearLn2 = reduced & (hx < 0x3F851592u);  // and |y| < 1.5·ln2: k = ±1
  // k = (int)(invln2·y ± 0.5): float add, then truncation
  const I kFar = __builtin_convertvector(splat(1.4426950216e+00f) * y + (negative ? splat(-0.5f) : splat(0.5f)), I);
  const I k = reduced ? (nearLn2 ? (negative ? splati(-1) : splati(1)) : kFar) : splati(0);
  const F t = __builtin_convertvector(kFar, F);
  const F hiFar = y - t * splat(6.9313812256e-01f), loFar = t * splat(9.0580006145e-06f);
  const F hiNear = negative ? y + splat(6.9313812256e-01f) : y - splat(6.9313812256e-01f);
  const F loNear = negative ? splat(-9.0580006145e-06f) : splat(9.0580006145e-06f);
  const F hi = nearLn2 ? hiNear : hiFar, lo = nearLn2 ? loNear : loFar;
  const F xr0 = hi - lo;
  const F x = reduced ? xr0 : y;
  const F c = reduced ? (hi - xr0) - lo : splat(0.0f);
  // the primary range
  const F hfx = splat(0.5f) * x;
  const F hxs = x * hfx;
  const F r1 = splat(1.0f) + hxs * (splat(-3.3333212137e-2f) + hxs * splat(1.5807170421e-3f));
  const F tt = splat(3.0f) - r1 * hfx;
  F e = hxs * ((r1 - tt) / (splat(6.0f) - x * tt));
  const F k0 = x - (x * e - hxs);
  e = x * (e - c) - c;
  e = e - hxs;
  const F kMinus1 = splat(0.5f) * (x - e) - splat(0.5f);
  const F kPlus1 = x < splat(-0.25f) ? splat(-2.0f) * (e - (x + splat(0.5f))) : splat(1.0f) + splat(2.0f) * (x - e);
  // 2^k and 2^-k (unsigned: lanes whose k is unused may hold anything)
  const U ku = __builtin_convertvector(k, U);
  const F twopk = fromBits((0x7fu + ku) << 23);
  const F twomk = fromBits((0x7fu - ku) << 23);
  const F kSmall = (x - e + (splat(1.0f) - twomk)) * twopk;  // 2 ≤ k < 23
  const F kLarge = (x - (e + twomk) + splat(1.0f)) * twopk;  // 23 ≤ k ≤ 56
  F r = k < splati(23) ? kSmall : kLarge;
  r = k == splati(1) ? kPlus1 : r;
  r = k == splati(-1) ? kMinus1 : r;
  r = k == splati(0) ? k0 : r;
  return hx < 0x33000000u ? y : r;  // |y| < 2^-25: y itself
}

}  // namespace

void tanhFloat32Avx512(const float* in, float* out, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    F x;
    std::memcpy(&x, in + i, 64);
    const U w = bitsOf(x) & 0x7fffffffu;
    const U sign = bitsOf(x) & 0x80000000u;
    const F ax = fromBits(w);
    const I big = w > 0x3f0c9f54u;     // |x| > log(3)/2, or NaN
    const I mid = w > 0x3e82c578u;     // |x| > log(5/3)/2
    const I normal = w >= 0x00800000u;  // |x| ≥ 2^-126
    const F em1 = expm1fOfTanh(mid ? splat(2.0f) * ax : splat(-2.0f) * ax);
    F t = em1 / (em1 + splat(2.0f));                                   // log(5/3)/2 < |x| ≤ log(3)/2
    t = big ? splat(1.0f) - splat(2.0f) / (em1 + splat(2.0f)) : t;     // log(3)/2 < |x| ≤ 10
    t = mid ? t : (normal ? -em1 / (em1 + splat(2.0f)) : ax);          // 2^-126 ≤ |x| ≤ log(5/3)/2; subnormal
    // |x| > 10: 1, and NaN as the scalar code makes it (1 + 0/|x|: |x| quietened)
    t = w > 0x41200000u ? (w > 0x7f800000u ? fromBits(w | 0x00400000u) : splat(1.0f)) : t;
    const F y = fromBits(bitsOf(t) ^ sign);
    std::memcpy(out + i, &y, 64);
  }
  tanhFloat32(in, out, i, end);
}

}  // namespace fp4kit
