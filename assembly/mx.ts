// OCP MX block quantization (blocks of 32 along a row, E8M0 shared exponent), the twin of
// quantizeMx / dequantizeMx in lib/kernels/ref/mx.ts and lib/kernels/ref/block-scale.ts.

import { blockBits } from "./dtype";
import {
  E2M1, INT8, ceilLog2Bits, decodeTable, e2m1NearestVec, e2m1StochasticVec, floorLog2Bits, formatBits, mantissaBits, maxExponent, maxFinite,
  maxFiniteCode, minNormalExponent, pow2f, quantizeScaledElement, roundNearestVec, signBit,
} from "./element-codec";
import { packCodes, packNibbles, unpackCodes } from "./pack";
import { randomBitsVec, streamBits, streamKey } from "./stochastic";

const BLOCK: i32 = 32;
const E8M0_BIAS: i32 = 127;
const codeScratch: usize = memory.data(BLOCK, 16);

/** Shared exponent from the bits of a finite block amax (mxScaleExponent in lib/kernels/ref/block-scale.ts). */
export function mxScaleExponent(amaxBits: u32, f: i32, ceilRule: bool): i32 {
  let s: i32;
  if (!ceilRule) {
    s = (amaxBits == 0 ? -126 : floorLog2Bits(amaxBits)) - maxExponent(f);
  } else {
    if (amaxBits == 0) return -127;
    const d = reinterpret<u32>(reinterpret<f32>(amaxBits) / maxFinite(f));
    s = d == 0 ? -127 : ceilLog2Bits(d);
    if (s > 127) s = 127;
  }
  return s < -127 ? -127 : s;
}

/** Bits of max |x| over `lanes` float32 words at p (≥ 0x7f800000 when Inf or NaN is present). */
// @ts-ignore: decorator
@inline
export function blockAbsMax(p: usize, lanes: i32): u32 {
  const absMask = i32x4.splat(0x7fffffff);
  let m = v128.and(v128.load(p), absMask);
  for (let k = 16; k < lanes << 2; k += 16) m = i32x4.max_u(m, v128.and(v128.load(p + <usize>k), absMask));
  m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
  m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 1, 0, 3, 2));
  return <u32>i32x4.extract_lane(m, 0);
}

/** Four nearest-even block codes of x·2^−s (saturated, signed as the format signs). */
// @ts-ignore: decorator
@inline
function scaledCodes(v: v128, multiplier: v128, cap: v128, sign: v128, int8: bool, mbits: i32, emin: i32): v128 {
  const abs = v128.and(v, i32x4.splat(0x7fffffff));
  // |x|·2^−s is exact unless it falls below 2^−126, far under half the smallest element.
  const mag = i32x4.min_u(roundNearestVec(f32x4.mul(abs, multiplier), mbits, emin), cap);
  const negative = i32x4.shr_s(v, 31);
  if (int8) return v128.bitselect(v128.and(i32x4.neg(mag), i32x4.splat(0xff)), mag, negative);
  return v128.or(mag, v128.and(negative, sign));
}

/** scaledCodes for E2M1, through its cheaper rounding (the hot MXFP4 path). */
// @ts-ignore: decorator
@inline
function e2m1Codes(v: v128, multiplier: v128): v128 {
  const abs = f32x4.mul(v128.and(v, i32x4.splat(0x7fffffff)), multiplier); // < 8
  const mag = i32x4.min_u(e2m1NearestVec(abs), i32x4.splat(7));
  return v128.or(mag, v128.and(i32x4.shr_s(v, 31), i32x4.splat(8)));
}

/** e2m1Codes with stochastic rounding. */
// @ts-ignore: decorator
@inline
function e2m1StochasticCodes(v: v128, multiplier: v128, random: v128): v128 {
  const abs = f32x4.mul(v128.and(v, i32x4.splat(0x7fffffff)), multiplier);
  const mag = i32x4.min_u(e2m1StochasticVec(abs, random), i32x4.splat(7));
  return v128.or(mag, v128.and(i32x4.shr_s(v, 31), i32x4.splat(8)));
}

