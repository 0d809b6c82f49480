// The bit-plane product's kernel boundary, shared by the js and wasm backends (the addon makes the
// same checks in C++, native/bitplane_gemm_binding.cc): the argument object read once, every
// number in range, every buffer of the right kind, long enough and (word arrays) 8-byte aligned.
// Also the js backend's three kernels, which run the reference (ref/bitplane-gemm.ts).

import {
  MAX_BITPLANE_LENGTH, bitplaneMatmul, packBitPlanes, packSigns, planesBytes, signsBytes,
} from './ref/bitplane-gemm.js';
import { guardBytes, guardFloats, guardInts } from './kernel-guards.js';
import { byteOffsetOf } from '../core/typed-arrays.js';
import type { BitplaneMatmulArgs, PackBitPlanesArgs, PackSignsArgs } from './contract.js';
import { checkDisjoint } from '../core/validate.js';

const MAX_ROWS = 2 ** 31;

function readObject<T extends object>(fn: string, a: unknown, fields: string): T {
  if (a === null || typeof a !== 'object' || Array.isArray(a) || ArrayBuffer.isView(a)) throw new TypeError(`${fn}: arguments must be an object { ${fields} }`);
  return { ...(a as T) };
}

function guardInteger(fn: string, name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a number`);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${fn}: ${name} must be an integer in [${lo}, ${hi}]`);
  return v;
}

