// ResizeNearestNeighborGrad — nearest-neighbour resizing's gradient (resize-nearest-gradient.ts):
// the cpu base's is wrong for a batch > 1 and ignores halfPixelCenters.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';
import { resizeNearestGradient } from '../resize-nearest-gradient.js';
import { floatValues } from '../storage.js';

export function resizeNearestNeighborGradKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('ResizeNearestNeighborGrad', backendName, base, ({ storage }, inputs, attrs) => {
    const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
    if (dy.dtype !== 'float32') return undefined;
    const dx = resizeNearestGradient(floatValues(storage, dy), images.shape, dy.shape, Boolean(attrs.alignCorners), Boolean(attrs.halfPixelCenters));
    return storage.output(images.shape, 'float32', dx);
  });
}
