// NVFP4 (blocks of 16 E2M1 elements, E4M3 block scale under a float32 tensor scale) and the
// tensor absmax it is calibrated from: the twin of quantizeNvfp4 / dequantizeNvfp4 / absMax in
// lib/kernels/ref/nvfp4.ts. Float steps are the reference's: f64 where it mixes in the (double)
// tensor scale, then rounded to float32.

import { DTYPE_BF16, DTYPE_F32, blockBits, f16BitsToF32Bits } from "./dtype";
import { E2M1, E4M3, decodeTable, e2m1NearestSmallVec, e2m1StochasticVec, encodeElementBits, quantizeScaledElement } from "./element-codec";
import { blockAbsMax, storeE2m1Values } from "./mx";
import { packCodes, packNibbles } from "./pack";
import { randomBitsVec, streamBits, streamKey } from "./stochastic";

const BLOCK: i32 = 16;
const E2M1_MAX: f32 = 6;
const E4M3_MIN_NORMAL: f32 = 0.015625; // 2^−6
const E4M3_MAX: f32 = 448;
const codeScratch: usize = memory.data(BLOCK, 16);

/**
 * The 16 nearest-even codes of one whole float32 block at p, one per byte (sign in bit 3), for
 * a block total t (splat) that is finite and positive. Per element this is the reference's
 * clamp(x / total, −6, 6) cast to E2M1, taken as magnitude and sign: |x| / total is the
 * reference's quotient without its sign (an IEEE division, as the reference's), and the sign is
 * x's (total > 0, so −0 and tiny negatives that divide to −0 keep it).
 */
// @ts-ignore: decorator
@inline
function blockCodes(p: usize, t: v128): v128 {
  const x0 = v128.load(p), x1 = v128.load(p, 16), x2 = v128.load(p, 32), x3 = v128.load(p, 48);
  const absMask = i32x4.splat(0x7fffffff);
  const six = f32x4.splat(E2M1_MAX);
  // No NaN here (t is finite and positive, x is not NaN: else t would be NaN), so pmin clamps.
  const m0 = e2m1NearestSmallVec(f32x4.pmin(f32x4.div(v128.and(x0, absMask), t), six));
  const m1 = e2m1NearestSmallVec(f32x4.pmin(f32x4.div(v128.and(x1, absMask), t), six));
  const m2 = e2m1NearestSmallVec(f32x4.pmin(f32x4.div(v128.and(x2, absMask), t), six));
  const m3 = e2m1NearestSmallVec(f32x4.pmin(f32x4.div(v128.and(x3, absMask), t), six));
  const magnitudes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(m0, m1), i16x8.narrow_i32x4_u(m2, m3));
  // Signed narrowing saturates but keeps each word's sign: byte k < 0 exactly when x_k's sign bit is set.
  const signs = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(x0, x1), i16x8.narrow_i32x4_s(x2, x3));
  return v128.or(magnitudes, v128.and(i8x16.lt_s(signs, i8x16.splat(0)), i8x16.splat(8)));
}

/** 16 codes ≤ 0xf (one per byte) → their 8 packed bytes in the low half (code 2i in the low nibble). */
// @ts-ignore: decorator
@inline
function packBlock(codes: v128): v128 {
  // As 16-bit words each pair is c0 | c1 << 8, so word >> 4 is exactly c1 << 4: one mask, no more.
  const pairs = v128.or(v128.and(codes, i16x8.splat(0x000f)), i16x8.shr_u(codes, 4));
  return i8x16.narrow_i16x8_u(pairs, pairs);
}

/** A block total the SIMD path can divide by: finite and > 0 (NaN fails both tests). */
// @ts-ignore: decorator
@inline
function simdTotal(total: f32): bool {
  return total > 0 && total < Infinity;
}

/**
 * One block through the reference's own scalar steps: for totals that are NaN (a NaN in the
 * block), zero or infinite, where x / total can be NaN. `random` draws stochastic bits.
 */
function quantizeBlockScalar(p: usize, count: i32, total: f32, stochastic: bool, seed: u32, first: u64, out: usize): void {
  memory.fill(codeScratch, 0, BLOCK);
  for (let i = 0; i < count; i++) {
    let v = reinterpret<f32>(load<u32>(p + (<usize>i << 2))) / total;
    if (v > E2M1_MAX) v = E2M1_MAX;
    else if (v < -E2M1_MAX) v = -E2M1_MAX;
    const random = stochastic ? streamBits(seed, first + <u64>i) : 0;
    store<u8>(codeScratch + <usize>i, <u8>quantizeScaledElement(reinterpret<u32>(v), 0, E2M1, stochastic, random));
  }
  packCodes(codeScratch, BLOCK, 4, out);
}

