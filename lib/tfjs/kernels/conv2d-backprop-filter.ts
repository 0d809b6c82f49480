// Conv2DBackpropFilter — a convolution's weight gradient dF = patchesᵀ · dY — as one float32
// product on fp4kit's kernel (conv-product.ts). The wasm base has no such kernel at all, and the
// cpu base's reads every element through TensorBuffer.get (~45× slower than a plain loop).

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { conv2dBackpropFilterValues } from '../conv-product.js';
import { runOnCpu } from '../cpu-fallback.js';
import { paddingMeetsNonFinite } from '../im2col.js';
import { fp4kitKernel } from '../kernel-context.js';
import { convInfo } from './conv2d.js';

export function conv2dBackpropFilterKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('Conv2DBackpropFilter', backendName, base, (ctx, inputs, attrs) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') return undefined;
    const filterShape = attrs.filterShape as number[];
    const info = convInfo(x.shape, filterShape, attrs, 1);
    // (All of dY is scanned, also what croppedOutput leaves out: such a call is only slower.)
    if (paddingMeetsNonFinite(info, ctx.storage.values(dy) as Float32Array)) return runOnCpu('Conv2DBackpropFilter', { inputs, attrs, backend: ctx.backend }) as TensorInfo;
    return ctx.storage.output(filterShape, 'float32', conv2dBackpropFilterValues(ctx, x, dy, info));
  });
}
