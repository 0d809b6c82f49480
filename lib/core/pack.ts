// Bit packing of element codes. FP4: two per byte, element 2i in the low nibble of byte i
// (PyTorch float4_e2m1fn_x2, torchao, compressed-tensors, ModelOpt). FP6: four per three bytes,
// element j of a group at bits 6j..6j+5 of the little-endian 24-bit word (the same
// low-bits-first order as FP4). FP8/INT8: one per byte.

// The public pack / unpack; the packing loops are the reference kernels' (lib/kernels/ref/pack.ts).
import { checkCount, describe, inputArray, notOneOf } from './validate.js';
import { packCodesInto, unpackCodesInto } from '../kernels/ref/pack.js';

function checkBits(fn: string, bits: unknown): 4 | 6 | 8 {
  if (bits !== 4 && bits !== 6 && bits !== 8) throw notOneOf('number', bits, `${fn}: bits must be 4, 6 or 8, got ${describe(bits)}`);
  return bits;
}

/** Pack one code per byte into 4-, 6- or 8-bit storage (the tail is padded with zero codes). */
export function pack(codes: Uint8Array, bits: 4 | 6 | 8): Uint8Array {
  const fn = 'pack';
  const input = inputArray(fn, 'codes', codes, 'Uint8Array');
  checkBits(fn, bits);
  const group = bits === 4 ? 2 : bits === 6 ? 4 : 1;
  const padded = Math.ceil(input.length / group) * group;
  const limit = (1 << bits) - 1;
  for (let i = 0; i < input.length; i++) {
    if (input[i] > limit) throw new RangeError(`${fn}: code ${input[i]} at index ${i} does not fit in ${bits} bits`);
  }
  const src = padded === input.length ? input : (() => { const p = new Uint8Array(padded); p.set(input); return p; })();
  const out = new Uint8Array((padded * bits) / 8);
  packCodesInto(src, 0, padded, bits, out, 0);
  return out;
}

/** Unpack `count` codes from 4-, 6- or 8-bit storage, one code per byte. */
export function unpack(packed: Uint8Array, bits: 4 | 6 | 8, count: number): Uint8Array {
  const fn = 'unpack';
  const input = inputArray(fn, 'packed', packed, 'Uint8Array');
  checkBits(fn, bits);
  checkCount(fn, 'count', count);
  const need = bits === 6 ? Math.ceil(count / 4) * 3 : Math.ceil((count * bits) / 8);
  if (input.length < need) throw new RangeError(`${fn}: ${count} ${bits}-bit codes need ${need} bytes, got ${input.length}`);
  const out = new Uint8Array(count);
  unpackCodesInto(input, 0, count, bits, out, 0);
  return out;
}
