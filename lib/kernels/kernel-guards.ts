// Checks at a backend's kernel boundary, for callers that skip the facade (lib/core/validate.ts).
// The addon makes the same checks in C++ (native/napi_args.h); here they keep the wasm backend
// from looping over a huge `rows` with tiny buffers or reading the wrong element type.
// They check types and that every buffer is long enough — cheap, O(1) per call.
// Lengths come from the intrinsic typed-array getters (lib/core/typed-arrays.ts), never from a
// `length` the caller can redefine: a spoofed length must not let a kernel loop past the data
// that was copied into the module's memory. Each guard returns a plain view of the real memory,
// which the kernel then uses instead of the caller's object.

import { DtypeId, ElementId, blockFormatById, type BlockFormat } from '../core/formats.js';
import { lengthOf, plainView, typedArrayName, type TypedArrayOf } from '../core/typed-arrays.js';
import type { BlockArgs, Source } from './contract.js';

const ELEMENT_IDS = new Set<number>(Object.values(ElementId));

function guardKind<K extends keyof TypedArrayOf>(fn: string, name: string, v: unknown, kind: K, needed: number, unit: string): TypedArrayOf[K] {
  if (typedArrayName(v) !== kind) throw new TypeError(`${fn}: ${name} must be a ${kind}`);
  const length = lengthOf(v as ArrayBufferView);
  if (length < needed) throw new RangeError(`${fn}: ${name} holds ${length} ${unit}, ${needed} needed`);
  return plainView(kind, v as ArrayBufferView);
}

export function guardSource(fn: string, src: unknown, dtype: unknown, count: number): Source {
  if (dtype === DtypeId.f32) {
    if (typedArrayName(src) !== 'Float32Array') throw new TypeError(`${fn}: dtype f32 needs a Float32Array`);
    return guardKind(fn, 'input', src, 'Float32Array', count, 'elements');
  }
  if (dtype === DtypeId.bf16 || dtype === DtypeId.f16) {
    if (typedArrayName(src) !== 'Uint16Array') throw new TypeError(`${fn}: dtype bf16/f16 needs a Uint16Array`);
    return guardKind(fn, 'input', src, 'Uint16Array', count, 'elements');
  }
  throw new RangeError(`${fn}: unknown dtype id ${String(dtype)}`);
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
  return guardKind(fn, name, buffer, 'Uint8Array', needed, 'bytes');
}

export function guardFloats(fn: string, name: string, buffer: unknown, needed: number): Float32Array {
  return guardKind(fn, name, buffer, 'Float32Array', needed, 'values');
}

export function guardInts(fn: string, name: string, buffer: unknown, needed: number): Int32Array {
  return guardKind(fn, name, buffer, 'Int32Array', needed, 'values');
}

export function guardDoubles(fn: string, name: string, buffer: unknown, needed: number): Float64Array {
  return guardKind(fn, name, buffer, 'Float64Array', needed, 'values');
}

export function guardHalves(fn: string, name: string, buffer: unknown, needed: number): Uint16Array {
  return guardKind(fn, name, buffer, 'Uint16Array', needed, 'values');
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

/** A block-kernel call's arguments read once (a getter cannot change them later) with the
 *  format's table entry; the per-family kernels check buffers and numbers themselves. */
export function guardBlockArgs<T extends BlockArgs>(fn: string, a: unknown): { args: T; format: BlockFormat } {
  if (a === null || typeof a !== 'object') throw new TypeError(`${fn}: arguments must be an object { format, rows, cols, data, scales, … }`);
  const args = { ...(a as T) };
  const format = blockFormatById(args.format);
  if (format === undefined) throw new RangeError(`${fn}: unknown block format id ${String(args.format)}`);
  return { args, format };
}
