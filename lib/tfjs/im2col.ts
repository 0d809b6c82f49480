// im2col / col2im for 2-D convolutions, NHWC or NCHW: each output pixel's receptive field as one
// row of a matrix, so a convolution is one product of that matrix with the filter seen as a
// [K, N] weight, K = filter height × filter width × input channels (in that order: the filter
// tensor's own memory order) and N = output channels. col2im is the adjoint: it adds each row of
// a patch-gradient matrix back onto the input pixels it came from.

import type { backend_util } from '@tensorflow/tfjs';

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
 * Visits every in-bounds tap of the patches of images [first, first + count): patch p (counted
 * from the first image, in image/row/col order), column kc = (fr · filterWidth + fc) · inChannels of
 * its first channel, and the input offset of that channel. Taps in the padding are skipped.
 */
function forEachTap(info: backend_util.Conv2DInfo, x: ImageStrides, first: number, count: number, visit: (p: number, kc: number, from: number) => void): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  let p = 0;
  for (let image = first; image < first + count; image++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++, p++) {
        for (let fr = 0; fr < filterHeight; fr++) {
          const iy = oy * strideHeight - top + fr * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let fc = 0; fc < filterWidth; fc++) {
            const ix = ox * strideWidth - left + fc * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            visit(p, (fr * filterWidth + fc) * inChannels, image * x.image + iy * x.row + ix * x.col);
          }
        }
      }
    }
  }
}

/**
 * Writes the patches of images [first, first + count) into `out`: patch p and column kc go to
 * out[p · rowStep + kc · colStep]. Taps in the padding are left untouched: `out` starts zeroed.
 */
export function im2col(src: Float32Array, strides: ImageStrides, info: backend_util.Conv2DInfo, first: number, count: number, out: Float32Array, rowStep: number, colStep: number): void {
  const channels = info.inChannels;
  const cs = strides.channel;
  if (cs === 1 && colStep === 1) {
    if (channels >= 16) {
      // A tap's channels are one contiguous run: one memcpy (set) each — 5× the plain loop at 256
      // channels; below ~16 the subarray made per (patch, tap) costs more than it saves.
      forEachTap(info, strides, first, count, (p, kc, from) => out.set(src.subarray(from, from + channels), p * rowStep + kc));
      return;
    }
    forEachTap(info, strides, first, count, (p, kc, from) => {
      const to = p * rowStep + kc;
      for (let c = 0; c < channels; c++) out[to + c] = src[from + c];
    });
    return;
  }
  forEachTap(info, strides, first, count, (p, kc, from) => {
    const to = p * rowStep + kc * colStep;
    for (let c = 0; c < channels; c++) out[to + c * colStep] = src[from + c * cs];
  });
}

/**
 * The adjoint of im2col: adds patches[p · rowStep + kc] onto the input element it was read from,
 * in patch order, then tap order, then channel order (float32 additions: a fixed order).
 */
export function col2im(patches: Float32Array, rowStep: number, info: backend_util.Conv2DInfo, strides: ImageStrides, first: number, count: number, dx: Float32Array): void {
  const channels = info.inChannels;
  const cs = strides.channel;
  forEachTap(info, strides, first, count, (p, kc, to) => {
    const from = p * rowStep + kc;
    for (let c = 0; c < channels; c++) dx[to + c * cs] += patches[from + c];
  });
}