export function quantizeMx(
  src: usize, dtype: i32, rows: i32, cols: i32, f: i32, ceilRule: bool, stochastic: bool, seed: u32, firstIndex: f64,
  data: usize, scales: usize,
): void {
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  const bits = formatBits(f);
  const blockBytes = <usize>(bits << 2); // 32 elements · bits / 8
  const mbits = mantissaBits(f);
  const emin = minNormalExponent(f);
  const cap = i32x4.splat(maxFiniteCode(f));
  const sign = i32x4.splat(signBit(f));
  const int8 = f == INT8;
  const base = <u64>firstIndex;
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const col0 = b * BLOCK;
      const count = min(BLOCK, cols - col0);
      const start = <usize>row * <usize>cols + <usize>col0;
      const p = blockBits(src, dtype, start, count, BLOCK);
      const amax = blockAbsMax(p, BLOCK);
      const blockIndex = <usize>row * <usize>blocksPerRow + <usize>b;
      const out = data + blockIndex * blockBytes;
      if (amax >= 0x7f800000) {
        store<u8>(scales + blockIndex, 0xff); // NaN or Inf in the block: the whole block is NaN
        memory.fill(out, 0, blockBytes);
        continue;
      }
      const s = mxScaleExponent(amax, f, ceilRule);
      store<u8>(scales + blockIndex, <u8>(s + E8M0_BIAS));
      if (stochastic) {
        const first = base + <u64>start;
        if (f == E2M1 && (first >>> 32) == ((first + BLOCK - 1) >>> 32)) {
          // SIMD: the block's 32 indices share one stream key.
          const key = streamKey(seed, <u32>(first >>> 32));
          const low = <u32>first;
          const multiplier = f32x4.splat(pow2f(-s));
          v128.store(out, packNibbles(
            i8x16.narrow_i16x8_u(
              i16x8.narrow_i32x4_u(e2m1StochasticCodes(v128.load(p), multiplier, randomBitsVec(key, low)), e2m1StochasticCodes(v128.load(p, 16), multiplier, randomBitsVec(key, low + 4))),
              i16x8.narrow_i32x4_u(e2m1StochasticCodes(v128.load(p, 32), multiplier, randomBitsVec(key, low + 8)), e2m1StochasticCodes(v128.load(p, 48), multiplier, randomBitsVec(key, low + 12))),
            ),
            i8x16.narrow_i16x8_u(
              i16x8.narrow_i32x4_u(e2m1StochasticCodes(v128.load(p, 64), multiplier, randomBitsVec(key, low + 16)), e2m1StochasticCodes(v128.load(p, 80), multiplier, randomBitsVec(key, low + 20))),
              i16x8.narrow_i32x4_u(e2m1StochasticCodes(v128.load(p, 96), multiplier, randomBitsVec(key, low + 24)), e2m1StochasticCodes(v128.load(p, 112), multiplier, randomBitsVec(key, low + 28))),
            ),
          ));
          // Padding lanes past `count` drew random bits too, but a zero stays zero.
          continue;
        }
        memory.fill(codeScratch, 0, BLOCK);
        for (let i = 0; i < count; i++) {
          const random = streamBits(seed, base + <u64>start + <u64>i);
          store<u8>(codeScratch + <usize>i, <u8>quantizeScaledElement(load<u32>(p + (<usize>i << 2)), s, f, true, random));
        }
        packCodes(codeScratch, BLOCK, bits, out);
        continue;
      }
      const multiplier = f32x4.splat(pow2f(-s));
      if (f == E2M1) {
        v128.store(out, packNibbles(
          i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(e2m1Codes(v128.load(p), multiplier), e2m1Codes(v128.load(p, 16), multiplier)),
            i16x8.narrow_i32x4_u(e2m1Codes(v128.load(p, 32), multiplier), e2m1Codes(v128.load(p, 48), multiplier))),
          i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(e2m1Codes(v128.load(p, 64), multiplier), e2m1Codes(v128.load(p, 80), multiplier)),
            i16x8.narrow_i32x4_u(e2m1Codes(v128.load(p, 96), multiplier), e2m1Codes(v128.load(p, 112), multiplier))),
        ));
        continue;
      }
      const c0 = scaledCodes(v128.load(p), multiplier, cap, sign, int8, mbits, emin);
      const c1 = scaledCodes(v128.load(p, 16), multiplier, cap, sign, int8, mbits, emin);
      const c2 = scaledCodes(v128.load(p, 32), multiplier, cap, sign, int8, mbits, emin);
      const c3 = scaledCodes(v128.load(p, 48), multiplier, cap, sign, int8, mbits, emin);
      const c4 = scaledCodes(v128.load(p, 64), multiplier, cap, sign, int8, mbits, emin);
      const c5 = scaledCodes(v128.load(p, 80), multiplier, cap, sign, int8, mbits, emin);
      const c6 = scaledCodes(v128.load(p, 96), multiplier, cap, sign, int8, mbits, emin);
      const c7 = scaledCodes(v128.load(p, 112), multiplier, cap, sign, int8, mbits, emin);
      const first = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3));
      const second = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c4, c5), i16x8.narrow_i32x4_u(c6, c7));
      if (bits == 4) {
        v128.store(out, packNibbles(first, second));
      } else if (bits == 8) {
        v128.store(out, first);
        v128.store(out, second, 16);
      } else {
        v128.store(codeScratch, first);
        v128.store(codeScratch, second, 16);
        packCodes(codeScratch, BLOCK, bits, out);
      }
    }
  }
}

