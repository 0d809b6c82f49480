// Where XNNPACK's window geometry departs from tfjs's. The wasm base hands its depthwise
// convolutions and 2-D pools to XNNPACK with tfjs's paddings but the output tensor tfjs allocated
// from its own Conv2DInfo, and XNNPACK computes the output size again by its own rule:
//   'same' depthwise (XNN_FLAG_TENSORFLOW_SAME_PADDING)   ceil(in / stride)
//   everything else                                       max(in + padBefore + padAfter − window, 0) / stride + 1
// with window the dilated filter. tfjs's sizes differ whenever a number padding meets
// dimRoundingMode 'ceil' or 'round', or a non-square filter or stride (tfjs 4.22 computes both output
// sizes of a number padding from the filter's height and the height's stride), or the window is
// larger than the padded image. XNNPACK then writes past the output (an out-of-bounds write, or a
// trap: every later call of that backend instance fails) or leaves part of it unwritten (stale heap
// values), and a window larger than the padded image reads past the input. Found by a differential
// fuzz against tfjs cpu (2026-12-07: 3,300 random calls of the four kernels, each on a fresh wasm
// instance): every wrong call that the other checks in cpu-fallback.ts left on the base is one this
// predicate names.

import type { backend_util } from '@tensorflow/tfjs';

/** XNNPACK's output size along one axis (see the header). */
function xnnpackOutputSize(input: number, padBefore: number, padAfter: number, window: number, stride: number, samePadding: boolean): number {
  if (samePadding) return Math.ceil(input / stride);
  return Math.floor(Math.max(input + padBefore + padAfter - window, 0) / stride) + 1;
}

/**
 * Whether XNNPACK would run this window geometry other than tfjs defines it: another output size on
 * either axis, or a window larger than the padded image. `samePadding`: the call passes XNNPACK the
 * TensorFlow-SAME flag (the wasm base's depthwise convolutions with 'same'), not explicit paddings.
 */
export function xnnpackGeometryDiffers(info: backend_util.Conv2DInfo, samePadding: boolean): boolean {
  const { top, bottom, left, right } = info.padInfo;
  const window = [info.effectiveFilterHeight, info.effectiveFilterWidth];
  const padded = [info.inHeight + top + bottom, info.inWidth + left + right];
  if (window[0] > padded[0] || window[1] > padded[1]) return true;
  return xnnpackOutputSize(info.inHeight, top, bottom, window[0], info.strideHeight, samePadding) !== info.outHeight
    || xnnpackOutputSize(info.inWidth, left, right, window[1], info.strideWidth, samePadding) !== info.outWidth;
}
