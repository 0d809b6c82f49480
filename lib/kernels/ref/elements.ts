// Element casts over whole arrays (encodeElements / decodeElements of the kernel contract), the twin
// of the array functions in assembly/element-codec.ts and native/quantize_scalar.cc.
import { loadBitsInto } from './dtype.js';
import { decodeTable, encodeElementBits } from './element-codec.js';
import { RoundingId, elementFormatById, type DtypeIdValue, type ElementIdValue, type RoundingIdValue } from '../../core/formats.js';
import { randomBits } from './stochastic.js';
import { guardBytes, guardFloats, guardSource } from '../kernel-guards.js';
import type { Source } from '../contract.js';

/** Elements loaded at a time (a small reused scratch of float32 bits). */
export const CHUNK = 4096;

export function encodeElements(src: Source, dtype: DtypeIdValue, formatId: ElementIdValue, rounding: RoundingIdValue, seed: number, out: Uint8Array, firstIndex = 0): number {
  src = guardSource('encodeElements', src, dtype, 0);
  out = guardBytes('encodeElements', 'out', out, src.length);
  const format = elementFormatById(formatId);
  const bits = new Uint32Array(CHUNK);
  let nans = 0;
  for (let start = 0; start < src.length; start += CHUNK) {
    const count = Math.min(CHUNK, src.length - start);
    loadBitsInto(src, dtype, start, count, bits);
    for (let i = 0; i < count; i++) {
      const b = bits[i];
      if (format.nanCode < 0 && (b & 0x7fffffff) > 0x7f800000) nans++;
      const random = rounding === RoundingId.stochastic ? randomBits(seed, firstIndex + start + i) : -1;
      out[start + i] = encodeElementBits(b, format, random);
    }
  }
  return nans;
}

export function decodeElements(codes: Uint8Array, formatId: ElementIdValue, out: Float32Array): void {
  codes = guardBytes('decodeElements', 'codes', codes, 0);
  out = guardFloats('decodeElements', 'out', out, codes.length);
  const table = decodeTable(elementFormatById(formatId));
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i]];
}
