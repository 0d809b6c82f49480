// Block scale rules, shared by the reference backend and mirrored by the others.

import { bitsToFloat, ceilLog2Bits, floatToBits, floorLog2Bits } from './element-codec.js';
import type { ElementFormat } from '../../core/formats.js';

export const E8M0_BIAS = 127;

/**
 * Shared exponent of an MX block from the bits of its finite absolute maximum.
 * 'floor' (OCP MX v1.0): floor(log2 amax) − emax, exact from the exponent bits; an all-zero block
 *   uses floor(log2 FLT_MIN) = −126 as microxcaling does; clamped below at −127.
 * 'ceil' (NVIDIA / torchao RCEIL): ceil(log2(f32(amax / maxFinite))), so nothing clips;
 *   clamped to [−127, 127].
 */
export function mxScaleExponent(amaxBits: number, element: ElementFormat, ceilRule: boolean): number {
  let s: number;
  if (!ceilRule) {
    s = (amaxBits === 0 ? -126 : floorLog2Bits(amaxBits)) - element.maxExponent;
  } else {
    if (amaxBits === 0) return -127;
    const descale = Math.fround(bitsToFloat(amaxBits) / element.maxFinite);
    const d = floatToBits(descale);
    s = d === 0 ? -127 : ceilLog2Bits(d);
    if (s > 127) s = 127;
  }
  return s < -127 ? -127 : s;
}

export const E4M3_MIN_NORMAL = 2 ** -6; // torch.finfo(float8_e4m3fn).tiny
export const E4M3_MAX = 448;
export const E2M1_MAX = 6;

/** NVFP4 default tensor scale: amax / (448 · 6) in float32 (torchao per_tensor_amax_to_scale),
 *  raised to the smallest normal float32 so a block's total scale can never underflow to zero. */
export function nvfp4TensorScale(amax: number): number {
  const t = Math.fround(amax / (E4M3_MAX * E2M1_MAX));
  return t < 2 ** -126 ? 2 ** -126 : t;
}

/** NVFP4 block scale before its E4M3 cast: clamp((amax_b / 6) / tensorScale, 2^−6, 448) in float32. */
export function nvfp4ScaledBlockScale(blockAmax: number, tensorScale: number): number {
  const blockScale = Math.fround(blockAmax / E2M1_MAX);
  const scaled = Math.fround(blockScale / tensorScale);
  return scaled < E4M3_MIN_NORMAL ? E4M3_MIN_NORMAL : scaled > E4M3_MAX ? E4M3_MAX : scaled;
}
