// Slice (tf.slice) is the base's own kernel; a slice of a weight is recorded as a piece of it
// (weight-slices.ts), so that products with it quantize and cache it as a weight.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { aroundBaseKernel } from '../kernel-context.js';
import { isWeightData } from '../weights.js';
import { recordPiece } from '../weight-slices.js';

export function sliceKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('Slice', backendName, base, (args, baseKernel) => {
    const x = args.inputs.x as TensorInfo;
    // The stock wasm kernel accepts a slice out of bounds: refused here with the cpu backend's
    // check and message.
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [$begin, $size] = tf.slice_util.parseSliceParams(x, begin, size);
    tf.slice_util.assertParamsValid(x, $begin, $size);
    const piece = baseKernel(args) as TensorInfo;
    if (x.dtype === 'float32' && isWeightData(x.dataId)) {
      recordPiece(x, piece, `slice/${$begin.join(",")}/${$size.join(",")}`);
    }
    return piece;
  });
}
