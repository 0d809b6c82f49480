// Conv2DBackpropFilter — the weight gradient of a convolution, dW = patchesᵀ · dY — as one
// float32 product on fp4kit's kernel: the patches transposed to [K, pixels] times dY transposed to
// [outChannels, pixels], summed over every pixel of the batch. A gradient product, so float32 in
// every weight mode (weights.ts). The wasm base has no such kernel at all, and the cpu base's is a
// per-element loop ~45× slower.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { floatOperand, floatProduct, floatStride } from '../float-product.js';
import { im2col } from '../im2col.js';
import { fp4kitKernel } from '../kernel-context.js';
import { rowMajor } from '../layout.js';
import { counters } from '../counters.js';
import { floatValues } from '../storage.js';
import { nhwcConvInfo } from './conv2d.js';

export function conv2dBackpropFilterKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('Conv2DBackpropFilter', backendName, base, ({ storage }, inputs, attrs) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') return undefined;
    const filterShape = attrs.filterShape as number[];
    const info = nhwcConvInfo(x, filterShape, attrs, 1);
    if (info === undefined) return undefined;
    const pixels = info.batchSize * info.outHeight * info.outWidth;
    const k = info.filterHeight * info.filterWidth * info.inChannels;
    const n = info.outChannels;
    const out = new Float32Array(k * n);
    if (pixels > 0 && out.length > 0) {
      const stride = floatStride(pixels);
      const patches = new Float32Array(k * stride);
      im2col(floatValues(storage, x), info, 0, info.batchSize, patches, 1, stride);
      const dyT = rowMajor(floatValues(storage, dy), 0, 1, n, pixels, true, stride);
      counters.floatProducts++;
      out.set(floatProduct(floatOperand(patches, k, pixels), floatOperand(dyT, n, pixels), undefined));
    }
    return storage.output(filterShape, 'float32', out);
  });
}
