// FGMP for activations: the precision of each block is chosen online, inside quantization, from
// per-channel Fisher weights and a threshold calibrated offline (the paper's activation
// quantization unit): a block is FP4 when its impact is ≤ the threshold, else FP8. No clipping
// search (there is no time for one online).

import { fgmpImpacts, quantizeFgmp, type FgmpTensor } from './quantize.js';
import { selectThreshold } from './select.js';

export interface FgmpActivationOptions {
  shape: number[];
  /** Fisher weight per input channel (length = last dimension). */
  channelFisher: Float32Array;
  /** Threshold from calibrateFgmpActivations(). */
  threshold: number;
  tensorScale?: number;
  fp8Scale?: number;
}

export function quantizeFgmpActivations(x: Float32Array, options: FgmpActivationOptions): FgmpTensor {
  if (typeof options?.threshold !== 'number' || Number.isNaN(options.threshold)) {
    throw new RangeError('quantizeFgmpActivations: threshold must be a number (from calibrateFgmpActivations)');
  }
  return quantizeFgmp(x, {
    shape: options.shape,
    fisher: options.channelFisher,
    clipping: false,
    selection: { threshold: options.threshold, tiesTaken: Number.MAX_SAFE_INTEGER },
    tensorScale: options.tensorScale,
    fp8Scale: options.fp8Scale,
  });
}

/** The threshold that makes `fp4Fraction` of the blocks of sample activations FP4. */
export function calibrateFgmpActivations(
  samples: Float32Array[], options: { cols: number; channelFisher: Float32Array; fp4Fraction: number },
): { threshold: number } {
  if (!Array.isArray(samples) || samples.length === 0) throw new RangeError('calibrateFgmpActivations: give at least one sample');
  const impacts = samples.map((s, i) => {
    if (!(s instanceof Float32Array) || s.length % options.cols !== 0) {
      throw new RangeError(`calibrateFgmpActivations: sample ${i} must be a Float32Array of whole rows of ${options.cols}`);
    }
    return fgmpImpacts(s, { shape: [s.length / options.cols, options.cols], fisher: options.channelFisher, clipping: false });
  });
  return { threshold: selectThreshold(impacts, options.fp4Fraction).threshold };
}