/**
 * 16 E2M1 codes (one per byte, in order) → 16 float32 values times `scale`, stored at out.
 * The E2M1 values have zero low halves, so two byte-table lookups build each float32.
 */
// @ts-ignore: decorator
@inline
export function storeE2m1Values(codes: v128, scale: v128, out: usize): void {
  const top = i8x16.swizzle(i8x16(0, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40, -128, -65, -65, -65, -64, -64, -64, -64), codes);
  const next = i8x16.swizzle(i8x16(0, 0, -128, -64, 0, 64, -128, -64, 0, 0, -128, -64, 0, 64, -128, -64), codes);
  const low8 = i8x16.shuffle(next, top, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const high8 = i8x16.shuffle(next, top, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  v128.store(out, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(low8), 16), scale));
  v128.store(out, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(low8), 16), scale), 16);
  v128.store(out, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(high8), 16), scale), 32);
  v128.store(out, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(high8), 16), scale), 48);
}

export function dequantizeMx(data: usize, scales: usize, rows: i32, cols: i32, f: i32, out: usize): void {
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  const bits = formatBits(f);
  const blockBytes = <usize>(bits << 2);
  const table = decodeTable(f);
  const mask = i8x16.splat(0x0f);
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const blockIndex = <usize>row * <usize>blocksPerRow + <usize>b;
      const code = <i32>load<u8>(scales + blockIndex);
      const scale: f32 = code == 0xff ? NaN : pow2f(code - E8M0_BIAS);
      const col0 = b * BLOCK;
      const count = min(BLOCK, cols - col0);
      const o = out + ((<usize>row * <usize>cols + <usize>col0) << 2);
      const packed = data + blockIndex * blockBytes;
      if (f == E2M1 && count == BLOCK) {
        const v = v128.load(packed);
        const lo = v128.and(v, mask);
        const hi = i8x16.shr_u(v, 4);
        const s = f32x4.splat(scale);
        storeE2m1Values(i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), s, o);
        storeE2m1Values(i8x16.shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), s, o + 64);
        continue;
      }
      unpackCodes(packed, BLOCK, bits, codeScratch);
      for (let i = 0; i < count; i++) {
        store<f32>(o + (<usize>i << 2), load<f32>(table + (<usize>load<u8>(codeScratch + <usize>i) << 2)) * scale);
      }
    }
  }
}
