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