function guardBoolean(fn: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${fn}: ${name} must be a boolean`);
  return v;
}

/** A byte array of 64-bit words: long enough and starting at a multiple of 8 bytes. */
function guardWords(fn: string, name: string, v: unknown, bytes: number): Uint8Array {
  const view = guardBytes(fn, name, v, bytes);
  if (bytes > 0 && byteOffsetOf(view) % 8 !== 0) throw new RangeError(`${fn}: ${name} must start at a multiple of 8 bytes`);
  return view;
}

function packShape(fn: string, rows: number, cols: number, transpose: boolean): { outRows: number; length: number } {
  const outRows = transpose ? cols : rows;
  const length = transpose ? rows : cols;
  if (length > MAX_BITPLANE_LENGTH) throw new RangeError(`${fn}: the reduction length ${length} exceeds 2^22`);
  return { outRows, length };
}

export function guardPackSignsArgs(a: unknown): PackSignsArgs & { outRows: number; length: number } {
  const fn = 'packSigns';
  const x = readObject<PackSignsArgs>(fn, a, 'src, rows, cols, transpose, ternary, out');
  const rows = guardInteger(fn, 'rows', x.rows, 0, MAX_ROWS);
  const cols = guardInteger(fn, 'cols', x.cols, 0, MAX_ROWS);
  const transpose = guardBoolean(fn, 'transpose', x.transpose);
  const ternary = guardBoolean(fn, 'ternary', x.ternary);
  const { outRows, length } = packShape(fn, rows, cols, transpose);
  const r = {
    rows, cols, transpose, ternary, outRows, length,
    src: guardFloats(fn, 'src', x.src, rows * cols),
    out: guardWords(fn, 'out', x.out, signsBytes(outRows, length, ternary)),
  };
  checkDisjoint(fn, [['out', r.out]], [['src', r.src]]); // as the addon refuses it
  return r;
}

export function guardPackBitPlanesArgs(a: unknown): PackBitPlanesArgs & { outRows: number; length: number } {
  const fn = 'packBitPlanes';
  const x = readObject<PackBitPlanesArgs>(fn, a, 'codes, rows, cols, bits, transpose, out');
  const rows = guardInteger(fn, 'rows', x.rows, 0, MAX_ROWS);
  const cols = guardInteger(fn, 'cols', x.cols, 0, MAX_ROWS);
  const bits = guardInteger(fn, 'bits', x.bits, 1, 8);
  const transpose = guardBoolean(fn, 'transpose', x.transpose);
  const { outRows, length } = packShape(fn, rows, cols, transpose);
  const r = {
    rows, cols, bits, transpose, outRows, length,
    codes: guardBytes(fn, 'codes', x.codes, rows * cols),
    out: guardWords(fn, 'out', x.out, planesBytes(outRows, length, bits)),
  };
  checkDisjoint(fn, [['out', r.out]], [['codes', r.codes]]);
  return r;
}

const absent = (v: unknown) => v === null || v === undefined;

export function guardBitplaneMatmulArgs(a: unknown): BitplaneMatmulArgs & { groups: number } {
  const fn = 'bitplaneMatmul';
  const x = readObject<BitplaneMatmulArgs>(fn, a, 'planes, m, bits, signs, n, length, ternary, rowsPerGroup, mask, scales, zeros, outInt, outFloat');
  const m = guardInteger(fn, 'm', x.m, 0, MAX_ROWS);
  const bits = guardInteger(fn, 'bits', x.bits, 1, 8);
  const n = guardInteger(fn, 'n', x.n, 0, MAX_ROWS);
  const length = guardInteger(fn, 'length', x.length, 0, MAX_BITPLANE_LENGTH);
  const ternary = guardBoolean(fn, 'ternary', x.ternary);
  const rowsPerGroup = guardInteger(fn, 'rowsPerGroup', x.rowsPerGroup, 1, MAX_ROWS);
  const groups = Math.ceil(m / rowsPerGroup);
  if (m * n > 9e15) throw new RangeError(`${fn}: m × n is too large`);
  const isFloat = !absent(x.scales);
  if (isFloat === absent(x.zeros)) throw new TypeError(`${fn}: scales and zeros must both be Float32Arrays or both null`);
  if (isFloat === absent(x.outFloat) || isFloat !== absent(x.outInt)) {
    throw new TypeError(`${fn}: the float form (scales, zeros) writes outFloat, the integer form outInt; the other must be null`);
  }
  const r = {
    m, bits, n, length, ternary, rowsPerGroup, groups,
    planes: guardWords(fn, 'planes', x.planes, planesBytes(m, length, bits)),
    signs: guardWords(fn, 'signs', x.signs, signsBytes(n, length, ternary)),
    mask: absent(x.mask) ? null : guardBytes(fn, 'mask', x.mask, groups),
    scales: isFloat ? guardFloats(fn, 'scales', x.scales, groups) : null,
    zeros: isFloat ? guardFloats(fn, 'zeros', x.zeros, groups) : null,
    outInt: isFloat ? null : guardInts(fn, 'outInt', x.outInt, m * n),
    outFloat: isFloat ? guardFloats(fn, 'outFloat', x.outFloat, m * n) : null,
  };
  // As the addon refuses them (native/bitplane_gemm_binding.cc): a quantized gradient's ranges are finite.
  for (let g = 0; g < groups && r.scales !== null; g++) {
    if (!Number.isFinite(r.scales[g]) || !Number.isFinite(r.zeros![g])) throw new RangeError(`${fn}: group ${g}'s scale or zero point is not finite`);
  }
  checkDisjoint(fn, [['outInt', r.outInt], ['outFloat', r.outFloat]], [['planes', r.planes], ['signs', r.signs], ['mask', r.mask], ['scales', r.scales], ['zeros', r.zeros]]);
  return r;
}

/** The js backend's kernels: the reference on the whole operands. */
export function packSignsJs(args: PackSignsArgs): void {
  const a = guardPackSignsArgs(args);
  packSigns(a.src, a.rows, a.cols, a.transpose, a.ternary, a.out);
}

export function packBitPlanesJs(args: PackBitPlanesArgs): number {
  const a = guardPackBitPlanesArgs(args);
  return packBitPlanes(a.codes, a.rows, a.cols, a.bits, a.transpose, a.out);
}

export function bitplaneMatmulJs(args: BitplaneMatmulArgs): void {
  bitplaneMatmul(guardBitplaneMatmulArgs(args));
}
