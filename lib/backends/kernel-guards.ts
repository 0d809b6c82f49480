// Checks at a backend's kernel boundary, for callers that skip the facade (lib/validate.ts).
// The addon makes the same checks in C++ (native/napi_args.h); here they keep the wasm backend
// from looping over a huge `rows` with tiny buffers or reading the wrong element type.
// They check types and that every buffer is long enough — cheap, O(1) per call.

import { DtypeId, ElementId } from '../formats.js';
import type { Source } from './kernels.js';

const ELEMENT_IDS = new Set<number>(Object.values(ElementId));

export function guardSource(fn: string, src: unknown, dtype: unknown, count: number): Source {
  if (dtype === DtypeId.f32) {
    if (!(src instanceof Float32Array)) throw new TypeError(`${fn}: dtype f32 needs a Float32Array`);
  } else if (dtype === DtypeId.bf16 || dtype === DtypeId.f16) {
    if (!(src instanceof Uint16Array)) throw new TypeError(`${fn}: dtype bf16/f16 needs a Uint16Array`);
  } else {
    throw new RangeError(`${fn}: unknown dtype id ${String(dtype)}`);
  }
  if (src.length < count) throw new RangeError(`${fn}: input holds ${src.length} elements, ${count} needed`);
  return src;
}

export function guardDims(fn: string, rows: unknown, cols: unknown): void {
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new RangeError(`${fn}: ${name} must be a non-negative integer, got ${String(v)}`);
  }
}

export function guardElementFormat(fn: string, format: unknown): void {
  if (typeof format !== 'number' || !ELEMENT_IDS.has(format)) throw new RangeError(`${fn}: unknown element format id ${String(format)}`);
}

export function guardBytes(fn: string, name: string, buffer: unknown, needed: number): Uint8Array {
  if (!(buffer instanceof Uint8Array)) throw new TypeError(`${fn}: ${name} must be a Uint8Array`);
  if (buffer.length < needed) throw new RangeError(`${fn}: ${name} holds ${buffer.length} bytes, ${needed} needed`);
  return buffer;
}

export function guardFloats(fn: string, name: string, buffer: unknown, needed: number): Float32Array {
  if (!(buffer instanceof Float32Array)) throw new TypeError(`${fn}: ${name} must be a Float32Array`);
  if (buffer.length < needed) throw new RangeError(`${fn}: ${name} holds ${buffer.length} values, ${needed} needed`);
  return buffer;
}

export function guardNumber(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a number`);
  return v;
}

/** Seeds and first indices: integers a counter-based generator can take. */
export function guardIndex(fn: string, name: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new RangeError(`${fn}: ${name} must be a non-negative integer, got ${String(v)}`);
  return v as number;
}
