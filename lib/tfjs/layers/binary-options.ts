// The options binaryDense and binaryConv2d add to their tfjs base layer, checked once at
// construction: a bad value is a TypeError or RangeError naming the option and what is allowed.

import { BINARY_GRADIENT_MODES, type BinaryGradientMode, type BinaryGradientOptions } from '../../training/binary-backward.js';
import { checkGradientBits, type GradientPrune } from '../../core/quantize-gradient.js';
import { checkSeed, describe, notOneOf } from '../../core/validate.js';

export interface BinaryLayerOptions {
  /** The output gradient of the backward products: 'scq' (default: per sample for ∇X, per channel
   *  for ∇W), 'psq' (per sample for both), 'ptq' (per tensor) or 'fp32' (QAT: not quantized). */
  gradients?: BinaryGradientMode;
  /** Bits per kept gradient element, 1 … 8 (default 4). */
  bits?: number;
  /** Group pruning of each product's gradient: 'agp' (default), 'topk' or 'none'. With 'agp' and
   *  b bits about 1/b of the groups are kept: one bit per element on average. */
  prune?: GradientPrune;
  /** Seed of the gradient quantizers' noise and keep decisions; each backward pass draws a fresh
   *  stream from it, so a run is reproducible. Default: one of the layer's own, from its name
   *  (layerSeed). The stream is drawn from the seed and the layer's name together
   *  (layerStreamSeed), so layers given one seed still draw independent noise: stacked layers
   *  drawing the same rounding and keep decisions would bias the gradient that passes through
   *  both (an audit measured 45 %). */
  seed?: number;
  /** Backward passes already drawn from the seed's stream (default 0). getConfig records the
   *  layer's count, so a model saved mid-training and reloaded continues the stream where the saved
   *  one was instead of drawing its first steps' noise again. */
  seedStep?: number;
}

/** The option names the binary layers add to their tfjs base layer's. */
export const BINARY_OPTIONS = ['gradients', 'bits', 'prune', 'seed', 'seedStep'];

/** The options as stored in a layer's config (every field present). */
export interface BinaryLayerConfig extends BinaryGradientOptions {
  seed: number;
  seedStep: number;
}

const PRUNES: readonly GradientPrune[] = ['agp', 'topk', 'none'];

/** The options checked; `seed` undefined when none was given (the layer then takes layerSeed). */
export function readBinaryOptions(fn: string, args: BinaryLayerOptions): Omit<BinaryLayerConfig, 'seed'> & { seed: number | undefined } {
  const { gradients = 'scq', bits = 4, prune = 'agp', seed, seedStep = 0 } = args;
  if (typeof gradients !== 'string' || !(BINARY_GRADIENT_MODES as readonly string[]).includes(gradients)) {
    throw notOneOf('string', gradients, `${fn}: gradients must be one of ${BINARY_GRADIENT_MODES.join(', ')}, got ${describe(gradients)}`);
  }
  checkGradientBits(fn, 'bits', bits);
  if (typeof prune !== 'string' || !(PRUNES as readonly string[]).includes(prune)) throw notOneOf('string', prune, `${fn}: prune must be one of ${PRUNES.join(', ')}, got ${describe(prune)}`);
  if (seed !== undefined) checkSeed(fn, 'seed', seed);
  if (typeof seedStep !== 'number') throw new TypeError(`${fn}: seedStep must be a non-negative integer (a Number), got ${describe(seedStep)}`);
  if (!Number.isSafeInteger(seedStep) || seedStep < 0) throw new RangeError(`${fn}: seedStep must be a non-negative integer, got ${describe(seedStep)}`);
  return { mode: gradients, bits, prune, seed, seedStep };
}

/** The config fields of the options (getConfig), the inverse of readBinaryOptions, with the
 *  backward passes drawn so far as seedStep. */
export function binaryConfig(c: BinaryLayerConfig, seedStep: number): Record<string, string | number> {
  return { gradients: c.mode, bits: c.bits, prune: c.prune, seed: c.seed, seedStep };
}

/**
 * A layer's default seed: the 32-bit FNV-1a hash of its name. tfjs names layers uniquely (a name
 * given, or the class name and a counter), so the layers of a model draw independent streams, the
 * same ones each time the same program builds the model; getConfig stores the seed, so a saved
 * model reloads with it.
 */
export function layerSeed(name: string): number {
  return fnv1a(name, 0x811c9dc5);
}

/** 32-bit FNV-1a over a string's UTF-16 code units, from `basis`. */
function fnv1a(text: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The seed of the stream a layer draws its per-step seeds from (StepSeeds): its seed mixed with
 * its name (FNV-1a over the name from a basis set by the seed). Giving every layer of a model the
 * same `seed` is the natural way to make a run reproducible; used as given, it made stacked layers
 * draw the same rounding and keep decisions at each step, and ∂L/∂x through both was 45 % off.
 * A reloaded model keeps its layers' names and seeds, so it draws the same streams.
 */
export function layerStreamSeed(seed: number, name: string): number {
  return fnv1a(name, 0x811c9dc5 ^ seed);
}
