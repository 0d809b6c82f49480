// Element casts: float32 (or bf16/f16) → one code per byte, and back.

import { getKernels } from './backend.js';
import { DtypeId, ELEMENT_FORMATS, RoundingId, type DtypeName, type ElementFormatName, type RoundingName } from './formats.js';
import { checkRounding, checkSource } from './validate.js';

export interface EncodeOptions {
  rounding?: RoundingName;
  seed?: number;
  dtype?: DtypeName;
  /**
   * What NaN becomes in e2m1/e2m3/e3m2, which have no NaN: 'error' (default) throws a RangeError
   * naming the first NaN; 'zero' encodes it as +0. (e4m3/e5m2/e8m0 keep NaN as their NaN code.)
   */
  nan?: 'error' | 'zero';
}

const ENCODE_FORMATS = ['e2m1', 'e2m3', 'e3m2', 'e4m3', 'e5m2', 'e8m0'];

function checkElementFormat(fn: string, format: unknown): ElementFormatName {
  if (typeof format !== 'string' || !ENCODE_FORMATS.includes(format)) {
    throw new RangeError(`${fn}: unknown element format ${JSON.stringify(format)}; expected one of ${ENCODE_FORMATS.join(', ')}`);
  }
  return format as ElementFormatName;
}

export function encode(x: Float32Array | Uint16Array, format: ElementFormatName, options: EncodeOptions = {}): Uint8Array {
  const fn = 'encode';
  const name = checkElementFormat(fn, format);
  const dtype = checkSource(fn, x, options.dtype);
  const { rounding, seed } = checkRounding(fn, options.rounding, options.seed);
  const nanRule = options.nan ?? 'error';
  if (nanRule !== 'error' && nanRule !== 'zero') throw new RangeError(`${fn}: nan must be 'error' or 'zero', got ${JSON.stringify(nanRule)}`);
  const out = new Uint8Array(x.length);
  const nans = getKernels().encodeElements(x, DtypeId[dtype], ELEMENT_FORMATS[name].id, RoundingId[rounding], seed, out);
  if (nans > 0 && nanRule === 'error') {
    const first = Array.prototype.findIndex.call(x, (_v: number, i: number) => isNaNAt(x, dtype, i));
    throw new RangeError(`${fn}: input[${first}] is NaN and ${name} has no NaN (${nans} NaN input${nans > 1 ? 's' : ''}); pass { nan: 'zero' } to encode NaN as +0`);
  }
  return out;
}

function isNaNAt(x: Float32Array | Uint16Array, dtype: DtypeName, i: number): boolean {
  if (dtype === 'f32') return Number.isNaN(x[i]);
  const h = x[i];
  return dtype === 'bf16' ? (h & 0x7fff) > 0x7f80 : (h & 0x7fff) > 0x7c00;
}

export function decode(codes: Uint8Array, format: ElementFormatName): Float32Array {
  const fn = 'decode';
  const name = checkElementFormat(fn, format);
  if (!(codes instanceof Uint8Array)) throw new TypeError(`${fn}: codes must be a Uint8Array (one code per byte)`);
  const limit = 1 << ELEMENT_FORMATS[name].bits;
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] >= limit) throw new RangeError(`${fn}: code ${codes[i]} at index ${i} is not a ${name} code (< ${limit})`);
  }
  const out = new Float32Array(codes.length);
  getKernels().decodeElements(codes, ELEMENT_FORMATS[name].id, out);
  return out;
}
