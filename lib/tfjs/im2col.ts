// im2col for NHWC convolutions: each output pixel's receptive field as one row of a matrix, so a
// convolution is one product of that matrix with the filter seen as a [K, N] weight, K = filter
// height × filter width × input channels (in that order: the filter tensor's own memory order)
// and N = output channels.

import type { backend_util } from '@tensorflow/tfjs';

/**
 * Writes the patches of images [first, first + count) into `out`: patch p (image, output row,
 * output column, counted from the first image) and column kc = (fr · filterWidth + fc) · inChannels
 * + ic go to out[p · rowStep + kc · colStep]. Taps outside the image are left untouched, so `out`
 * must start zeroed.
 */
export function im2col(x: Float32Array, info: backend_util.Conv2DInfo, first: number, count: number, out: Float32Array, rowStep: number, colStep: number): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  let p = 0;
  for (let image = first; image < first + count; image++) {
    const imageBase = image * inHeight * inWidth * inChannels;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++, p++) {
        const rowBase = p * rowStep;
        for (let fr = 0; fr < filterHeight; fr++) {
          const iy = oy * strideHeight - top + fr * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let fc = 0; fc < filterWidth; fc++) {
            const ix = ox * strideWidth - left + fc * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            const from = imageBase + (iy * inWidth + ix) * inChannels;
            const kc = (fr * filterWidth + fc) * inChannels;
            if (colStep === 1) out.set(x.subarray(from, from + inChannels), rowBase + kc);
            else for (let c = 0; c < inChannels; c++) out[rowBase + (kc + c) * colStep] = x[from + c];
          }
        }
      }
    }
  }
}
