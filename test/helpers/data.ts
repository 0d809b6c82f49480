// Test tensors: seeded random data of varied magnitude and adversarial values (ties at every
// quantum of every format, ±1 ulp around them, powers of two and just below, subnormals, ±0,
// ±Inf, NaN), so every backend is compared where rounding is hardest.

/** Mulberry32: a tiny seeded generator for reproducible test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const rad = Math.sqrt(-2 * Math.log(u)) * scale;
    out[i] = rad * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = rad * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Gaussian rows whose magnitude varies per block of 16 over 2^±40, with heavy-tailed outliers. */
export function variedMagnitude(n: number, seed: number): Float32Array {
  const x = gaussian(n, seed);
  const r = rng(seed ^ 0x5bd1e995);
  let scale = 1;
  for (let i = 0; i < n; i++) {
    if (i % 16 === 0) scale = 2 ** Math.round((r() - 0.5) * 80);
    x[i] *= scale * (r() < 0.01 ? 200 : 1);
  }
  return x;
}

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);
// One float32 ulp away from x (x ≥ 0); below 0 is the smallest negative subnormal, not a NaN.
const nextUp = (x: number) => { f[0] = x; u[0] += 1; return f[0]; };
const nextDown = (x: number) => { if (x === 0) return -(2 ** -149); f[0] = x; u[0] -= 1; return f[0]; };

/** Every tie and near-tie of every element grid, scaled by many powers of two, plus specials. */
export function adversarial(n: number, seed: number, withSpecials = true): Float32Array {
  const grids = [
    [0, 0.5, 1, 1.5, 2, 3, 4, 6], // e2m1
    Array.from({ length: 32 }, (_, c) => (c < 8 ? c / 8 : (1 + (c % 8) / 8) * 2 ** ((c >> 3) - 1))), // e2m3
    Array.from({ length: 32 }, (_, c) => (c < 4 ? c / 16 : (1 + (c % 4) / 4) * 2 ** ((c >> 2) - 3))), // e3m2
  ];
  const base: number[] = [];
  for (const g of grids) {
    for (let i = 0; i + 1 < g.length; i++) base.push(g[i], (g[i] + g[i + 1]) / 2);
    base.push(g[g.length - 1], g[g.length - 1] * 1.1);
  }
  for (let k = -10; k <= 10; k++) base.push(2 ** k, nextDown(2 ** k), nextUp(2 ** k), 1.5 * 2 ** k, 448, 464, 57344, 61440);
  const specials = [0, -0, 1e-45, -1e-45, 1e-40, 2 ** -127, 2 ** -126, nextDown(2 ** -126), 3.4e38, -3.4e38];
  if (withSpecials) specials.push(Infinity, -Infinity, NaN);
  const r = rng(seed);
  const out = new Float32Array(n);
  let scale = 1;
  for (let i = 0; i < n; i++) {
    if (i % 16 === 0) scale = 2 ** Math.round((r() - 0.5) * 60);
    const p = r();
    let v: number;
    if (p < 0.02) v = specials[Math.floor(r() * specials.length)];
    else {
      v = base[Math.floor(r() * base.length)] * scale;
      const w = r();
      if (w < 0.2) v = nextUp(v);
      else if (w < 0.4) v = nextDown(v);
    }
    out[i] = r() < 0.5 ? -v : v;
  }
  return out;
}

/** bf16 bits of a float32 tensor (truncation is fine: any bf16 pattern is a valid input). */
export function toBf16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(bits, (b) => b >>> 16);
}

/** f16 bits of a float32 tensor, via Math.fround-free bit manipulation covering subnormals/Inf/NaN. */
export function toF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i];
    const sign = (b >>> 16) & 0x8000;
    const exp = ((b >>> 23) & 0xff) - 127 + 15;
    const mant = b & 0x7fffff;
    if (((b >>> 23) & 0xff) === 0xff) out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
    else if (exp >= 0x1f) out[i] = sign | 0x7c00;
    else if (exp <= 0) out[i] = exp < -10 ? sign : sign | ((mant | 0x800000) >>> (14 - exp));
    else out[i] = sign | (exp << 10) | (mant >>> 13);
  }
  return out;
}

/** `count` values uniform in [-halfWidth, halfWidth) from a 32-bit LCG (Numerical Recipes' constants): cheap, fixed for a seed. */
export function lcgUniform(count: number, seed: number, halfWidth = 1): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * halfWidth;
  }
  return out;
}
