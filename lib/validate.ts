// Argument checks for the public API. Every message names the argument and what was wrong, so a
// caller can fix the call without reading fp4kit's source. The native addon repeats the checks
// that protect memory (lengths, types) in C++.

import { BLOCK_FORMATS, type BlockFormatName, type DtypeName, type RoundingName, type ScaleRuleName } from './formats.js';

export type Source = Float32Array | Uint16Array;

export function checkSource(fn: string, x: unknown, dtype: DtypeName | undefined): DtypeName {
  const resolved = dtype ?? (x instanceof Uint16Array ? undefined : 'f32');
  if (x instanceof Float32Array) {
    if (resolved !== 'f32') throw new TypeError(`${fn}: a Float32Array input has dtype 'f32', not '${dtype}'`);
    return 'f32';
  }
  if (x instanceof Uint16Array) {
    if (resolved !== 'bf16' && resolved !== 'f16') {
      throw new TypeError(`${fn}: a Uint16Array input needs dtype 'bf16' or 'f16' (got ${dtype === undefined ? 'none' : `'${dtype}'`})`);
    }
    return resolved;
  }
  const what = x === null ? 'null' : Array.isArray(x) ? 'an Array' : ArrayBuffer.isView(x) ? (x as object).constructor.name : typeof x;
  throw new TypeError(`${fn}: input must be a Float32Array, or a Uint16Array with dtype 'bf16' | 'f16'; got ${what}`);
}

export function checkShape(fn: string, shape: unknown, length: number): { rows: number; cols: number; shape: number[] } {
  const dims = shape === undefined ? [length] : shape;
  if (!Array.isArray(dims) || dims.length === 0) throw new TypeError(`${fn}: shape must be a non-empty array of integers`);
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`${fn}: shape [${dims.join(', ')}] has an invalid dimension ${String(d)}`);
    count *= d;
  }
  if (count !== length) {
    const detached = length === 0 && count > 0 ? ' (is its buffer detached?)' : '';
    throw new RangeError(`${fn}: shape [${dims.join(', ')}] holds ${count} elements but the input has ${length}${detached}`);
  }
  const cols = dims[dims.length - 1];
  const rows = cols === 0 ? 0 : count / cols;
  return { rows, cols, shape: [...dims] };
}

export function checkBlockFormat(fn: string, format: unknown): BlockFormatName {
  if (typeof format !== 'string' || !(format in BLOCK_FORMATS)) {
    throw new RangeError(`${fn}: unknown format ${JSON.stringify(format)}; expected one of ${Object.keys(BLOCK_FORMATS).join(', ')}, fgmp`);
  }
  return format as BlockFormatName;
}

export function checkRounding(fn: string, rounding: unknown, seed: unknown): { rounding: RoundingName; seed: number } {
  const r = rounding ?? 'nearest';
  if (r !== 'nearest' && r !== 'stochastic') throw new RangeError(`${fn}: rounding must be 'nearest' or 'stochastic', got ${JSON.stringify(r)}`);
  const s = seed ?? 0;
  if (!Number.isInteger(s) || (s as number) < 0 || (s as number) > 0xffffffff) {
    throw new RangeError(`${fn}: seed must be an integer in [0, 2^32), got ${String(s)}`);
  }
  return { rounding: r, seed: s as number };
}

export function checkScaleRule(fn: string, rule: unknown): ScaleRuleName {
  const r = rule ?? 'floor';
  if (r !== 'floor' && r !== 'ceil') throw new RangeError(`${fn}: scaleRule must be 'floor' or 'ceil', got ${JSON.stringify(r)}`);
  return r;
}

export function checkBytes(fn: string, name: string, value: unknown, expected: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${fn}: ${name} must be a Uint8Array`);
  if (value.length !== expected) throw new RangeError(`${fn}: ${name} must hold ${expected} bytes for this shape, got ${value.length}`);
  return value;
}

/** A float32 tensor scale: finite, positive and normal (subnormal scales would let block scales underflow). */
export function checkTensorScale(fn: string, t: unknown): number {
  if (typeof t !== 'number' || !Number.isFinite(t) || Math.fround(t) < 2 ** -126) {
    throw new RangeError(`${fn}: tensorScale must be a finite float32 ≥ 2^-126, got ${String(t)}`);
  }
  const f = Math.fround(t);
  if (!Number.isFinite(f)) throw new RangeError(`${fn}: tensorScale ${t} overflows float32`);
  return f;
}
