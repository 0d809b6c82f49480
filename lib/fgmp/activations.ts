// FGMP for activations: the precision of each block is chosen online, inside quantization, from
// per-channel Fisher weights and a threshold calibrated offline (the paper's activation
// quantization unit): a block is FP4 when its impact is ≤ the threshold, else FP8. No clipping
// search (there is no time for one online).

import { fgmpImpacts, quantizeFgmp, type FgmpTensor } from './quantize.js';
import { selectThreshold } from './select.js';
import { lengthOf } from '../core/typed-arrays.js';
import { checkArray, checkCount, checkFraction, checkOptions, describe } from '../core/validate.js';

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
  const fn = 'quantizeFgmpActivations';
  const { shape, channelFisher, threshold, tensorScale, fp8Scale } = checkOptions<FgmpActivationOptions>(fn, options, '{ shape, channelFisher, threshold }', false);
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new RangeError(`${fn}: threshold must be a number (from calibrateFgmpActivations), got ${describe(threshold)}`);
  }
  if (channelFisher === undefined) throw new TypeError(`${fn}: channelFisher must be a Float32Array (one weight per input channel), got undefined`);
  return quantizeFgmp(x, {
    shape,
    fisher: channelFisher,
    clipping: false,
    selection: { threshold, tiesTaken: Number.MAX_SAFE_INTEGER },
    tensorScale,
    fp8Scale,
  }, fn);
}

/** The threshold that makes `fp4Fraction` of the blocks of sample activations FP4. */
export function calibrateFgmpActivations(
  samples: Float32Array[], options: { cols: number; channelFisher: Float32Array; fp4Fraction: number },
): { threshold: number } {
  const fn = 'calibrateFgmpActivations';
  const { cols, channelFisher, fp4Fraction } = checkOptions<{ cols: number; channelFisher: Float32Array; fp4Fraction: number }>(
    fn, options, '{ cols, channelFisher, fp4Fraction }', false);
  if (!Array.isArray(samples) || samples.length === 0) throw new RangeError(`${fn}: samples must be a non-empty array of Float32Array, got ${describe(samples)}`);
  checkCount(fn, 'cols', cols);
  if (cols === 0) throw new RangeError(`${fn}: cols must be positive, got 0`);
  checkFraction(fn, 'fp4Fraction', fp4Fraction);
  const impacts = Array.prototype.slice.call(samples).map((s: unknown, i: number) => {
    const sample = checkArray(fn, `samples[${i}]`, s, 'Float32Array');
    const length = lengthOf(sample);
    if (length % cols !== 0) throw new RangeError(`${fn}: samples[${i}] must hold whole rows of ${cols}, got ${length} values`);
    return fgmpImpacts(sample, { shape: [length / cols, cols], fisher: channelFisher, clipping: false }, fn);
  });
  return { threshold: selectThreshold(impacts, fp4Fraction).threshold };
}
