// Packing element codes into bytes and back (4-bit: element 2i in the low nibble of byte i; 6-bit:
// four codes in three bytes, LSB first; 8-bit: one per byte): the twin of assembly/pack.ts and
// native/pack_codes.h.

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
