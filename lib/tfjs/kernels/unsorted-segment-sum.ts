// UnsortedSegmentSum (the gradient of tf.gather, hence of every Embedding layer), which the wasm
// base lacks: out[s, …] = Σ x[j, …] over the j with segmentIds[j] = s, in increasing j; ids
// outside [0, numSegments) are dropped, as in tfjs-backend-cpu.

import type { DataType, KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';

export function unsortedSegmentSumKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('UnsortedSegmentSum', backendName, base, ({ storage }, inputs, attrs) => {
    const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
    if (x.dtype !== 'float32' && x.dtype !== 'int32') return undefined;
    const numSegments = attrs.numSegments as number;
    const inner = x.shape.slice(segmentIds.shape.length);
    const width = tf.util.sizeFromShape(inner);
    const xValues = storage.values(x);
    const ids = storage.values(segmentIds);
    const out = x.dtype === 'float32' ? new Float32Array(numSegments * width) : new Int32Array(numSegments * width);
    for (let j = 0; j < ids.length; j++) {
      const s = ids[j];
      if (s < 0 || s >= numSegments) continue;
      for (let i = 0; i < width; i++) out[s * width + i] += xValues[j * width + i];
    }
    return storage.output([numSegments, ...inner], x.dtype as DataType, out);
  });
}
