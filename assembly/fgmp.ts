// FGMP candidates (the wasm twin of native/fgmp.cc and of candidates() in lib/fgmp/quantize.ts):
// for every block of 16, both encodings — E2M1 under an E4M3 block scale (with the
// sensitivity-weighted clipping search) and E4M3 under the per-tensor FP8 scale — and the
// Fisher-weighted impact of choosing FP4. The same float32 and float64 steps in the same order,
// so codes, scales and impacts are identical on every backend.

import { E2M1, E4M3, decodeTable, e2m1NearestCode, e2m1NearestVec, encodeElementBits, maxFiniteCode, minNormalExponent, mantissaBits, roundMagnitude, roundNearestVec, signBit } from './element-codec';

const BLOCK: i32 = 16;
const block: usize = memory.data(BLOCK * 4, 16);
const q4: usize = memory.data(BLOCK * 4, 16);
const q8: usize = memory.data(BLOCK * 4, 16);
const scratchCodes: usize = memory.data(BLOCK, 16);
const scratchValues: usize = memory.data(BLOCK * 4, 16);

// @ts-ignore: decorator
@inline
function e4m3Value(code: i32): f32 {
  return load<f32>(decodeTable(E4M3) + (<usize>code << 2));
}

/** Saturating nearest-even E4M3 code of a float32 already scaled into range (saturatingCode). */
function e4m3SaturatingCode(v: f32): u8 {
  const bits = reinterpret<u32>(v);
  const abs = bits & 0x7fffffff;
  let mag = abs == 0 ? 0 : roundMagnitude(abs, 0, mantissaBits(E4M3), minNormalExponent(E4M3), false, 0);
  if (mag > maxFiniteCode(E4M3)) mag = maxFiniteCode(E4M3);
  return <u8>((bits >>> 31) != 0 ? mag | signBit(E4M3) : mag);
}

/** Codes and dequantized values of a block under E4M3 scale code `scaleCode` (quantizeFp4Block). */
function quantizeFp4Block(x: usize, count: i32, tensorScale: f32, scaleCode: i32, codes: usize, values: usize): void {
  const total: f32 = tensorScale * e4m3Value(scaleCode);
  const e2m1 = decodeTable(E2M1);
  for (let i = 0; i < BLOCK; i++) {
    if (i >= count) {
      store<u8>(codes + <usize>i, 0);
      store<f32>(values + (<usize>i << 2), 0);
      continue;
    }
    const v = min(max(load<f32>(x + (<usize>i << 2)) / total, <f32>-6.0), <f32>6.0);
    const c = e2m1NearestCode(v);
    store<u8>(codes + <usize>i, c);
    store<f32>(values + (<usize>i << 2), load<f32>(e2m1 + (<usize>c << 2)) * total);
  }
}

function quantizeFp8Block(x: usize, count: i32, fp8Scale: f32, codes: usize, values: usize): void {
  for (let i = 0; i < BLOCK; i++) {
    if (i >= count) {
      store<u8>(codes + <usize>i, 0);
      store<f32>(values + (<usize>i << 2), 0);
      continue;
    }
    const v = min(max(load<f32>(x + (<usize>i << 2)) / fp8Scale, <f32>-448.0), <f32>448.0);
    const c = e4m3SaturatingCode(v);
    store<u8>(codes + <usize>i, c);
    store<f32>(values + (<usize>i << 2), e4m3Value(c) * fp8Scale);
  }
}

/** Σ w_i (x_i − q_i)² in float64, in element order (w = 0: all weights 1). */
function weightedError(x: usize, q: usize, w: usize, count: i32): f64 {
  let e: f64 = 0;
  for (let i = 0; i < count; i++) {
    const d = <f64>load<f32>(x + (<usize>i << 2)) - <f64>load<f32>(q + (<usize>i << 2));
    e += (w != 0 ? <f64>load<f32>(w + (<usize>i << 2)) : 1.0) * d * d;
  }
  return e;
}

/** The E4M3 scale among the recipe's code and those down to half its value with the least
 *  weighted error; ties keep the larger scale (clippedFp4ScaleCode). */
