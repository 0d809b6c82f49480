// Bit packing of element codes, the twin of lib/core/pack.ts: FP4 two per byte (element 2i in the
// low nibble of byte i), FP6 four per three bytes (element j at bits 6j..6j+5 of the
// little-endian 24-bit group), FP8/INT8 one per byte.

/** Pack `count` codes (one per byte; count a multiple of 16 for 4 bits, of 4 for 6 bits). */
export function packCodes(codes: usize, count: i32, bits: i32, out: usize): void {
  if (bits == 8) {
    memory.copy(out, codes, <usize>count);
  } else if (bits == 4) {
    let i = 0;
    for (; i + 32 <= count; i += 32) {
      v128.store(out + (<usize>i >> 1), packNibbles(v128.load(codes + <usize>i), v128.load(codes + <usize>i, 16)));
    }
    for (; i < count; i += 2) {
      store<u8>(out + (<usize>i >> 1), (load<u8>(codes + <usize>i) & 0xf) | ((load<u8>(codes + <usize>i + 1) & 0xf) << 4));
    }
  } else {
    for (let i = 0, o = out; i < count; i += 4, o += 3) {
      const c = codes + <usize>i;
      const word = (<u32>load<u8>(c) & 0x3f) | ((<u32>load<u8>(c, 1) & 0x3f) << 6) | ((<u32>load<u8>(c, 2) & 0x3f) << 12) | ((<u32>load<u8>(c, 3) & 0x3f) << 18);
      store<u8>(o, <u8>word);
      store<u8>(o, <u8>(word >>> 8), 1);
      store<u8>(o, <u8>(word >>> 16), 2);
    }
  }
}

/** 32 four-bit codes (one per byte, in two vectors) → 16 packed bytes. */
// @ts-ignore: decorator
@inline
export function packNibbles(first: v128, second: v128): v128 {
  // As 16-bit words each pair is (code 2i) | (code 2i+1) << 8; fold the high byte down by 4.
  const low = i16x8.splat(0x000f);
  const high = i16x8.splat(0x00f0);
  const a = v128.or(v128.and(first, low), v128.and(i16x8.shr_u(first, 4), high));
  const b = v128.or(v128.and(second, low), v128.and(i16x8.shr_u(second, 4), high));
  return i8x16.narrow_i16x8_u(a, b);
}

/** Unpack `count` codes from packed storage, one per byte. */
export function unpackCodes(packed: usize, count: i32, bits: i32, out: usize): void {
  if (bits == 8) {
    memory.copy(out, packed, <usize>count);
  } else if (bits == 4) {
    const mask = i8x16.splat(0x0f);
    let i = 0;
    for (; i + 32 <= count; i += 32) {
      const v = v128.load(packed + (<usize>i >> 1));
      const lo = v128.and(v, mask);
      const hi = i8x16.shr_u(v, 4);
      v128.store(out + <usize>i, i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
      v128.store(out + <usize>i, i8x16.shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), 16);
    }
    for (; i < count; i++) {
      const byte = <u32>load<u8>(packed + (<usize>i >> 1));
      store<u8>(out + <usize>i, (i & 1) == 0 ? byte & 0xf : byte >>> 4);
    }
  } else {
    for (let i = 0; i < count; i += 4) {
      const o = packed + <usize>(i >> 2) * 3;
      const word = <u32>load<u8>(o) | (<u32>load<u8>(o, 1) << 8) | (<u32>load<u8>(o, 2) << 16);
      for (let j = 0; j < 4 && i + j < count; j++) store<u8>(out + <usize>(i + j), <u8>((word >>> (6 * j)) & 0x3f));
    }
  }
}
