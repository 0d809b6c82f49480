// The gradient of nearest-neighbour resizing (tf.image.resizeNearestNeighbor, upSampling2d layers):
// the adjoint of the forward resize — each output pixel's gradient goes back to the input pixel the
// forward copied it from, with the forward's own source rule (alignCorners, halfPixelCenters), as
// tfjs-backend-cpu's ResizeNearestNeighbor computes it. tfjs cpu's gradient kernel reads dy at the
// image's batch offset (wrong for a batch > 1 whenever the sizes differ) and ignores
// halfPixelCenters. NHWC. Each input pixel's gradient is one float64 sum over the output pixels
// that copied it, in row-major order, rounded once.

/** The input row (or column) the forward resize copies output row (or column) `i` from. */
function sourceIndex(i: number, inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): number {
  const aligned = alignCorners && outSize > 1;
  const ratio = (aligned ? inSize - 1 : inSize) / (aligned ? outSize - 1 : outSize);
  const fraction = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
  const nearest = Math.min(inSize - 1, alignCorners ? Math.round(fraction) : Math.floor(fraction));
  return halfPixelCenters ? Math.max(0, nearest) : nearest;
}

/** dx [batch, inHeight, inWidth, channels] from dy [batch, outHeight, outWidth, channels]. */
export function resizeNearestGradient(dy: Float32Array, imageShape: number[], dyShape: number[], alignCorners: boolean, halfPixelCenters: boolean): Float32Array {
  const [batch, inHeight, inWidth, channels] = imageShape;
  const [, outHeight, outWidth] = dyShape;
  const sums = new Float64Array(batch * inHeight * inWidth * channels);
  const sourceCols = Int32Array.from({ length: outWidth }, (_, c) => sourceIndex(c, inWidth, outWidth, alignCorners, halfPixelCenters));
  let from = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const row = (b * inHeight + sourceIndex(r, inHeight, outHeight, alignCorners, halfPixelCenters)) * inWidth;
      for (let c = 0; c < outWidth; c++) {
        const to = (row + sourceCols[c]) * channels;
        for (let d = 0; d < channels; d++) sums[to + d] += dy[from++];
      }
    }
  }
  return Float32Array.from(sums);
}