function clippedScaleCode(x: usize, count: i32, tensorScale: f32, base: i32, w: usize): i32 {
  let best = base;
  let bestError: f64 = Infinity;
  const floorValue = <f64>e4m3Value(base) / 2;
  for (let c = base; c >= 1 && <f64>e4m3Value(c) >= floorValue; c--) {
    quantizeFp4Block(x, count, tensorScale, c, scratchCodes, scratchValues);
    const err = weightedError(x, scratchValues, w, count);
    if (err < bestError) {
      bestError = err;
      best = c;
    }
  }
  return best;
}

// ---- four blocks at once (SIMD128): one lane per block, each lane the steps above in their order ----

// Element i of four blocks (lanes), their Fisher weights, and per-lane scratch.
const xs: usize = memory.data(BLOCK * 16, 16);
const wLow: usize = memory.data(BLOCK * 16, 16); // f64x2: blocks 0, 1
const wHigh: usize = memory.data(BLOCK * 16, 16); // f64x2: blocks 2, 3
const codes4: usize = memory.data(BLOCK * 16, 16);
const codes8: usize = memory.data(BLOCK * 16, 16);

// @ts-ignore: decorator
@inline
function low2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}

// @ts-ignore: decorator
@inline
function high2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 2, 3));
}

/** Lanes of the 64-bit masks m01 (blocks 0, 1) and m23 (2, 3) as one i32x4 mask. */
// @ts-ignore: decorator
@inline
function narrowMask(m01: v128, m23: v128): v128 {
  return v128.shuffle<i32>(m01, m23, 0, 2, 4, 6);
}

/** The E2M1 value (sign included) of codes whose magnitude is `mag` and sign the sign of `v`. */
// @ts-ignore: decorator
@inline
function e2m1ValueVec(mag: v128, v: v128): v128 {
  const m = f32x4.convert_i32x4_s(mag);
  const upper = v128.bitselect(f32x4.splat(6.0), f32x4.sub(m, f32x4.splat(2.0)), i32x4.eq(mag, i32x4.splat(7)));
  const value = v128.bitselect(f32x4.mul(m, f32x4.splat(0.5)), upper, i32x4.lt_s(mag, i32x4.splat(4)));
  return v128.or(value, v128.and(v, i32x4.splat(0x80000000)));
}

/** quantizeFp4Block's code and value of element `v` of four blocks under their `total`. */
// @ts-ignore: decorator
@inline
function fp4Lane(x: v128, total: v128, codeOut: usize): v128 {
  const v = f32x4.min(f32x4.max(f32x4.div(x, total), f32x4.splat(-6.0)), f32x4.splat(6.0));
  const mag = i32x4.min_s(e2m1NearestVec(v128.and(v, i32x4.splat(0x7fffffff))), i32x4.splat(7));
  if (codeOut != 0) v128.store(codeOut, v128.or(mag, v128.and(i32x4.shr_u(v, 28), i32x4.splat(8))));
  return f32x4.mul(e2m1ValueVec(mag, v), total);
}

/** The E4M3 value (sign included) of codes `code`: m·2^−9, or (8 + m)·2^(e − 10). */
// @ts-ignore: decorator
@inline
function e4m3ValueVec(code: v128): v128 {
  const mag = v128.and(code, i32x4.splat(0x7f));
  const field = i32x4.shr_u(mag, 3);
  const mantissa = v128.and(mag, i32x4.splat(7));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(mantissa), f32x4.splat(<f32>1.0 / 512));
  const normal = f32x4.mul(f32x4.convert_i32x4_s(i32x4.add(mantissa, i32x4.splat(8))), i32x4.shl(i32x4.add(field, i32x4.splat(127 - 10)), 23));
  const value = v128.bitselect(sub, normal, i32x4.eq(field, i32x4.splat(0)));
  return v128.or(value, i32x4.shl(v128.and(code, i32x4.splat(0x80)), 24));
}

