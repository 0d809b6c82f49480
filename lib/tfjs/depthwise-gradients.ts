// The two gradients of a depthwise convolution (tf.depthwiseConv2d, and so of every
// DepthwiseConv2D and SeparableConv2D layer), which tfjs's wasm backend lacks and its cpu backend
// runs through TensorBuffer.get. NHWC; filter [fH, fW, inC, chMul]; output channel d2 = d1·chMul + dm
// reads input channel d1. Each element is one sum in float64, rounded once to float32, over the
// terms in tfjs-backend-cpu's order (filter: b, yR, yC; input: yR, yC, dm), so for dilation 1 the
// bits are tfjs cpu's, on either base. Dilations > 1 are supported too (tfjs's own gradient of
// depthwiseConv2d refuses them before reaching a kernel).

import * as tf from '@tensorflow/tfjs';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** tfjs's Conv2DInfo of a depthwise convolution for a gradient kernel's attributes. */
export function depthwiseInfo(inShape: number[], filterShape: number[], attrs: Record<string, unknown>): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides as number | [number, number], (attrs.dilations ?? 1) as number | [number, number], attrs.pad as Pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined, true);
}

/**
 * dW[fr, fc, d1, dm] = Σ_b Σ_yR Σ_yC x[b, yR·sH + fr·dH − top, yC·sW + fc·dW − left, d1] · dy[b, yR, yC, d1·chMul + dm].
 * All channels of a tap are summed side by side (float64 accumulators, each in its own term order),
 * so the loops read x and dy along their contiguous channel axis.
 */
export function depthwiseFilterGradient(x: Float32Array, dy: Float32Array, info: tf.backend_util.Conv2DInfo): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth,
    strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const chMul = outChannels / inChannels;
  const dW = new Float32Array(filterHeight * filterWidth * outChannels);
  const sums = new Float64Array(outChannels);
  for (let fr = 0; fr < filterHeight; fr++) {
    // The output rows whose input row fr·dH + yR·sH − top lies inside the image.
    const rowOffset = fr * dilationHeight - top;
    const yRMin = Math.max(0, Math.ceil(-rowOffset / strideHeight));
    const yREnd = Math.min(outHeight, Math.ceil((inHeight - rowOffset) / strideHeight));
    for (let fc = 0; fc < filterWidth; fc++) {
      const colOffset = fc * dilationWidth - left;
      const yCMin = Math.max(0, Math.ceil(-colOffset / strideWidth));
      const yCEnd = Math.min(outWidth, Math.ceil((inWidth - colOffset) / strideWidth));
      sums.fill(0);
      for (let b = 0; b < batchSize; b++) {
        for (let yR = yRMin; yR < yREnd; yR++) {
          const xRow = (b * inHeight + yR * strideHeight + rowOffset) * inWidth;
          const dyRow = (b * outHeight + yR) * outWidth;
          for (let yC = yCMin; yC < yCEnd; yC++) {
            const xAt = (xRow + yC * strideWidth + colOffset) * inChannels;
            const dyAt = (dyRow + yC) * outChannels;
            if (chMul === 1) {
              for (let d = 0; d < outChannels; d++) sums[d] += x[xAt + d] * dy[dyAt + d];
            } else {
              for (let d1 = 0, d2 = 0; d1 < inChannels; d1++) {
                const xv = x[xAt + d1];
                for (let dm = 0; dm < chMul; dm++, d2++) sums[d2] += xv * dy[dyAt + d2];
              }
            }
          }
        }
      }
      // [fr, fc, d1, dm] with d1·chMul + dm = d2.
      dW.set(sums, (fr * filterWidth + fc) * outChannels);
    }
  }
  return dW;
}

/**
 * dx[b, xR, xC, d1] = Σ over the (yR, yC, dm) that read it of dy[b, yR, yC, d1·chMul + dm] · filter[fr, fc, d1, dm].
 * All channels of a pixel are summed side by side, as in the filter gradient.
 */
export function depthwiseInputGradient(dy: Float32Array, filter: Float32Array, info: tf.backend_util.Conv2DInfo): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth,
    strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const chMul = outChannels / inChannels;
  const dx = new Float32Array(batchSize * inHeight * inWidth * inChannels);
  const sums = new Float64Array(inChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let xR = 0; xR < inHeight; xR++) {
      // Output row yR reads input row xR through filter row fr where fr·dH = xR + top − yR·sH:
      // yR ascending (tfjs cpu's order), fr descending.
      const rowReach = xR + top;
      const yRMin = Math.max(0, Math.ceil((rowReach - (filterHeight - 1) * dilationHeight) / strideHeight));
      const yREnd = Math.min(outHeight, Math.floor(rowReach / strideHeight) + 1);
      for (let xC = 0; xC < inWidth; xC++) {
        const colReach = xC + left;
        const yCMin = Math.max(0, Math.ceil((colReach - (filterWidth - 1) * dilationWidth) / strideWidth));
        const yCEnd = Math.min(outWidth, Math.floor(colReach / strideWidth) + 1);
        sums.fill(0);
        for (let yR = yRMin; yR < yREnd; yR++) {
          const rowTap = rowReach - yR * strideHeight;
          if (rowTap % dilationHeight !== 0) continue;
          const fr = rowTap / dilationHeight;
          for (let yC = yCMin; yC < yCEnd; yC++) {
            const colTap = colReach - yC * strideWidth;
            if (colTap % dilationWidth !== 0) continue;
            const fc = colTap / dilationWidth;
            const dyAt = ((b * outHeight + yR) * outWidth + yC) * outChannels;
            const filterAt = (fr * filterWidth + fc) * outChannels;
            if (chMul === 1) {
              for (let d = 0; d < inChannels; d++) sums[d] += dy[dyAt + d] * filter[filterAt + d];
            } else {
              for (let d1 = 0, d2 = 0; d1 < inChannels; d1++) {
                let sum = sums[d1];
                for (let dm = 0; dm < chMul; dm++, d2++) sum += dy[dyAt + d2] * filter[filterAt + d2];
                sums[d1] = sum;
              }
            }
          }
        }
        dx.set(sums, ((b * inHeight + xR) * inWidth + xC) * inChannels);
      }
    }
  }
  return dx;
}
