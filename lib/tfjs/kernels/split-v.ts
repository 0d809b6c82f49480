// SplitV (tf.split) is the base's own kernel; the pieces of a weight are recorded as pieces of it
// (weight-slices.ts), so that products with them quantize and cache them as weights.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { aroundBaseKernel } from '../kernel-context.js';
import { isWeightData } from '../weights.js';
import { recordPiece } from '../weight-slices.js';

export function splitVKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('SplitV', backendName, base, (args, baseKernel) => {
    const pieces = baseKernel(args) as TensorInfo[];
    const x = args.inputs.x as TensorInfo;
    if (x.dtype === 'float32' && isWeightData(x.dataId)) {
      const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
      const cut = `split/${axis}/${String(numOrSizeSplits)}`;
      pieces.forEach((piece, i) => recordPiece(x, piece, `${cut}/${i}`));
    }
    return pieces;
  });
}
