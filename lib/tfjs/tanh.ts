// tanhf as the wasm base computes it: tfjs-backend-wasm's Tanh kernel calls the C library's
// tanhf, which in its Emscripten build is musl's (src/math/tanhf.c and expm1f.c, from FreeBSD's
// msun), in float32 arithmetic throughout. This is that code with every float operation rounded to
// float32 (Math.fround), so it gives the base's bits; native/tanh.h is the same code in C++ (float
// arithmetic, no contraction), which the tfjs backend's Tanh runs when the addon is loaded.
// Here it is the readable reference the native loop is tested against.

const f = Math.fround;
const bits = new Float32Array(1);
const word = new Uint32Array(bits.buffer);

/** The float32 with bit pattern `w`. */
function fromBits(w: number): number {
  word[0] = w;
  return bits[0];
}

const O_THRESHOLD = f(8.8721679688e1); // 0x42b17180
const LN2_HI = f(6.9313812256e-1); // 0x3f317180
const LN2_LO = f(9.0580006145e-6); // 0x3717f7d1
const INV_LN2 = f(1.4426950216); // 0x3fb8aa3b
const Q1 = f(-3.3333212137e-2); // -0x888868.0p-28
const Q2 = f(1.5807170421e-3); // 0xcf3010.0p-33
const TWO_127 = f(2 ** 127);

/** musl's expm1f(x) for a float32 x. */
export function expm1f(x: number): number {
  bits[0] = x;
  const hx = word[0] & 0x7fffffff;
  const sign = word[0] >>> 31;
  // huge and non-finite arguments
  if (hx >= 0x4195b844) { // |x| >= 27·ln2
    if (hx > 0x7f800000) return x; // NaN
    if (sign) return -1;
    if (x > O_THRESHOLD) return f(x * TWO_127);
  }
  let k: number;
  let c = 0;
  if (hx > 0x3eb17218) { // |x| > 0.5·ln2: argument reduction
    let hi: number, lo: number;
    if (hx < 0x3f851592) { // and |x| < 1.5·ln2
      if (!sign) { hi = f(x - LN2_HI); lo = LN2_LO; k = 1; } else { hi = f(x + LN2_HI); lo = -LN2_LO; k = -1; }
    } else {
      k = Math.trunc(f(f(INV_LN2 * x) + (sign ? -0.5 : 0.5))); // float → int truncates
      const t = k;
      hi = f(x - f(t * LN2_HI)); // t·ln2_hi is exact here
      lo = f(t * LN2_LO);
    }
    x = f(hi - lo);
    c = f(f(hi - x) - lo);
  } else if (hx < 0x33000000) { // |x| < 2^-25
    return x;
  } else {
    k = 0;
  }
  // x in the primary range
  const hfx = f(0.5 * x);
  const hxs = f(x * hfx);
  const r1 = f(1 + f(hxs * f(Q1 + f(hxs * Q2))));
  const t = f(3 - f(r1 * hfx));
  let e = f(hxs * f(f(r1 - t) / f(6 - f(x * t))));
  if (k === 0) return f(x - f(f(x * e) - hxs)); // c is 0
  e = f(f(x * f(e - c)) - c);
  e = f(e - hxs);
  // exp(x) ≈ 2^k (x_reduced − e + 1)
  if (k === -1) return f(f(0.5 * f(x - e)) - 0.5);
  if (k === 1) {
    if (x < -0.25) return f(-2 * f(e - f(x + 0.5)));
    return f(1 + f(2 * f(x - e)));
  }
  const twopk = fromBits(((0x7f + k) << 23) >>> 0);
  let y: number;
  if (k < 0 || k > 56) { // enough to return exp(x) − 1
    y = f(f(x - e) + 1);
    y = k === 128 ? f(f(y * 2) * TWO_127) : f(y * twopk);
    return f(y - 1);
  }
  const twomk = fromBits(((0x7f - k) << 23) >>> 0);
  if (k < 23) y = f(f(f(x - e) + f(1 - twomk)) * twopk);
  else y = f(f(f(x - f(e + twomk)) + 1) * twopk);
  return y;
}

/** musl's tanhf(x) for a float32 x. */
export function tanhf(x: number): number {
  bits[0] = x;
  const sign = word[0] >>> 31;
  const w = word[0] & 0x7fffffff;
  const ax = fromBits(w);
  let t: number;
  if (w > 0x3f0c9f54) { // |x| > log(3)/2 ≈ 0.5493, or NaN
    if (w > 0x41200000) t = f(1 + f(0 / ax)); // |x| > 10 (NaN stays NaN)
    else {
      t = expm1f(f(2 * ax));
      t = f(1 - f(2 / f(t + 2)));
    }
  } else if (w > 0x3e82c578) { // |x| > log(5/3)/2 ≈ 0.2554
    t = expm1f(f(2 * ax));
    t = f(t / f(t + 2));
  } else if (w >= 0x00800000) { // |x| ≥ 2^-126
    t = expm1f(f(-2 * ax));
    t = f(-t / f(t + 2));
  } else { // |x| subnormal (or 0)
    t = ax;
  }
  return sign ? -t : t;
}

/** out[i] = tanhf(x[i]). */
export function tanhInto(x: Float32Array, out: Float32Array): void {
  for (let i = 0; i < x.length; i++) out[i] = tanhf(x[i]);
}
