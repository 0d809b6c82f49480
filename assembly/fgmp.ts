// FGMP candidates (the wasm twin of native/fgmp.cc and of candidates() in lib/fgmp/quantize.ts):
// for every block of 16, both encodings — E2M1 under an E4M3 block scale (with the
// sensitivity-weighted clipping search) and E4M3 under the per-tensor FP8 scale — and the
// Fisher-weighted impact of choosing FP4. The same float32 and float64 steps in the same order,
// so codes, scales and impacts are identical on every backend.

import { E2M1, E4M3, decodeTable, e2m1NearestCode, encodeElementBits, maxFiniteCode, minNormalExponent, mantissaBits, roundMagnitude, signBit } from './element-codec';

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

/** Rows [0, rows) of x (row-major, `cols` wide): fisher is 0 (none), one value per element, or one
 *  per column; outputs per block: impacts f64, fp4Codes ×16, fp4Scales ×1, fp8Codes ×16. */
export function fgmpCandidates(
  x: usize, rows: i32, cols: i32, fisher: usize, fisherPerElement: bool, tensorScale: f32, fp8Scale: f32, clipping: bool,
  impacts: usize, fp4Codes: usize, fp4Scales: usize, fp8Codes: usize,
): void {
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < blocksPerRow; j++) {
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