/** nvfp4 stochastic codes of four elements (clamped to 6, so it never rounds past the last code). */
// @ts-ignore: decorator
@inline
function nvfp4StochasticCodes(v: v128, total: v128, random: v128): v128 {
  const abs = f32x4.pmin(v128.and(f32x4.div(v, total), i32x4.splat(0x7fffffff)), f32x4.splat(E2M1_MAX));
  const mag = e2m1StochasticVec(abs, random);
  return v128.or(mag, v128.and(i32x4.shr_s(v, 31), i32x4.splat(8)));
}

/** Lanes of two f32x4 halves → f32(f64(v) op tensorScale), the reference's double step. */
// @ts-ignore: decorator
@inline
function divideByTensorScale(v: v128, tensorScale: v128): v128 {
  const low = f32x4.demote_f64x2_zero(f64x2.div(f64x2.promote_low_f32x4(v), tensorScale));
  const high = f32x4.demote_f64x2_zero(f64x2.div(f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 0, 1)), tensorScale));
  return v128.shuffle<i32>(low, high, 0, 1, 4, 5);
}

// @ts-ignore: decorator
@inline
function multiplyByTensorScale(v: v128, tensorScale: v128): v128 {
  const low = f32x4.demote_f64x2_zero(f64x2.mul(tensorScale, f64x2.promote_low_f32x4(v)));
  const high = f32x4.demote_f64x2_zero(f64x2.mul(tensorScale, f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 0, 1))));
  return v128.shuffle<i32>(low, high, 0, 1, 4, 5);
}

// @ts-ignore: decorator
@inline
function vectorAbsMax(p: usize): v128 {
  const absMask = i32x4.splat(0x7fffffff);
  return i32x4.max_u(
    i32x4.max_u(v128.and(v128.load(p), absMask), v128.and(v128.load(p, 16), absMask)),
    i32x4.max_u(v128.and(v128.load(p, 32), absMask), v128.and(v128.load(p, 48), absMask)),
  );
}

/**
 * Four whole f32 blocks at p, nearest-even, the block scales of all four in one vector.
 * Returns false, having written only the scale bytes, when a block's total is not finite and
 * positive (a NaN in the group, or an extreme tensor scale): the caller redoes those blocks one
 * by one. `f32Scale` (a constant at each call) says tensorScale is a float32 value, as the
 * public API always passes: then the reference's double steps are plain float32 ones —
 * f32(f64(a) / t) is a / t rounded once (53 ≥ 2·24 + 2 bits make the double rounding
 * innocuous), and f32(t · v) is t · v rounded once (24 × 4 significant bits fit in a double).
 */
// @ts-ignore: decorator
@inline
function quantizeFourBlocks(p: usize, tensorScale: f64, f32Scale: bool, data: usize, scales: usize): bool {
  // Per-block maxima, reduced pairwise so lane k holds block k's amax.
  const m0 = vectorAbsMax(p), m1 = vectorAbsMax(p + 64), m2 = vectorAbsMax(p + 128), m3 = vectorAbsMax(p + 192);
  const m01 = i32x4.max_u(v128.shuffle<i32>(m0, m1, 0, 1, 4, 5), v128.shuffle<i32>(m0, m1, 2, 3, 6, 7));
  const m23 = i32x4.max_u(v128.shuffle<i32>(m2, m3, 0, 1, 4, 5), v128.shuffle<i32>(m2, m3, 2, 3, 6, 7));
  const amax = i32x4.max_u(v128.shuffle<i32>(m01, m23, 0, 2, 4, 6), v128.shuffle<i32>(m01, m23, 1, 3, 5, 7));
  const ts = f64x2.splat(tensorScale);
  const ts32 = f32x4.splat(<f32>tensorScale);
  const blockScale = f32x4.div(amax, f32x4.splat(E2M1_MAX));
  let scaled = f32Scale ? f32x4.div(blockScale, ts32) : divideByTensorScale(blockScale, ts);
  scaled = f32x4.pmin(f32x4.pmax(scaled, f32x4.splat(E4M3_MIN_NORMAL)), f32x4.splat(E4M3_MAX));
  // scaled is an E4M3 normal: round its float32 bits to 3 mantissa bits (ties to even, carry into
  // the exponent), which gives both its value and, rebased from 2^−6, its code.
  // (A NaN amax gives a total that is NaN, infinite or −0 here: the caller redoes the group.)
  const rounded = i32x4.add(scaled, i32x4.add(v128.and(i32x4.shr_u(scaled, 20), i32x4.splat(1)), i32x4.splat(0x7ffff)));
  const codes = i32x4.sub(i32x4.shr_u(rounded, 20), i32x4.splat(120 << 3));
  v128.store32_lane(scales, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(codes, codes), i16x8.splat(0)), 0);
  const value = v128.and(rounded, i32x4.splat(0xfff00000));
  const total = f32Scale ? f32x4.mul(value, ts32) : multiplyByTensorScale(value, ts);
  if (!i32x4.all_true(v128.and(f32x4.gt(total, f32x4.splat(0)), f32x4.lt(total, f32x4.splat(Infinity))))) return false;
  // One block at a time (pairing blocks into 16-byte stores runs out of registers).
  v128.store64_lane(data, packBlock(blockCodes(p, v128.shuffle<i32>(total, total, 0, 0, 0, 0))), 0);
  v128.store64_lane(data + 8, packBlock(blockCodes(p + 64, v128.shuffle<i32>(total, total, 1, 1, 1, 1))), 0);
  v128.store64_lane(data + 16, packBlock(blockCodes(p + 128, v128.shuffle<i32>(total, total, 2, 2, 2, 2))), 0);
  v128.store64_lane(data + 24, packBlock(blockCodes(p + 192, v128.shuffle<i32>(total, total, 3, 3, 3, 3))), 0);
  return true;
}

