// The gradient of max pooling (tf.maxPool, every MaxPooling2D layer): each output's gradient goes
// to the first maximum of its window (row-major, strictly greater; NaN never wins, a window with
// no maximum passes nothing), as tfjs-backend-cpu defines it. tfjs's wasm backend gets this wrong
// (a window whose maximum is negative sends the gradient to its first element), so training a
// CNN there learns from the wrong pixels. NHWC. Each input element's gradient is one float64 sum
// over the windows that chose it, in tfjs cpu's term order (windows by row, then by column),
// rounded once: tfjs cpu's bits.

import * as tf from '@tensorflow/tfjs';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** tfjs's Conv2DInfo of a max pooling for the gradient kernel's attributes. */
export function maxPoolInfo(inShape: number[], attrs: Record<string, unknown>): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    inShape as [number, number, number, number], attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number], 1, attrs.pad as Pad, attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined);
}

/** dx (x's shape) from x and dy [batch, outHeight, outWidth, channels]. */
export function maxPoolGradient(x: Float32Array, dy: Float32Array, info: tf.backend_util.Conv2DInfo): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const sums = new Float64Array(x.length);
  for (let b = 0; b < batchSize; b++) {
    const image = b * inHeight * inWidth * channels;
    for (let yR = 0; yR < outHeight; yR++) {
      const rowStart = yR * strideHeight - top;
      const rowEnd = Math.min(inHeight, rowStart + filterHeight);
      for (let yC = 0; yC < outWidth; yC++) {
        const colStart = yC * strideWidth - left;
        const colEnd = Math.min(inWidth, colStart + filterWidth);
        const gradient = ((b * outHeight + yR) * outWidth + yC) * channels;
        for (let d = 0; d < channels; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let xR = Math.max(0, rowStart); xR < rowEnd; xR++) {
            for (let xC = Math.max(0, colStart); xC < colEnd; xC++) {
              const i = image + (xR * inWidth + xC) * channels + d;
              if (x[i] > best) {
                best = x[i];
                at = i;
              }
            }
          }
          if (at >= 0) sums[at] += dy[gradient + d];
        }
      }
    }
  }
  return Float32Array.from(sums);
}
