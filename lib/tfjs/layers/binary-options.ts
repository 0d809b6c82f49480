// The options binaryDense and binaryConv2d add to their tfjs base layer, checked once at
// construction: a bad value is a TypeError or RangeError naming the option and what is allowed.

import { BINARY_GRADIENT_MODES, type BinaryGradientMode, type BinaryGradientOptions } from '../../training/binary-backward.js';
import type { GradientPrune } from '../../core/quantize-gradient.js';

export interface BinaryLayerOptions {
  /** The output gradient of the backward products: 'scq' (default: per sample for ∇X, per channel
   *  for ∇W), 'psq' (per sample for both), 'ptq' (per tensor) or 'fp32' (QAT: not quantized). */
  gradients?: BinaryGradientMode;
  /** Bits per kept gradient element, 1 … 8 (default 4). */
  bits?: number;
  /** Group pruning of each product's gradient: 'agp' (default), 'topk' or 'none'. With 'agp' and
   *  b bits about 1/b of the groups are kept: one bit per element on average. */
  prune?: GradientPrune;
  /** Seed of the gradient quantizers' noise and keep decisions (default 0); each backward pass
   *  draws a fresh stream from it, so a run is reproducible. */
  seed?: number;
}

/** The options as stored in a layer's config (every field present). */
export interface BinaryLayerConfig extends BinaryGradientOptions {
  seed: number;
}

const PRUNES: readonly GradientPrune[] = ['agp', 'topk', 'none'];

export function readBinaryOptions(fn: string, args: BinaryLayerOptions): BinaryLayerConfig {
  const { gradients = 'scq', bits = 4, prune = 'agp', seed = 0 } = args;
  if (typeof gradients !== 'string' || !(BINARY_GRADIENT_MODES as readonly string[]).includes(gradients)) {
    throw new RangeError(`${fn}: gradients must be one of ${BINARY_GRADIENT_MODES.join(', ')}, got ${JSON.stringify(gradients)}`);
  }
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 1 || bits > 8) throw new RangeError(`${fn}: bits must be an integer in [1, 8], got ${String(bits)}`);
  if (typeof prune !== 'string' || !(PRUNES as readonly string[]).includes(prune)) throw new RangeError(`${fn}: prune must be one of ${PRUNES.join(', ')}, got ${JSON.stringify(prune)}`);
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`${fn}: seed must be an integer in [0, 2^32), got ${String(seed)}`);
  return { mode: gradients, bits, prune, seed };
}

/** The config fields of the options (getConfig), the inverse of readBinaryOptions. */
export function binaryConfig(c: BinaryLayerConfig): Record<string, string | number> {
  return { gradients: c.mode, bits: c.bits, prune: c.prune, seed: c.seed };
}
