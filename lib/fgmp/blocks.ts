// The two block encodings FGMP mixes, on blocks of 16 float32 values (given as bits):
// - FP4: NVFP4's E2M1 elements under an E4M3 block scale and the float32 tensor scale;
// - FP8: E4M3 elements under one float32 per-tensor scale (no block scale).
// All float steps are float32 operations, in the order written here.

import { E2M1_MAX, E4M3_MAX, nvfp4ScaledBlockScale } from '../kernels/ref/block-scale.js';
import { decodeTable, encodeElementBits, floatToBits, roundMagnitude } from '../kernels/ref/element-codec.js';
import { ELEMENT_FORMATS } from '../core/formats.js';

export const FGMP_BLOCK = 16;
const e2m1 = ELEMENT_FORMATS.e2m1;
const e4m3 = ELEMENT_FORMATS.e4m3;
export const E2M1_VALUES = decodeTable(e2m1);
export const E4M3_VALUES = decodeTable(e4m3);

/** Saturating RNE code of a float32 value already scaled into the format's range. */
function saturatingCode(v: number, format: typeof e2m1): number {
  const bits = floatToBits(v);
  const abs = bits & 0x7fffffff;
  let mag = abs === 0 ? 0 : roundMagnitude(abs, 0, format, -1);
  if (mag > format.maxFiniteCode) mag = format.maxFiniteCode;
  return (bits >>> 31) !== 0 ? mag | format.signBit : mag;
}

/** FP8 per-tensor decode scale: amax/448 in float32, at least the smallest normal float32. */
export function fp8TensorScale(amax: number): number {
  const s = Math.fround(amax / E4M3_MAX);
  return s < 2 ** -126 ? 2 ** -126 : s;
}

export function quantizeFp8Block(x: Float32Array, count: number, fp8Scale: number, codes: Uint8Array, values?: Float32Array): void {
  for (let i = 0; i < FGMP_BLOCK; i++) {
    if (i >= count) { codes[i] = 0; if (values) values[i] = 0; continue; }
    let v = Math.fround(x[i] / fp8Scale);
    if (v > E4M3_MAX) v = E4M3_MAX;
    else if (v < -E4M3_MAX) v = -E4M3_MAX;
    codes[i] = saturatingCode(v, e4m3);
    if (values) values[i] = Math.fround(E4M3_VALUES[codes[i]] * fp8Scale);
  }
}

/** The NVFP4 recipe's E4M3 block-scale code for a block with this absolute maximum. */
export function fp4ScaleCode(blockAmax: number, tensorScale: number): number {
  return encodeElementBits(floatToBits(nvfp4ScaledBlockScale(blockAmax, tensorScale)), e4m3, -1);
}

/** E2M1 codes of a block under E4M3 scale code `scaleCode`; optional dequantized values. */
export function quantizeFp4Block(
  x: Float32Array, count: number, tensorScale: number, scaleCode: number, codes: Uint8Array, values?: Float32Array,
): void {
  const total = Math.fround(tensorScale * E4M3_VALUES[scaleCode]);
  for (let i = 0; i < FGMP_BLOCK; i++) {
    if (i >= count) { codes[i] = 0; if (values) values[i] = 0; continue; }
    let v = Math.fround(x[i] / total);
    if (v > E2M1_MAX) v = E2M1_MAX;
    else if (v < -E2M1_MAX) v = -E2M1_MAX;
    codes[i] = saturatingCode(v, e2m1);
    if (values) values[i] = Math.fround(E2M1_VALUES[codes[i]] * total);
  }
}

/** Σ w_i (x_i − q_i)² over a block, in float64, in element order. */
export function weightedError(x: Float32Array, q: Float32Array, weights: Float32Array | null, wOffset: number, wStride: number, count: number): number {
  let e = 0;
  for (let i = 0; i < count; i++) {
    const d = x[i] - q[i];
    e += (weights ? weights[wOffset + i * wStride] : 1) * d * d;
  }
  return e;
}

/**
 * Sensitivity-weighted clipping: among the E4M3 scale codes from the recipe's code down to half
 * its value, both included (one binade and its end: up to 9 candidates), keep the one with the
 * least Fisher-weighted squared error.
 * Ties keep the larger scale (less clipping).
 */
export function clippedFp4ScaleCode(
  x: Float32Array, count: number, tensorScale: number, baseCode: number,
  weights: Float32Array | null, wOffset: number, wStride: number,
  scratchCodes: Uint8Array, scratchValues: Float32Array,
): number {
  let best = baseCode;
  let bestError = Infinity;
  const floorValue = E4M3_VALUES[baseCode] / 2;
  for (let c = baseCode; c >= 1 && E4M3_VALUES[c] >= floorValue; c--) {
    quantizeFp4Block(x, count, tensorScale, c, scratchCodes, scratchValues);
    const err = weightedError(x, scratchValues, weights, wOffset, wStride, count);
    if (err < bestError) { bestError = err; best = c; }
  }
  return best;
}

export function blockAbsMax(x: Float32Array, count: number): number {
  let m = 0;
  for (let i = 0; i < count; i++) {
    const a = Math.abs(x[i]);
    if (a > m) m = a;
  }
  return m;
}

