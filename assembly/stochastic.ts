// Counter-based random bits for stochastic rounding, the twin of lib/kernels/ref/stochastic.ts: the same
// (seed, flat element index) gives the same 32 bits in every backend and any chunking.

// @ts-ignore: decorator
@inline
export function fmix32(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

/** Key of the 2^32-element stream holding indices hi·2^32 … hi·2^32 + 2^32 − 1. */
// @ts-ignore: decorator
@inline
export function streamKey(seed: u32, indexHigh: u32): u32 {
  return fmix32(seed ^ fmix32(indexHigh ^ 0x9e3779b9));
}

/** 32 uniform random bits for element `index` under `seed`. */
// @ts-ignore: decorator
@inline
export function randomBits(seed: u32, index: u64): u32 {
  return fmix32(<u32>index ^ streamKey(seed, <u32>(index >>> 32)));
}

/** randomBits for a run of indices, with the stream key computed once per 2^32 indices. */
@final @unmanaged
export class RandomStream {
  seed: u32;
  high: u32;
  key: u32;
}

const streamData: usize = memory.data(16, 16);

/** Random bits for `index`, reusing the key of the last index's stream (same bits as randomBits). */
// @ts-ignore: decorator
@inline
export function streamBits(seed: u32, index: u64): u32 {
  const s = changetype<RandomStream>(streamData);
  const high = <u32>(index >>> 32);
  if (s.seed != seed || s.high != high || s.key == 0) {
    s.seed = seed;
    s.high = high;
    s.key = streamKey(seed, high);
  }
  return fmix32(<u32>index ^ s.key);
}

/** fmix32 on four lanes. */
// @ts-ignore: decorator
@inline
export function fmix32Vec(h: v128): v128 {
  h = v128.xor(h, i32x4.shr_u(h, 16));
  h = i32x4.mul(h, i32x4.splat(0x85ebca6b));
  h = v128.xor(h, i32x4.shr_u(h, 13));
  h = i32x4.mul(h, i32x4.splat(0xc2b2ae35));
  return v128.xor(h, i32x4.shr_u(h, 16));
}

/**
 * randomBits for indices first … first + 3 as four lanes, given the stream key of their common
 * high word (callers check that the run does not cross a multiple of 2^32).
 */
// @ts-ignore: decorator
@inline
export function randomBitsVec(key: u32, firstLow: u32): v128 {
  return fmix32Vec(v128.xor(i32x4.add(i32x4.splat(firstLow), i32x4(0, 1, 2, 3)), i32x4.splat(key)));
}
