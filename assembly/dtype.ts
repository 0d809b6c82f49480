// 16-bit float inputs widened exactly to float32 bits (the twin of lib/kernels/ref/dtype.ts).

export const DTYPE_F32: i32 = 0;
export const DTYPE_BF16: i32 = 1;
export const DTYPE_F16: i32 = 2;

// @ts-ignore: decorator
@inline
export function bf16BitsToF32Bits(h: u32): u32 {
  return h << 16;
}

export function f16BitsToF32Bits(h: u32): u32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0x1f) return sign | 0x7f800000 | (mant << 13); // Inf / NaN, payload kept
  if (exp != 0) return sign | ((exp + 112) << 23) | (mant << 13);
  if (mant == 0) return sign;
  // Subnormal f16: normalise into a float32 normal.
  const lead = 31 - <i32>clz(mant);
  const e = lead - 24;
  return sign | (<u32>(e + 127) << 23) | ((mant << (23 - lead)) & 0x7fffff);
}

/** Float32 bits of element `index` of a source of `dtype`. */
// @ts-ignore: decorator
@inline
export function loadBits(src: usize, dtype: i32, index: usize): u32 {
  if (dtype == DTYPE_F32) return load<u32>(src + (index << 2));
  const h = <u32>load<u16>(src + (index << 1));
  return dtype == DTYPE_BF16 ? bf16BitsToF32Bits(h) : f16BitsToF32Bits(h);
}

/**
 * Float32 bits of src[start, start + count) into `out` (u32 words), zero-filled up to `padTo`.
 * For whole f32 blocks nothing is copied: the caller reads the source in place (see blockBits).
 */
export function loadBitsInto(src: usize, dtype: i32, start: usize, count: i32, out: usize, padTo: i32): void {
  if (dtype == DTYPE_F32) {
    memory.copy(out, src + (start << 2), <usize>count << 2);
  } else if (dtype == DTYPE_BF16) {
    let i = 0;
    const from = src + (start << 1);
    for (; i + 8 <= count; i += 8) {
      const h = v128.load(from + (<usize>i << 1));
      v128.store(out + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
      v128.store(out + (<usize>i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
    }
    for (; i < count; i++) store<u32>(out + (<usize>i << 2), bf16BitsToF32Bits(<u32>load<u16>(from + (<usize>i << 1))));
  } else {
    const from = src + (start << 1);
    for (let i = 0; i < count; i++) store<u32>(out + (<usize>i << 2), f16BitsToF32Bits(<u32>load<u16>(from + (<usize>i << 1))));
  }
  if (padTo > count) memory.fill(out + (<usize>count << 2), 0, <usize>(padTo - count) << 2);
}

// One block of float32 bits, padded; 64 words covers every block size (16, 32).
const blockScratch: usize = memory.data(256, 16);

/** Pointer to the float32 bits of one block: the source itself for a whole f32 block, else a
 *  widened, zero-padded copy in a static scratch. */
// @ts-ignore: decorator
@inline
export function blockBits(src: usize, dtype: i32, start: usize, count: i32, blockSize: i32): usize {
  if (dtype == DTYPE_F32 && count == blockSize) return src + (start << 2);
  loadBitsInto(src, dtype, start, count, blockScratch, blockSize);
  return blockScratch;
}
