// Element casts: float32 (or bf16/f16) → one code per byte, and back.

import { getKernels } from '../kernels/registry.js';
import { DtypeId, ELEMENT_FORMATS, RoundingId, type DtypeName, type ElementFormatName, type RoundingName } from './formats.js';
import { checkOptions, checkRounding, checkSource, describe, inputArray, notOneOf } from './validate.js';

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

const ENCODE_FORMATS: readonly ElementFormatName[] = ['e2m1', 'e2m3', 'e3m2', 'e4m3', 'e5m2', 'e8m0'];

function checkElementFormat(fn: string, format: unknown): ElementFormatName {
  if (typeof format !== 'string' || !ENCODE_FORMATS.includes(format as ElementFormatName)) {
    throw notOneOf('string', format, `${fn}: unknown element format ${describe(format)}; expected one of ${ENCODE_FORMATS.join(', ')}`);
  }
  return format as ElementFormatName;
}

export function encode(x: Float32Array | Uint16Array, format: ElementFormatName, options: EncodeOptions = {}): Uint8Array {
  const fn = 'encode';
  const { rounding: roundingOption, seed: seedOption, dtype: dtypeOption, nan: nanOption } = checkOptions<EncodeOptions>(fn, options, '{ rounding?, seed?, dtype?, nan? }', true, ['rounding', 'seed', 'dtype', 'nan']);
  const name = checkElementFormat(fn, format);
  const { rounding, seed } = checkRounding(fn, roundingOption, seedOption);
  const nanRule = nanOption === undefined ? 'error' : nanOption; // null is a value (refused), not an absent option
  if (nanRule !== 'error' && nanRule !== 'zero') throw notOneOf('string', nanRule, `${fn}: nan must be 'error' or 'zero', got ${describe(nanRule)}`);
  const { dtype, x: src } = checkSource(fn, x, dtypeOption);
  const out = new Uint8Array(src.length);
  const nans = getKernels().encodeElements(src, DtypeId[dtype], ELEMENT_FORMATS[name].id, RoundingId[rounding], seed, out);
  if (nans > 0 && nanRule === 'error') {
    let first = 0;
    while (first < src.length - 1 && !isNaNAt(src, dtype, first)) first++;
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
  const input = inputArray(fn, 'codes', codes, 'Uint8Array');
  const limit = 1 << ELEMENT_FORMATS[name].bits;
  for (let i = 0; i < input.length; i++) {
    if (input[i] >= limit) throw new RangeError(`${fn}: code ${input[i]} at index ${i} is not a ${name} code (< ${limit})`);
  }
  const out = new Float32Array(input.length);
  getKernels().decodeElements(input, ELEMENT_FORMATS[name].id, out);
  return out;
}