/**
 * The groups of four whole f32 blocks of one row, nearest-even; returns the first block not
 * done: a group that needs the scalar steps (see quantizeFourBlocks) ends the groups, and the
 * caller's block loop takes over from there. Inlined once per `f32Scale`, so each loop is
 * specialised.
 */
// @ts-ignore: decorator
@inline
function quantizeGroups(src: usize, row: i32, cols: i32, tensorScale: f64, f32Scale: bool, data: usize, scales: usize): i32 {
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  const fullBlocks = cols / BLOCK;
  let b = 0;
  for (; b + 4 <= fullBlocks; b += 4) {
    const blockIndex = <usize>row * <usize>blocksPerRow + <usize>b;
    const p = src + ((<usize>row * <usize>cols + <usize>(b * BLOCK)) << 2);
    if (!quantizeFourBlocks(p, tensorScale, f32Scale, data + (blockIndex << 3), scales + blockIndex)) break;
  }
  return b;
}

export function quantizeNvfp4(
  src: usize, dtype: i32, rows: i32, cols: i32, tensorScale: f64, stochastic: bool, seed: u32, firstIndex: f64,
  data: usize, scales: usize,
): void {
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  const e4m3Table = decodeTable(E4M3);
  const base = <u64>firstIndex;
  const f32Scale = <f64><f32>tensorScale == tensorScale;
  for (let row = 0; row < rows; row++) {
    let b = 0;
    if (!stochastic && dtype == DTYPE_F32) {
      b = f32Scale
        ? quantizeGroups(src, row, cols, tensorScale, true, data, scales)
        : quantizeGroups(src, row, cols, tensorScale, false, data, scales);
    }
    for (; b < blocksPerRow; b++) {
      const col0 = b * BLOCK;
      const count = min(BLOCK, cols - col0);
      const start = <usize>row * <usize>cols + <usize>col0;
      const p = blockBits(src, dtype, start, count, BLOCK);
      const amax = reinterpret<f32>(blockAbsMax(p, BLOCK));
      const blockIndex = <usize>row * <usize>blocksPerRow + <usize>b;
      // nvfp4ScaledBlockScale: clamp(f32(f32(amax / 6) / tensorScale), 2^−6, 448), then E4M3.
      let scaled = <f32>(<f64>(amax / E2M1_MAX) / tensorScale);
      scaled = scaled < E4M3_MIN_NORMAL ? E4M3_MIN_NORMAL : scaled > E4M3_MAX ? E4M3_MAX : scaled;
      const scaleCode = encodeElementBits(reinterpret<u32>(scaled), E4M3, false, 0);
      store<u8>(scales + blockIndex, <u8>scaleCode);
      const total = <f32>(tensorScale * <f64>load<f32>(e4m3Table + (<usize>scaleCode << 2)));
      const out = data + (blockIndex << 3);
      const first = base + <u64>start;
      if (isNaN(total)) {
        store<u64>(out, 0); // a NaN block: its scale says so, every element code is 0
      } else if (stochastic && simdTotal(total) && (first >>> 32) == ((first + BLOCK - 1) >>> 32)) {
        // SIMD: the block's 16 indices share one stream key; padding lanes hold zeros.
        const key = streamKey(seed, <u32>(first >>> 32));
        const low = <u32>first;
        const t = f32x4.splat(total);
        const c0 = nvfp4StochasticCodes(v128.load(p), t, randomBitsVec(key, low));
        const c1 = nvfp4StochasticCodes(v128.load(p, 16), t, randomBitsVec(key, low + 4));
        const c2 = nvfp4StochasticCodes(v128.load(p, 32), t, randomBitsVec(key, low + 8));
        const c3 = nvfp4StochasticCodes(v128.load(p, 48), t, randomBitsVec(key, low + 12));
        const codes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3));
        v128.store64_lane(out, packNibbles(codes, i32x4.splat(0)), 0);
      } else if (!stochastic && simdTotal(total)) {
        // Padding lanes of a short block hold zeros, which encode as 0 like the reference's padding.
        v128.store64_lane(out, packBlock(blockCodes(p, f32x4.splat(total))), 0);
      } else {
        quantizeBlockScalar(p, count, total, stochastic, seed, first, out);
      }
    }
  }
}

