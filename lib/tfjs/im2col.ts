// im2col / col2im for 2-D convolutions, NHWC or NCHW: each output pixel's receptive field as one
// row of a matrix, so a convolution is one product of that matrix with the filter seen as a
// [K, N] weight, K = filter height × filter width × input channels (in that order: the filter
// tensor's own memory order) and N = output channels. col2im is the adjoint: it adds each row of
// a patch-gradient matrix back onto the input pixels it came from.

import type { backend_util } from '@tensorflow/tfjs';
import { DtypeId } from '../core/formats.js';
import { getKernels } from '../kernels/registry.js';

/** Where element (image, row, col, channel) of an image tensor is: the sum of index × stride. */
export interface ImageStrides {
  image: number;
  row: number;
  col: number;
  channel: number;
}

/** Strides of a [batch, height, width, channels] image stored NHWC (channelsLast) or NCHW. */
export function imageStrides(height: number, width: number, channels: number, channelsLast: boolean): ImageStrides {
  return channelsLast
    ? { image: height * width * channels, row: width * channels, col: channels, channel: 1 }
    : { image: channels * height * width, row: width, col: 1, channel: height * width };
}

/**
 * Visits every in-bounds tap of patches [p0, p1) (patch p is output pixel p of the batch, in
 * image/row/col order: a range may start or end inside an image): patch p − p0, column
 * kc = (fr · filterWidth + fc) · inChannels of its first channel, and the input offset of that
 * channel. Taps in the padding are skipped.
 */
function forEachTap(info: backend_util.Conv2DInfo, x: ImageStrides, p0: number, p1: number, visit: (p: number, kc: number, from: number) => void): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const pixels = outHeight * outWidth;
  for (let p = p0; p < p1; p++) {
    const image = Math.floor(p / pixels);
    const oy = Math.floor((p - image * pixels) / outWidth);
    const ox = p - image * pixels - oy * outWidth;
    for (let fr = 0; fr < filterHeight; fr++) {
      const iy = oy * strideHeight - top + fr * dilationHeight;
      if (iy < 0 || iy >= inHeight) continue;
      for (let fc = 0; fc < filterWidth; fc++) {
        const ix = ox * strideWidth - left + fc * dilationWidth;
        if (ix < 0 || ix >= inWidth) continue;
        visit(p - p0, (fr * filterWidth + fc) * inChannels, image * x.image + iy * x.row + ix * x.col);
      }
    }
  }
}

/**
 * Whether a padding tap's zero can meet NaN or ±Inf in the product: the convolution has padding and
 * `operand` (the filter, or dY for the filter's gradient) holds a non-finite value. tfjs's cpu
 * backend skips padding taps, so only a product over im2col's zeros makes 0·Inf = NaN at the image
 * borders; the kernels send such a call (a diverged run) to the cpu backend instead.
 */
export function paddingMeetsNonFinite(info: backend_util.Conv2DInfo, operand: Float32Array): boolean {
  const pad = info.padInfo;
  if (pad.top <= 0 && pad.bottom <= 0 && pad.left <= 0 && pad.right <= 0) return false;
  return hasNonFinite(operand);
}

/** Whether `values` holds NaN or ±Inf: the kernels' absMax (native SIMD over the addon's threads
 *  where loaded), which is NaN or +Inf exactly then; a plain loop ran at ~1 GB/s. */
export function hasNonFinite(values: Float32Array): boolean {
  return values.length > 0 && !Number.isFinite(getKernels().absMax(values, DtypeId.f32));
}

/**
 * Writes patches [p0, p1) (output pixels of the batch) into `out`: patch p and column kc go to
 * out[(p − p0) · rowStep + kc · colStep]. Taps in the padding are left untouched: `out` starts zeroed.
 */
export function im2col(src: Float32Array, strides: ImageStrides, info: backend_util.Conv2DInfo, p0: number, p1: number, out: Float32Array, rowStep: number, colStep: number): void {
  const channels = info.inChannels;
  const cs = strides.channel;
  if (cs === 1 && colStep === 1) {
    if (channels >= 16) {
      // A tap's channels are one contiguous run: one memcpy (set) each — 5× the plain loop at 256
      // channels; below ~16 the subarray made per (patch, tap) costs more than it saves.
      forEachTap(info, strides, p0, p1, (p, kc, from) => out.set(src.subarray(from, from + channels), p * rowStep + kc));
      return;
    }
    forEachTap(info, strides, p0, p1, (p, kc, from) => {
      const to = p * rowStep + kc;
      for (let c = 0; c < channels; c++) out[to + c] = src[from + c];
    });
    return;
  }
  forEachTap(info, strides, p0, p1, (p, kc, from) => {
    const to = p * rowStep + kc * colStep;
    for (let c = 0; c < channels; c++) out[to + c * colStep] = src[from + c * cs];
  });
}

/**
 * The adjoint of im2col for patches [p0, p1): adds patches[(p − p0) · rowStep + kc] onto the input
 * element it was read from, in patch order, then tap order, then channel order (float32 additions:
 * a fixed order, the same whatever ranges the patches come in, if the ranges come in order).
 */
export function col2im(patches: Float32Array, rowStep: number, info: backend_util.Conv2DInfo, strides: ImageStrides, p0: number, p1: number, dx: Float32Array): void {
  const channels = info.inChannels;
  const cs = strides.channel;
  forEachTap(info, strides, p0, p1, (p, kc, to) => {
    const from = p * rowStep + kc;
    for (let c = 0; c < channels; c++) dx[to + c * cs] += patches[from + c];
  });
}
