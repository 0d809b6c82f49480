// 16-bit float inputs (bf16 and IEEE f16, carried in a Uint16Array) widened exactly to float32.
// Widening is exact, so quantizing a bf16 tensor equals quantizing its float32 copy.

import { DtypeId, type DtypeIdValue } from '../../core/formats.js';

export function bf16BitsToF32Bits(h: number): number {
  return (h << 16) >>> 0;
}

export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // Inf / NaN, payload kept
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal f16: normalise into a float32 normal.
  const lead = 31 - Math.clz32(mant); // position of the leading 1, 0..9
  const e = lead - 24; // value = mant · 2^−24
  return (sign | ((e + 127) << 23) | ((mant << (23 - lead)) & 0x7fffff)) >>> 0;
}

/** Float32 bit patterns of src[start, start + count) into `out` (the kernels' load step). */
export function loadBitsInto(
  src: Float32Array | Uint16Array,
  dtype: DtypeIdValue,
  start: number,
  count: number,
  out: Uint32Array,
): void {
  if (dtype === DtypeId.f32) {
    const bits = new Uint32Array(src.buffer, src.byteOffset + start * 4, count);
    out.set(bits);
    return;
  }
  const halves = src as Uint16Array;
  // A loop per dtype: calling the widening through a variable costs more than the widening.
  if (dtype === DtypeId.bf16) for (let i = 0; i < count; i++) out[i] = bf16BitsToF32Bits(halves[start + i]);
  else for (let i = 0; i < count; i++) out[i] = f16BitsToF32Bits(halves[start + i]);
}


/** Elements [from, to) of a source as float32 values: the source's own view for f32, else widened
 *  into `into` (grown as needed and returned, so a caller working chunk by chunk reuses it). */
export function widenedRange(src: Float32Array | Uint16Array, dtype: DtypeIdValue, from: number, to: number, into?: Float32Array): Float32Array {
  if (dtype === DtypeId.f32) return (src as Float32Array).subarray(from, to);
  const out = into !== undefined && into.length >= to - from ? into.subarray(0, to - from) : new Float32Array(to - from);
  loadBitsInto(src, dtype, from, to - from, new Uint32Array(out.buffer, out.byteOffset, to - from));
  return out;
}
