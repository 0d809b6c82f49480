// A tensor's stored bytes as the typed array quantize() takes.
import type { DtypeName } from '../core/formats.js';

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The typed-array view quantize() takes for a tensor's bytes: bf16/f16 as Uint16Array, f32 as Float32Array. */
export function sourceView(bytes: Uint8Array, dtype: string): { x: Float32Array | Uint16Array; dtype: DtypeName } {
  if (dtype === 'F32') return { x: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), dtype: 'f32' };
  return { x: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2), dtype: dtype === 'BF16' ? 'bf16' : 'f16' };
}
