// The options of tfjs's own Dense and Conv2D that fp4kit's layers check before handing them on:
// tfjs refuses some with an Error that names no layer ("Expected units to be a positive integer,
// but got 2." for 2n), fails on others deep inside (a BigInt filters count in JSON.stringify), and
// accepts a kernelSize or strides of 0 or NaN until the first call. Checked here, a bad value is a
// TypeError (the wrong kind of value) or RangeError (the right kind, a wrong value) naming the
// layer and the option, as every fp4kit function does (README "Arguments and errors").

import { describe, isArray, isObjectArgument } from '../../core/validate.js';

/** The layer's options object (not null, an array or a revoked Proxy). */
export function checkLayerArgs(fn: string, args: unknown, expected: string): void {
  if (!isObjectArgument(args)) throw new TypeError(`${fn}: expected an options object ${expected}, got ${describe(args)}`);
}

/** A positive integer count (units, filters). */
export function checkPositiveInteger(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a positive integer (a Number), got ${describe(v)}`);
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${fn}: ${name} must be a positive integer, got ${describe(v)}`);
  return v;
}

/** kernelSize or strides of a 2-D convolution: one positive integer, or two. Absent (undefined or
 *  null, as tfjs takes it): tfjs's default. An array is read by index (never its own forEach). */
export function checkIntegerPair(fn: string, name: string, v: unknown, optional: boolean): void {
  if ((v === undefined || v === null) && optional) return;
  if (isArray(v)) {
    const length = v.length;
    if (length !== 2) throw new RangeError(`${fn}: ${name} must be a positive integer or two of them, got an array of ${describe(length)}`);
    for (let i = 0; i < length; i++) checkPositiveInteger(fn, `${name}[${i}]`, v[i]);
    return;
  }
  checkPositiveInteger(fn, name, v);
}

/** The options of tfjs's LayerArgs (every layer's), as tfjs-layers 4.22 declares them, and the
 *  customObjects that its deserializer adds to a saved layer's config before construction. */
const LAYER_OPTIONS = ['inputShape', 'batchInputShape', 'batchSize', 'dtype', 'name', 'trainable', 'weights', 'inputDType', 'customObjects'];
/** The options of tfjs's Dense (DenseLayerArgs) and Conv2D (ConvLayerArgs), beside LayerArgs'. */
export const DENSE_OPTIONS = [...LAYER_OPTIONS, 'units', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer', 'inputDim',
  'kernelConstraint', 'biasConstraint', 'kernelRegularizer', 'biasRegularizer', 'activityRegularizer'];
export const CONV2D_OPTIONS = [...LAYER_OPTIONS, 'filters', 'kernelSize', 'strides', 'padding', 'dataFormat', 'dilationRate', 'activation',
  'useBias', 'kernelInitializer', 'biasInitializer', 'kernelConstraint', 'biasConstraint', 'kernelRegularizer', 'biasRegularizer', 'activityRegularizer'];

/** Refuse an option name the layer does not take, neither tfjs's (`base`) nor its own (`own`): a
 *  typo such as `gradient` for `gradients` would otherwise leave the default in force without a
 *  word (tfjs's own layers ignore unknown names). */
export function checkOptionNames(fn: string, args: object, base: readonly string[], own: readonly string[]): void {
  for (const key of Object.keys(args)) {
    if (base.includes(key) || own.includes(key)) continue;
    const k = key.toLowerCase();
    const near = [...base, ...own].filter((name) => {
      const n = name.toLowerCase();
      return n.startsWith(k) || k.startsWith(n) || n.slice(0, 4) === k.slice(0, 4);
    });
    const hint = near.length > 0 ? ` (did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?)` : '';
    throw new RangeError(`${fn}: unknown option ${JSON.stringify(key)}${hint}; it takes tfjs's own options and ${own.join(', ')}`);
  }
}
