// Counter-based random bits for stochastic rounding: the same (seed, element index) gives the
// same 32 bits on every backend and in any processing order, so chunked, threaded and SIMD
// kernels agree bit for bit. The mixer is MurmurHash3's 32-bit finaliser (a bijection).
//
//   key(seed, hi) = fmix32(seed ^ fmix32(hi ^ 0x9e3779b9))
//   random(seed, index) = fmix32(lo ^ key(seed, hi))       where index = hi·2^32 + lo

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function streamKey(seed: number, indexHigh: number): number {
  return fmix32((seed ^ fmix32((indexHigh ^ 0x9e3779b9) >>> 0)) >>> 0);
}

/** 32 uniform random bits for element `index` (a non-negative safe integer) under `seed`. */
export function randomBits(seed: number, index: number): number {
  const hi = Math.floor(index / 4294967296);
  const lo = index >>> 0;
  return fmix32((lo ^ streamKey(seed, hi)) >>> 0);
}
