// Bit packing of element codes. FP4: two per byte, element 2i in the low nibble of byte i
// (PyTorch float4_e2m1fn_x2, torchao, compressed-tensors, ModelOpt). FP6: four per three bytes,
// element j of a group at bits 6j..6j+5 of the little-endian 24-bit word (the same
// low-bits-first order as FP4). FP8/INT8: one per byte.

import { checkCount, describe, inputArray } from './validate.js';

/** Pack `count` codes from codes[codeStart..] into out[outStart..]. count must fill whole bytes. */
export function packCodesInto(codes: Uint8Array, codeStart: number, count: number, bits: number, out: Uint8Array, outStart: number): void {
  if (bits === 8) {
    out.set(codes.subarray(codeStart, codeStart + count), outStart);
  } else if (bits === 4) {
    for (let i = 0; i < count; i += 2) {
      out[outStart + (i >> 1)] = (codes[codeStart + i] & 0xf) | ((codes[codeStart + i + 1] & 0xf) << 4);
    }
  } else if (bits === 6) {
    for (let i = 0, o = outStart; i < count; i += 4, o += 3) {
      const c = codeStart + i;
      const word = (codes[c] & 0x3f) | ((codes[c + 1] & 0x3f) << 6) | ((codes[c + 2] & 0x3f) << 12) | ((codes[c + 3] & 0x3f) << 18);
      out[o] = word & 0xff;
      out[o + 1] = (word >>> 8) & 0xff;
      out[o + 2] = (word >>> 16) & 0xff;
    }
  } else {
    throw new RangeError(`cannot pack ${bits}-bit codes`);
  }
}

/** Unpack `count` codes from packed[packedStart..] into out[outStart..]. */
export function unpackCodesInto(packed: Uint8Array, packedStart: number, count: number, bits: number, out: Uint8Array, outStart: number): void {
  if (bits === 8) {
    out.set(packed.subarray(packedStart, packedStart + count), outStart);
  } else if (bits === 4) {
    for (let i = 0; i < count; i++) {
      const byte = packed[packedStart + (i >> 1)];
      out[outStart + i] = (i & 1) === 0 ? byte & 0xf : byte >>> 4;
    }
  } else if (bits === 6) {
    for (let i = 0; i < count; i += 4) {
      const o = packedStart + (i / 4) * 3;
      const word = packed[o] | (packed[o + 1] << 8) | (packed[o + 2] << 16);
      for (let j = 0; j < 4 && i + j < count; j++) out[outStart + i + j] = (word >>> (6 * j)) & 0x3f;
    }
  } else {
    throw new RangeError(`cannot unpack ${bits}-bit codes`);
  }
}

function checkBits(fn: string, bits: unknown): 4 | 6 | 8 {
  if (bits !== 4 && bits !== 6 && bits !== 8) throw new RangeError(`${fn}: bits must be 4, 6 or 8, got ${describe(bits)}`);
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
