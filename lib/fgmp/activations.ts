// FGMP for activations: the precision of each block is chosen online, inside quantization, from
// per-channel Fisher weights and a threshold calibrated offline (the paper's activation
// quantization unit): a block is FP4 when its impact is ≤ the threshold, else FP8. No clipping
// search (there is no time for one online).

import { fgmpImpacts, quantizeFgmp, type FgmpTensor } from './quantize.js';
import { selectThreshold } from './select.js';
import { lengthOf, typedArrayName } from '../core/typed-arrays.js';
import { checkArray, checkCount, checkFraction, checkOptions, copyShape, describe, inputArray, isArray, notOneOf, readShape } from '../core/validate.js';

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
  const { shape, channelFisher, threshold, tensorScale, fp8Scale } = checkOptions<FgmpActivationOptions>(fn, options, '{ shape, channelFisher, threshold }', false, ['shape', 'channelFisher', 'threshold', 'tensorScale', 'fp8Scale']);
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw notOneOf('number', threshold, `${fn}: threshold must be a number (from calibrateFgmpActivations), got ${describe(threshold)}`);
  }
  const shapeCopy = copyShape(shape); // read before any array is looked at (readFields)
  const dims = readShape(fn, shapeCopy);
  const cols = dims ? dims[dims.length - 1] : lengthOf(checkArray(fn, 'input', x, 'Float32Array'));
  return quantizeFgmp(x, {
    shape: shapeCopy as number[] | undefined,
    fisher: checkChannelFisher(fn, channelFisher, cols),
    clipping: false,
    selection: { threshold, tiesTaken: Number.MAX_SAFE_INTEGER },
    tensorScale,
    fp8Scale,
  }, fn);
}

/** One Fisher weight per input channel (`cols` of them), finite and ≥ 0: a plain view. */
function checkChannelFisher(fn: string, channelFisher: unknown, cols: number): Float32Array {
  const fisher = inputArray(fn, 'channelFisher', channelFisher, 'Float32Array', cols, `weights (one per input channel)`);
  for (let i = 0; i < fisher.length; i++) {
    if (!(fisher[i] >= 0 && fisher[i] < Infinity)) throw new RangeError(`${fn}: channelFisher[${i}] is ${fisher[i]}; Fisher weights must be finite and ≥ 0`);
  }
  return fisher;
}

/** The most sample arrays read (a Proxy may claim 2^32 − 1 of them, each a valid array). */
const MAX_SAMPLES = 2 ** 24;

/** The threshold that makes `fp4Fraction` of the blocks of sample activations FP4. */
export function calibrateFgmpActivations(
  samples: Float32Array[], options: { cols: number; channelFisher: Float32Array; fp4Fraction: number },
): { threshold: number } {
  const fn = 'calibrateFgmpActivations';
  const { cols, channelFisher, fp4Fraction } = checkOptions<{ cols: number; channelFisher: Float32Array; fp4Fraction: number }>(
    fn, options, '{ cols, channelFisher, fp4Fraction }', false, ['cols', 'channelFisher', 'fp4Fraction']);
  if (!isArray(samples)) throw new TypeError(`${fn}: samples must be a non-empty array of Float32Array, got ${describe(samples)}`);
  // Read before any array is looked at; each element's kind checked as it is read (a sparse array
  // fails at its first hole, not after a copy of all its holes).
  const count = samples.length;
  if (count === 0) throw new RangeError(`${fn}: samples must be a non-empty array of Float32Array, got []`);
  if (count > MAX_SAMPLES) throw new RangeError(`${fn}: samples lists ${count} arrays; at most ${MAX_SAMPLES} (2^24) are read`);
  const list: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const s: unknown = samples[i];
    if (typedArrayName(s) !== 'Float32Array') throw new TypeError(`${fn}: samples[${i}] must be a Float32Array, got ${describe(s)}`);
    list.push(s);
  }
  checkCount(fn, 'cols', cols);
  if (cols === 0) throw new RangeError(`${fn}: cols must be positive, got 0`);
  checkFraction(fn, 'fp4Fraction', fp4Fraction);
  const fisher = checkChannelFisher(fn, channelFisher, cols);
  const impacts = list.map((s: unknown, i: number) => {
    const sample = checkArray(fn, `samples[${i}]`, s, 'Float32Array');
    const length = lengthOf(sample);
    if (length % cols !== 0) throw new RangeError(`${fn}: samples[${i}] must hold whole rows of ${cols}, got ${length} values`);
    return fgmpImpacts(sample, { shape: [length / cols, cols], fisher, clipping: false }, fn);
  });
  return { threshold: selectThreshold(impacts, fp4Fraction).threshold };
}