/** Blocks j … j + 3 of row r, all four whole (16 elements): fgmpCandidates' steps lane by lane. */
function fourBlocks(
  x: usize, r: i32, cols: i32, j: i32, w: usize, tensorScale: f32, fp8Scale: f32, clipping: bool,
  impacts: usize, fp4Codes: usize, fp4Scales: usize, fp8Codes: usize, blocksPerRow: i32,
): void {
  const rowAt = x + ((<usize>r * <usize>cols + <usize>(j * BLOCK)) << 2);
  // Element i of the four blocks: a 4 × 4 transpose per 4 elements.
  for (let i = 0; i < BLOCK; i += 4) {
    const b0 = v128.load(rowAt + (<usize>i << 2)), b1 = v128.load(rowAt + (<usize>(BLOCK + i) << 2));
    const b2 = v128.load(rowAt + (<usize>(2 * BLOCK + i) << 2)), b3 = v128.load(rowAt + (<usize>(3 * BLOCK + i) << 2));
    const t0 = v128.shuffle<i32>(b0, b1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(b0, b1, 2, 6, 3, 7);
    const t2 = v128.shuffle<i32>(b2, b3, 0, 4, 1, 5), t3 = v128.shuffle<i32>(b2, b3, 2, 6, 3, 7);
    v128.store(xs + (<usize>i << 4), v128.shuffle<i64>(t0, t2, 0, 2));
    v128.store(xs + (<usize>(i + 1) << 4), v128.shuffle<i64>(t0, t2, 1, 3));
    v128.store(xs + (<usize>(i + 2) << 4), v128.shuffle<i64>(t1, t3, 0, 2));
    v128.store(xs + (<usize>(i + 3) << 4), v128.shuffle<i64>(t1, t3, 1, 3));
  }
  for (let i = 0; i < BLOCK; i++) {
    let w01 = f64x2.splat(1.0), w23 = f64x2.splat(1.0);
    if (w != 0) {
      const at = w + (<usize>i << 2);
      w01 = f64x2(<f64>load<f32>(at), <f64>load<f32>(at + (<usize>BLOCK << 2)));
      w23 = f64x2(<f64>load<f32>(at + (<usize>(2 * BLOCK) << 2)), <f64>load<f32>(at + (<usize>(3 * BLOCK) << 2)));
    }
    v128.store(wLow + (<usize>i << 4), w01);
    v128.store(wHigh + (<usize>i << 4), w23);
  }
  let amax = f32x4.splat(0);
  for (let i = 0; i < BLOCK; i++) amax = f32x4.max(amax, f32x4.abs(v128.load(xs + (<usize>i << 4))));
  // The recipe's scale code per block (scalar per lane, as in fgmpCandidates).
  let chosen = i32x4.splat(0);
  for (let l = 0; l < 4; l++) {
    let scaled: f32 = (v128.extract_lane<f32>(amax, 0) / <f32>6.0) / tensorScale;
    if (l == 1) scaled = (f32x4.extract_lane(amax, 1) / <f32>6.0) / tensorScale;
    else if (l == 2) scaled = (f32x4.extract_lane(amax, 2) / <f32>6.0) / tensorScale;
    else if (l == 3) scaled = (f32x4.extract_lane(amax, 3) / <f32>6.0) / tensorScale;
    scaled = scaled < <f32>0.015625 ? <f32>0.015625 : scaled > <f32>448.0 ? <f32>448.0 : scaled;
    const code = encodeElementBits(reinterpret<u32>(scaled), E4M3, false, 0);
    chosen = l == 0 ? i32x4.replace_lane(chosen, 0, code) : l == 1 ? i32x4.replace_lane(chosen, 1, code) : l == 2 ? i32x4.replace_lane(chosen, 2, code) : i32x4.replace_lane(chosen, 3, code);
  }
  if (clipping) {
    // clippedScaleCode: the recipe's code and those down to half its value; strict improvement.
    const base = chosen;
    let best01 = f64x2.splat(Infinity), best23 = f64x2.splat(Infinity);
    for (let step = 0; step <= 8; step++) {
      let valid = i32x4.splat(0);
      let total = f32x4.splat(0);
      let any = false;
      for (let l = 0; l < 4; l++) {
        const b = l == 0 ? i32x4.extract_lane(base, 0) : l == 1 ? i32x4.extract_lane(base, 1) : l == 2 ? i32x4.extract_lane(base, 2) : i32x4.extract_lane(base, 3);
        const c = b - step;
        const ok = c >= 1 && <f64>e4m3Value(c) >= <f64>e4m3Value(b) / 2;
        any = any || ok;
        const t: f32 = tensorScale * e4m3Value(c >= 1 ? c : 1);
        if (l == 0) { valid = i32x4.replace_lane(valid, 0, ok ? -1 : 0); total = f32x4.replace_lane(total, 0, t); }
        else if (l == 1) { valid = i32x4.replace_lane(valid, 1, ok ? -1 : 0); total = f32x4.replace_lane(total, 1, t); }
        else if (l == 2) { valid = i32x4.replace_lane(valid, 2, ok ? -1 : 0); total = f32x4.replace_lane(total, 2, t); }
        else { valid = i32x4.replace_lane(valid, 3, ok ? -1 : 0); total = f32x4.replace_lane(total, 3, t); }
      }
      if (!any) break;
      let e01 = f64x2.splat(0), e23 = f64x2.splat(0);
      for (let i = 0; i < BLOCK; i++) {
        const xi = v128.load(xs + (<usize>i << 4));
        const q = fp4Lane(xi, total, 0);
        const d01 = f64x2.sub(low2(xi), low2(q)), d23 = f64x2.sub(high2(xi), high2(q));
        e01 = f64x2.add(e01, f64x2.mul(f64x2.mul(v128.load(wLow + (<usize>i << 4)), d01), d01));
        e23 = f64x2.add(e23, f64x2.mul(f64x2.mul(v128.load(wHigh + (<usize>i << 4)), d23), d23));
      }
      const better = v128.and(valid, narrowMask(f64x2.lt(e01, best01), f64x2.lt(e23, best23)));
      best01 = v128.bitselect(e01, best01, i64x2.extend_low_i32x4_s(better));
      best23 = v128.bitselect(e23, best23, i64x2.extend_high_i32x4_s(better));
      chosen = v128.bitselect(i32x4.sub(base, i32x4.splat(step)), chosen, better);
    }
  }
  let total = f32x4.splat(0);
  total = f32x4.replace_lane(total, 0, tensorScale * e4m3Value(i32x4.extract_lane(chosen, 0)));
  total = f32x4.replace_lane(total, 1, tensorScale * e4m3Value(i32x4.extract_lane(chosen, 1)));
  total = f32x4.replace_lane(total, 2, tensorScale * e4m3Value(i32x4.extract_lane(chosen, 2)));
  total = f32x4.replace_lane(total, 3, tensorScale * e4m3Value(i32x4.extract_lane(chosen, 3)));
  const fp8 = f32x4.splat(fp8Scale);
  let i01 = f64x2.splat(0), i23 = f64x2.splat(0);
  for (let i = 0; i < BLOCK; i++) {
    const xi = v128.load(xs + (<usize>i << 4));
    const q4 = fp4Lane(xi, total, codes4 + (<usize>i << 4));
    // quantizeFp8Block: the saturating nearest-even E4M3 code of x / fp8Scale clamped to ±448.
    const v8 = f32x4.min(f32x4.max(f32x4.div(xi, fp8), f32x4.splat(-448.0)), f32x4.splat(448.0));
    const mag8 = i32x4.min_u(roundNearestVec(v128.and(v8, i32x4.splat(0x7fffffff)), mantissaBits(E4M3), minNormalExponent(E4M3)), i32x4.splat(maxFiniteCode(E4M3)));
    const c8 = v128.or(mag8, v128.and(i32x4.shr_u(v8, 24), i32x4.splat(0x80)));
    v128.store(codes8 + (<usize>i << 4), c8);
    const q8 = f32x4.mul(e4m3ValueVec(c8), fp8);
    const d01 = f64x2.sub(low2(q4), low2(q8)), d23 = f64x2.sub(high2(q4), high2(q8));
    i01 = f64x2.add(i01, f64x2.mul(f64x2.mul(v128.load(wLow + (<usize>i << 4)), d01), d01));
    i23 = f64x2.add(i23, f64x2.mul(f64x2.mul(v128.load(wHigh + (<usize>i << 4)), d23), d23));
  }
  const b0 = <usize>r * <usize>blocksPerRow + <usize>j;
  store<f64>(impacts + (b0 << 3), f64x2.extract_lane(i01, 0));
  store<f64>(impacts + ((b0 + 1) << 3), f64x2.extract_lane(i01, 1));
  store<f64>(impacts + ((b0 + 2) << 3), f64x2.extract_lane(i23, 0));
  store<f64>(impacts + ((b0 + 3) << 3), f64x2.extract_lane(i23, 1));
  store<u8>(fp4Scales + b0, <u8>i32x4.extract_lane(chosen, 0));
  store<u8>(fp4Scales + b0 + 1, <u8>i32x4.extract_lane(chosen, 1));
  store<u8>(fp4Scales + b0 + 2, <u8>i32x4.extract_lane(chosen, 2));
  store<u8>(fp4Scales + b0 + 3, <u8>i32x4.extract_lane(chosen, 3));
  // Codes: element i of block l is byte 4·l of the i-th stored vector (little-endian lanes).
  for (let l = 0; l < 4; l++) {
    for (let i = 0; i < BLOCK; i++) {
      store<u8>(fp4Codes + ((b0 + <usize>l) << 4) + <usize>i, load<u8>(codes4 + (<usize>i << 4) + (<usize>l << 2)));
      store<u8>(fp8Codes + ((b0 + <usize>l) << 4) + <usize>i, load<u8>(codes8 + (<usize>i << 4) + (<usize>l << 2)));
    }
  }
}

/** Rows [0, rows) of x (row-major, `cols` wide): fisher is 0 (none), one value per element, or one
 *  per column; outputs per block: impacts f64, fp4Codes ×16, fp4Scales ×1, fp8Codes ×16. Whole
 *  blocks four at a time (fourBlocks), the rest one by one; the same bytes either way. */
export function fgmpCandidates(
  x: usize, rows: i32, cols: i32, fisher: usize, fisherPerElement: bool, tensorScale: f32, fp8Scale: f32, clipping: bool,
  impacts: usize, fp4Codes: usize, fp4Scales: usize, fp8Codes: usize,
): void {
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  const wholeBlocks = cols / BLOCK;
  for (let r = 0; r < rows; r++) {
    let j = 0;
    for (; j + 4 <= wholeBlocks; j += 4) {
      const w: usize = fisher == 0 ? 0 : fisher + (((fisherPerElement ? <usize>r * <usize>cols : 0) + <usize>(j * BLOCK)) << 2);
      fourBlocks(x, r, cols, j, w, tensorScale, fp8Scale, clipping, impacts, fp4Codes, fp4Scales, fp8Codes, blocksPerRow);
    }
    for (; j < blocksPerRow; j++) {
      const b = <usize>r * <usize>blocksPerRow + <usize>j;
      const col0 = j * BLOCK;
      const count = min(BLOCK, cols - col0);
      let amax: f32 = 0;
      for (let i = 0; i < BLOCK; i++) {
        const v: f32 = i < count ? load<f32>(x + ((<usize>r * <usize>cols + <usize>(col0 + i)) << 2)) : 0;
        store<f32>(block + (<usize>i << 2), v);
        amax = max(amax, Mathf.abs(v));
      }
      const w: usize = fisher == 0 ? 0 : fisher + (((fisherPerElement ? <usize>r * <usize>cols : 0) + <usize>col0) << 2);
      // nvfp4ScaledBlockScale: clamp(f32(f32(amax / 6) / tensorScale), 2^−6, 448), then E4M3.
      let scaled: f32 = (amax / <f32>6.0) / tensorScale;
      scaled = scaled < <f32>0.015625 ? <f32>0.015625 : scaled > <f32>448.0 ? <f32>448.0 : scaled;
      let code = encodeElementBits(reinterpret<u32>(scaled), E4M3, false, 0);
      if (clipping) code = clippedScaleCode(block, count, tensorScale, code, w);
      store<u8>(fp4Scales + b, <u8>code);
      quantizeFp4Block(block, count, tensorScale, code, fp4Codes + (b << 4), q4);
      quantizeFp8Block(block, count, fp8Scale, fp8Codes + (b << 4), q8);
      let impact: f64 = 0;
      for (let i = 0; i < count; i++) {
        const d = <f64>load<f32>(q4 + (<usize>i << 2)) - <f64>load<f32>(q8 + (<usize>i << 2));
        impact += (w != 0 ? <f64>load<f32>(w + (<usize>i << 2)) : 1.0) * d * d;
      }
      store<f64>(impacts + (b << 3), impact);
    }
  }
}