export function dequantizeNvfp4(data: usize, scales: usize, rows: i32, cols: i32, tensorScale: f64, out: usize): void {
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  const e2m1Table = decodeTable(E2M1);
  const e4m3Table = decodeTable(E4M3);
  const mask = i8x16.splat(0x0f);
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const blockIndex = <usize>row * <usize>blocksPerRow + <usize>b;
      const total = <f32>(tensorScale * <f64>load<f32>(e4m3Table + (<usize>load<u8>(scales + blockIndex) << 2)));
      const col0 = b * BLOCK;
      const count = min(BLOCK, cols - col0);
      const o = out + ((<usize>row * <usize>cols + <usize>col0) << 2);
      const packed = data + (blockIndex << 3);
      if (count == BLOCK) {
        const v = v128.load64_zero(packed);
        const codes = i8x16.shuffle(v128.and(v, mask), i8x16.shr_u(v, 4), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        storeE2m1Values(codes, f32x4.splat(total), o);
        continue;
      }
      for (let i = 0; i < count; i++) {
        const byte = <u32>load<u8>(packed + (<usize>i >> 1));
        const code = (i & 1) == 0 ? byte & 0xf : byte >>> 4;
        store<f32>(o + (<usize>i << 2), load<f32>(e2m1Table + (<usize>code << 2)) * total);
      }
    }
  }
}

/** Bits of max |x| over src[0, count) as float32 (> 0x7f800000: a NaN is present). */
export function absMaxBits(src: usize, dtype: i32, count: i32): u32 {
  let i = 0;
  if (dtype == DTYPE_F32) {
    const absMask = i32x4.splat(0x7fffffff);
    let m = i32x4.splat(0);
    for (; i + 4 <= count; i += 4) m = i32x4.max_u(m, v128.and(v128.load(src + (<usize>i << 2)), absMask));
    let amax = max(max(<u32>i32x4.extract_lane(m, 0), <u32>i32x4.extract_lane(m, 1)), max(<u32>i32x4.extract_lane(m, 2), <u32>i32x4.extract_lane(m, 3)));
    for (; i < count; i++) amax = max(amax, load<u32>(src + (<usize>i << 2)) & 0x7fffffff);
    return amax;
  }
  // 16-bit floats: |h| orders like |x| (NaN above Inf), so take the max before widening.
  const absMask = i16x8.splat(0x7fff);
  let m = i16x8.splat(0);
  for (; i + 8 <= count; i += 8) m = i16x8.max_u(m, v128.and(v128.load(src + (<usize>i << 1)), absMask));
  m = i16x8.max_u(m, v128.shuffle<i16>(m, m, 4, 5, 6, 7, 0, 1, 2, 3));
  m = i16x8.max_u(m, v128.shuffle<i16>(m, m, 2, 3, 0, 1, 6, 7, 4, 5));
  m = i16x8.max_u(m, v128.shuffle<i16>(m, m, 1, 0, 3, 2, 5, 4, 7, 6));
  let h = <u32>i16x8.extract_lane_u(m, 0);
  for (; i < count; i++) h = max(h, <u32>load<u16>(src + (<usize>i << 1)) & 0x7fff);
  return dtype == DTYPE_BF16 ? h << 16 : f16BitsToF32Bits(h);
}
