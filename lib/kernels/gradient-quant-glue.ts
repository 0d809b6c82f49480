// The gradient-quantizer kernels' boundary, shared by the js and wasm backends (the addon makes
// the same checks in C++, native/gradient_quant_binding.cc): the argument object read once, every
// number in range, every buffer of the right kind and long enough (real lengths, plain views).
// Also the js backend's two kernels, which run the reference (ref/gradient-quant.ts) on the whole
// tensor at once.

import {
  gradientCodes, gradientDequantize, gradientElementRows, gradientGroupCount, gradientKeep, rangesAccumulate, rangesFinish, rangesInit,
} from './ref/gradient-quant.js';
import { guardBytes, guardDims, guardFloats } from './kernel-guards.js';
import type { GradientDequantArgs, GradientQuantArgs } from './contract.js';
import { checkDisjoint } from '../core/validate.js';

function guardInteger(fn: string, name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a number`);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${fn}: ${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

function readObject<T extends object>(fn: string, a: unknown, fields: string): T {
  if (a === null || typeof a !== 'object') throw new TypeError(`${fn}: arguments must be an object { ${fields} }`);
  return { ...(a as T) };
}

/** The checked arguments of quantizeGradient, with plain views of the caller's buffers. */
export function guardGradientQuantArgs(a: unknown): GradientQuantArgs & { count: number } {
  const fn = 'quantizeGradient';
  const x = readObject<GradientQuantArgs>(fn, a, 'src, rows, cols, bits, groups, prune, seed, codes, scales, zeros, mask, keepProbability');
  guardDims(fn, x.rows, x.cols);
  guardInteger(fn, 'bits', x.bits, 1, 8);
  guardInteger(fn, 'groups', x.groups, 0, 2);
  guardInteger(fn, 'prune', x.prune, 0, 2);
  guardInteger(fn, 'seed', x.seed, 0, 0xffffffff);
  const n = x.rows * x.cols;
  const count = gradientGroupCount(x.rows, x.cols, x.groups);
  const r = {
    ...x,
    count,
    src: guardFloats(fn, 'src', x.src, n),
    codes: guardBytes(fn, 'codes', x.codes, n),
    scales: guardFloats(fn, 'scales', x.scales, count),
    zeros: guardFloats(fn, 'zeros', x.zeros, count),
    mask: guardBytes(fn, 'mask', x.mask, count),
    keepProbability: guardFloats(fn, 'keepProbability', x.keepProbability, count),
  };
  // As the addon refuses them (its ArgumentLog): an output over another array gives other bits on each backend.
  checkDisjoint(fn, [['codes', r.codes], ['scales', r.scales], ['zeros', r.zeros], ['mask', r.mask], ['keepProbability', r.keepProbability]], [['src', r.src]]);
  return r;
}

export function guardGradientDequantArgs(a: unknown): GradientDequantArgs & { count: number } {
  const fn = 'dequantizeGradient';
  const x = readObject<GradientDequantArgs>(fn, a, 'codes, scales, zeros, mask, rows, cols, groups, out');
  guardDims(fn, x.rows, x.cols);
  guardInteger(fn, 'groups', x.groups, 0, 2);
  const n = x.rows * x.cols;
  const count = gradientGroupCount(x.rows, x.cols, x.groups);
  const r = {
    ...x,
    count,
    codes: guardBytes(fn, 'codes', x.codes, n),
    scales: guardFloats(fn, 'scales', x.scales, count),
    zeros: guardFloats(fn, 'zeros', x.zeros, count),
    mask: guardBytes(fn, 'mask', x.mask, count),
    out: guardFloats(fn, 'out', x.out, n),
  };
  checkDisjoint(fn, [['out', r.out]], [['codes', r.codes], ['scales', r.scales], ['zeros', r.zeros], ['mask', r.mask]]);
  return r;
}

/** The js backend: the three phases over the whole tensor. */
export function quantizeGradientJs(args: GradientQuantArgs): number {
  const a = guardGradientQuantArgs(args);
  const { count } = a;
  const lo = new Float32Array(count);
  const hi = new Float32Array(count);
  rangesInit(lo, hi, count);
  const rows = gradientElementRows(a.rows, a.cols);
  const bad = rangesAccumulate(a.src, rows, a.cols, a.groups, 0, lo, hi);
  if (bad >= 0) return bad;
  rangesFinish(lo, hi, count);
  const inv = new Float64Array(count);
  gradientKeep(lo, hi, count, a.bits, a.prune, a.seed, a.scales, a.zeros, a.mask, a.keepProbability, inv, new Float64Array(count), new Uint8Array(count));
  gradientCodes(a.src, rows, a.cols, a.bits, a.groups, a.seed, 0, lo, inv, a.codes);
  return -1;
}

export function dequantizeGradientJs(args: GradientDequantArgs): void {
  const a = guardGradientDequantArgs(args);
  gradientDequantize(a.codes, a.scales, a.zeros, a.mask, gradientElementRows(a.rows, a.cols), a.cols, a.groups, a.out);
}
