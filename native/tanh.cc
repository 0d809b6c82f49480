// tanh.h: musl's tanhf and expm1f (src/math/tanhf.c, expm1f.c; from FreeBSD msun), restated with
// memcpy for the bit casts. Kept operation for operation: the bits must be the wasm base's.
#include "tanh.h"

#include <cstring>

namespace fp4kit {

namespace {

inline uint32_t bitsOf(float x) {
  uint32_t w;
  std::memcpy(&w, &x, 4);
  return w;
}

inline float fromBits(uint32_t w) {
  float x;
  std::memcpy(&x, &w, 4);
  return x;
}

constexpr float kOThreshold = 8.8721679688e+01f;  // 0x42b17180
constexpr float kLn2Hi = 6.9313812256e-01f;       // 0x3f317180
constexpr float kLn2Lo = 9.0580006145e-06f;       // 0x3717f7d1
constexpr float kInvLn2 = 1.4426950216e+00f;      // 0x3fb8aa3b
constexpr float kQ1 = -3.3333212137e-2f;          // -0x888868.0p-28
constexpr float kQ2 = 1.5807170421e-3f;           // 0xcf3010.0p-33
constexpr float kTwo127 = 0x1p127f;

float expm1f(float x) {
  const uint32_t hx = bitsOf(x) & 0x7fffffff;
  const int sign = static_cast<int>(bitsOf(x) >> 31);
  // huge and non-finite arguments
  if (hx >= 0x4195b844) {  // |x| >= 27·ln2
    if (hx > 0x7f800000) return x;  // NaN
    if (sign) return -1;
    if (x > kOThreshold) return x * kTwo127;
  }
  int k;
  float c = 0;
  if (hx > 0x3eb17218) {  // |x| > 0.5·ln2: argument reduction
    float hi, lo;
    if (hx < 0x3F851592) {  // and |x| < 1.5·ln2
      if (!sign) {
        hi = x - kLn2Hi;
        lo = kLn2Lo;
        k = 1;
      } else {
        hi = x + kLn2Hi;
        lo = -kLn2Lo;
        k = -1;
      }
    } else {
      k = static_cast<int>(kInvLn2 * x + (sign ? -0.5f : 0.5f));
      const float t = static_cast<float>(k);
      hi = x - t * kLn2Hi;  // t·ln2_hi is exact here
      lo = t * kLn2Lo;
    }
    x = hi - lo;
    c = (hi - x) - lo;
  } else if (hx < 0x33000000) {  // |x| < 2^-25
    return x;
  } else {
    k = 0;
  }
  // x in the primary range
  const float hfx = 0.5f * x;
  const float hxs = x * hfx;
  const float r1 = 1.0f + hxs * (kQ1 + hxs * kQ2);
  const float t = 3.0f - r1 * hfx;
  float e = hxs * ((r1 - t) / (6.0f - x * t));
  if (k == 0) return x - (x * e - hxs);  // c is 0
  e = x * (e - c) - c;
  e -= hxs;
  // exp(x) ≈ 2^k (x_reduced − e + 1)
  if (k == -1) return 0.5f * (x - e) - 0.5f;
  if (k == 1) {
    if (x < -0.25f) return -2.0f * (e - (x + 0.5f));
    return 1.0f + 2.0f * (x - e);
  }
  const float twopk = fromBits(static_cast<uint32_t>(0x7f + k) << 23);
  float y;
  if (k < 0 || k > 56) {  // enough to return exp(x) − 1
    y = x - e + 1.0f;
    y = k == 128 ? y * 2.0f * kTwo127 : y * twopk;
    return y - 1.0f;
  }
  const float twomk = fromBits(static_cast<uint32_t>(0x7f - k) << 23);
  if (k < 23) y = (x - e + (1 - twomk)) * twopk;
  else y = (x - (e + twomk) + 1) * twopk;
  return y;
}

float tanhf(float x) {
  const uint32_t sign = bitsOf(x) >> 31;
  const uint32_t w = bitsOf(x) & 0x7fffffff;
  x = fromBits(w);
  float t;
  if (w > 0x3f0c9f54) {  // |x| > log(3)/2 ≈ 0.5493, or NaN
    if (w > 0x41200000) {  // |x| > 10 (NaN stays NaN)
      t = 1 + 0 / x;
    } else {
      t = expm1f(2 * x);
      t = 1 - 2 / (t + 2);
    }
  } else if (w > 0x3e82c578) {  // |x| > log(5/3)/2 ≈ 0.2554
    t = expm1f(2 * x);
    t = t / (t + 2);
  } else if (w >= 0x00800000) {  // |x| ≥ 2^-126
    t = expm1f(-2 * x);
    t = -t / (t + 2);
  } else {  // |x| subnormal (or 0)
    t = x;
  }
  return sign ? -t : t;
}

}  // namespace

void tanhFloat32(const float* x, float* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; i++) out[i] = tanhf(x[i]);
}

}  // namespace fp4kit
