// The options fp4Dense adds to tf.layers.dense, checked once at construction: a bad value is a
// TypeError or RangeError naming the option and what is allowed.

import { DGE_DEFAULTS, type DgeOptions } from '../../training/dge.js';
import { OCC_DEFAULTS, type OccOptions } from '../../training/occ.js';
import { TIE_RULES, type Fp4BlockFormat, type TieRule } from '../../training/fp4-quantizer.js';
import { describe, isArray, isObjectArgument, notOneOf } from '../../core/validate.js';

export type Fp4WeightScaling = 'per-channel' | Fp4BlockFormat;
const WEIGHT_SCALINGS: readonly Fp4WeightScaling[] = ['per-channel', 'nvfp4', 'mxfp4'];
export type Fp4GradientFormat = 'e5m2' | 'fp32';
const GRADIENT_FORMATS: readonly Fp4GradientFormat[] = ['e5m2', 'fp32'];

export interface Fp4LayerOptions {
  /** DGE on the weight gradient: { k = 5, cap = 3 }, or false for straight-through. */
  dge?: Partial<DgeOptions> | false | null;
  /** OCC on the input activations: { alpha = 0.99 }, or false for direct quantization. */
  occ?: Partial<OccOptions> | false | null;
  /** The output gradient of the backward products: 'e5m2' (FP8, per-tensor scale; default) or 'fp32'. */
  gradients?: Fp4GradientFormat | null;
  /** 'per-channel' (default: exact absmax scale per output channel, activations per token), or
   *  fp4kit's 'nvfp4' / 'mxfp4' blocks along the reduction axis for both operands. */
  scaling?: Fp4WeightScaling | null;
  /** E2M1 tie rule: 'nearest-even' (default) or 'ties-up' (the paper's kernel). Per-channel only. */
  ties?: TieRule | null;
}

/** The option names fp4Dense adds to Dense's (`weights` is Dense's own, or the legacy scaling). */
export const FP4_OPTIONS = ['dge', 'occ', 'gradients', 'scaling', 'ties'];

/**
 * The earlier name of `scaling`: `weights` given as one of its strings. An array under `weights` is
 * tf.layers.dense's own option (the layer's initial weights) and goes to Dense unchanged.
 */
export interface Fp4LegacyOptions {
  weights?: unknown;
}

export interface Fp4LayerConfig {
  dge: DgeOptions | false;
  occ: OccOptions | false;
  gradients: Fp4GradientFormat;
  scaling: Fp4WeightScaling;
  ties: TieRule;
}

/** An options object over `defaults` (undefined, null or true: the defaults; false: off), its keys checked. */
function objectOrFalse<T extends object>(fn: string, name: string, v: unknown, defaults: T): T | false {
  if (v === false) return false;
  if (v === undefined || v === null || v === true) return { ...defaults };
  if (!isObjectArgument(v)) throw new TypeError(`${fn}: ${name} must be an object or false, got ${describe(v)}`);
  const unknown = Object.keys(v).filter((key) => !Object.hasOwn(defaults, key)); // 'toString' is not an option
  if (unknown.length > 0) throw new RangeError(`${fn}: ${name} has no option ${unknown.map((u) => JSON.stringify(u)).join(', ')} (allowed: ${Object.keys(defaults).join(', ')})`);
  // A key given as undefined keeps its default (as an absent key does: the type is Partial).
  const given = Object.fromEntries(Object.entries(v).filter(([, value]) => value !== undefined));
  return { ...defaults, ...(given as Partial<T>) };
}

function numberOption(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a number, got ${describe(v)}`);
  return v;
}

function oneOf<T extends string>(fn: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw notOneOf('string', v, `${fn}: ${name} must be one of ${allowed.join(', ')}, got ${describe(v)}`);
  return v as T;
}

/** The FP4 scaling from `scaling`, or from a string under its earlier name `weights`. */
function readScaling(fn: string, args: Fp4LayerOptions & Fp4LegacyOptions): Fp4WeightScaling {
  const legacy = typeof args.weights === 'string' ? args.weights : undefined;
  if (args.weights !== undefined && args.weights !== null && legacy === undefined && !isArray(args.weights)) {
    throw new TypeError(`${fn}: weights must be an array of initial weight tensors (tf.layers.dense's option) or, as the earlier name of scaling, one of ${WEIGHT_SCALINGS.join(', ')}; got ${describe(args.weights)}`);
  }
  const scaling = args.scaling ?? undefined;
  if (scaling !== undefined && legacy !== undefined && scaling !== legacy) {
    if (typeof scaling !== 'string') throw new TypeError(`${fn}: scaling must be one of ${WEIGHT_SCALINGS.join(', ')}, got ${describe(scaling)}`);
    throw new RangeError(`${fn}: scaling ${describe(scaling)} and its earlier name weights ${describe(legacy)} disagree`);
  }
  return oneOf(fn, legacy !== undefined && scaling === undefined ? 'weights' : 'scaling', scaling ?? legacy ?? 'per-channel', WEIGHT_SCALINGS);
}

export function readFp4Options(fn: string, args: Fp4LayerOptions & Fp4LegacyOptions): Fp4LayerConfig {
  const dge = objectOrFalse(fn, 'dge', args.dge, DGE_DEFAULTS);
  if (dge) {
    const k = numberOption(fn, 'dge.k', dge.k);
    const cap = numberOption(fn, 'dge.cap', dge.cap);
    if (!(k >= 1) || !Number.isFinite(k)) throw new RangeError(`${fn}: dge.k must be a finite number ≥ 1, got ${describe(k)}`);
    if (!(cap > 0) || !Number.isFinite(cap)) throw new RangeError(`${fn}: dge.cap must be a finite positive number, got ${describe(cap)}`);
  }
  const occ = objectOrFalse(fn, 'occ', args.occ, OCC_DEFAULTS);
  if (occ && !(numberOption(fn, 'occ.alpha', occ.alpha) > 0.5 && occ.alpha < 1)) throw new RangeError(`${fn}: occ.alpha must be in (0.5, 1), got ${describe(occ.alpha)}`);
  const gradients = oneOf(fn, 'gradients', args.gradients ?? 'e5m2', GRADIENT_FORMATS);
  const scaling = readScaling(fn, args);
  const ties = oneOf(fn, 'ties', args.ties ?? 'nearest-even', TIE_RULES);
  if (scaling !== 'per-channel' && ties !== 'nearest-even') throw new RangeError(`${fn}: ties applies to scaling 'per-channel' (fp4kit's block formats round to nearest even)`);
  return { dge: dge && { k: dge.k, cap: dge.cap }, occ: occ && { alpha: occ.alpha }, gradients, scaling, ties };
}

/** The config fields (getConfig), the inverse of readFp4Options. */
export function fp4Config(c: Fp4LayerConfig): Record<string, unknown> {
  return { dge: c.dge ? { ...c.dge } : false, occ: c.occ ? { ...c.occ } : false, gradients: c.gradients, scaling: c.scaling, ties: c.ties };
}
