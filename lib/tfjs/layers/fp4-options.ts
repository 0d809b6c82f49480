// The options fp4Dense adds to tf.layers.dense, checked once at construction: a bad value is a
// TypeError or RangeError naming the option and what is allowed.

import { DGE_DEFAULTS, type DgeOptions } from '../../training/dge.js';
import { OCC_DEFAULTS, type OccOptions } from '../../training/occ.js';
import { TIE_RULES, type Fp4BlockFormat, type TieRule } from '../../training/fp4-quantizer.js';

export type Fp4WeightScaling = 'per-channel' | Fp4BlockFormat;
const WEIGHT_SCALINGS: readonly Fp4WeightScaling[] = ['per-channel', 'nvfp4', 'mxfp4'];
export type Fp4GradientFormat = 'e5m2' | 'fp32';
const GRADIENT_FORMATS: readonly Fp4GradientFormat[] = ['e5m2', 'fp32'];

export interface Fp4LayerOptions {
  /** DGE on the weight gradient: { k = 5, cap = 3 }, or false for straight-through. */
  dge?: Partial<DgeOptions> | false;
  /** OCC on the input activations: { alpha = 0.99 }, or false for direct quantization. */
  occ?: Partial<OccOptions> | false;
  /** The output gradient of the backward products: 'e5m2' (FP8, per-tensor scale; default) or 'fp32'. */
  gradients?: Fp4GradientFormat;
  /** 'per-channel' (default: exact absmax scale per output channel, activations per token), or
   *  fp4kit's 'nvfp4' / 'mxfp4' blocks along the reduction axis for both operands. */
  weights?: Fp4WeightScaling;
  /** E2M1 tie rule: 'nearest-even' (default) or 'ties-up' (the paper's kernel). Per-channel only. */
  ties?: TieRule;
}

export interface Fp4LayerConfig {
  dge: DgeOptions | false;
  occ: OccOptions | false;
  gradients: Fp4GradientFormat;
  weights: Fp4WeightScaling;
  ties: TieRule;
}

function objectOrFalse<T extends object>(fn: string, name: string, v: unknown, defaults: T): T | false {
  if (v === false) return false;
  if (v === undefined || v === true) return { ...defaults };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${fn}: ${name} must be an object or false, got ${JSON.stringify(v)}`);
  return { ...defaults, ...(v as Partial<T>) };
}

function oneOf<T extends string>(fn: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new RangeError(`${fn}: ${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function readFp4Options(fn: string, args: Fp4LayerOptions): Fp4LayerConfig {
  const dge = objectOrFalse(fn, 'dge', args.dge, DGE_DEFAULTS);
  if (dge) {
    if (typeof dge.k !== 'number' || !(dge.k >= 1) || !Number.isFinite(dge.k)) throw new RangeError(`${fn}: dge.k must be a finite number ≥ 1, got ${String(dge.k)}`);
    if (typeof dge.cap !== 'number' || !(dge.cap > 0)) throw new RangeError(`${fn}: dge.cap must be a positive number, got ${String(dge.cap)}`);
  }
  const occ = objectOrFalse(fn, 'occ', args.occ, OCC_DEFAULTS);
  if (occ && (typeof occ.alpha !== 'number' || !(occ.alpha > 0.5 && occ.alpha < 1))) throw new RangeError(`${fn}: occ.alpha must be in (0.5, 1), got ${String(occ.alpha)}`);
  const gradients = oneOf(fn, 'gradients', args.gradients ?? 'e5m2', GRADIENT_FORMATS);
  const weights = oneOf(fn, 'weights', args.weights ?? 'per-channel', WEIGHT_SCALINGS);
  const ties = oneOf(fn, 'ties', args.ties ?? 'nearest-even', TIE_RULES);
  if (weights !== 'per-channel' && ties !== 'nearest-even') throw new RangeError(`${fn}: ties applies to weights 'per-channel' (fp4kit's block formats round to nearest even)`);
  return { dge: dge && { k: dge.k, cap: dge.cap }, occ: occ && { alpha: occ.alpha }, gradients, weights, ties };
}

/** The config fields (getConfig), the inverse of readFp4Options. */
export function fp4Config(c: Fp4LayerConfig): Record<string, unknown> {
  return { dge: c.dge ? { ...c.dge } : false, occ: c.occ ? { ...c.occ } : false, gradients: c.gradients, weights: c.weights, ties: c.ties };
}
