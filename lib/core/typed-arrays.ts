// Typed arrays read through the language's own accessors (the %TypedArray%.prototype getters,
// captured when this module loads), never through properties a caller can redefine: an own
// `length`, a subclass that overrides a getter, or a Proxy cannot make fp4kit read or write past
// the real data. The same accessors recognise arrays made in another realm (a vm context, an
// iframe), which `instanceof` refuses.
//
// What the facade does with the buffer behind an argument (the same on every backend): it reads
// the array through a plain view of exactly the memory the array covers when the call starts (a
// length-tracking view of a resizable buffer gets its current length); a detached buffer, or a
// view a shrink left out of bounds, has length 0, so any tensor that needs elements is refused by
// the length check. Synchronous calls then use that memory in place (no JavaScript runs while they
// work, so it cannot change size); the async calls take their own snapshot (lib/core/async-jobs.ts),
// except of SharedArrayBuffers, which are read in place (they never detach or shrink).

/** Whether this platform stores multi-byte elements little end first (every JavaScript engine in
 *  practice): code that reads four bytes as one Uint32Array word checks it and keeps a byte path. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export type TypedArrayName =
  | 'Int8Array' | 'Uint8Array' | 'Uint8ClampedArray' | 'Int16Array' | 'Uint16Array' | 'Int32Array' | 'Uint32Array'
  | 'Float32Array' | 'Float64Array' | 'BigInt64Array' | 'BigUint64Array';

export interface TypedArrayOf {
  Uint8Array: Uint8Array;
  Uint16Array: Uint16Array;
  Int32Array: Int32Array;
  Float32Array: Float32Array;
  Float64Array: Float64Array;
}

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;

function getter(proto: object, key: PropertyKey): (this: unknown) => unknown {
  const g = Object.getOwnPropertyDescriptor(proto, key)?.get;
  if (g === undefined) throw new Error(`this JavaScript engine has no ${String(key)} accessor`);
  return g;
}

const tagOf = getter(TypedArrayPrototype, Symbol.toStringTag) as (this: unknown) => TypedArrayName | undefined;
const lengthGetter = getter(TypedArrayPrototype, 'length') as (this: unknown) => number;
const byteLengthGetter = getter(TypedArrayPrototype, 'byteLength') as (this: unknown) => number;
const byteOffsetGetter = getter(TypedArrayPrototype, 'byteOffset') as (this: unknown) => number;
const bufferGetter = getter(TypedArrayPrototype, 'buffer') as (this: unknown) => ArrayBufferLike;
const SharedBuffer = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;
const sharedByteLength = SharedBuffer ? getter(SharedBuffer.prototype, 'byteLength') : undefined;

const CONSTRUCTORS = { Uint8Array, Uint16Array, Int32Array, Float32Array, Float64Array } as const;

/** The kind of typed array `v` is (its [[TypedArrayName]], from any realm), or undefined for
 *  anything else: a DataView, a Proxy, a plain object with a `length`, a primitive. */
export function typedArrayName(v: unknown): TypedArrayName | undefined {
  return tagOf.call(v);
}

/** Elements in view now (0 when the buffer is detached or the view is out of bounds). */
export function lengthOf(v: ArrayBufferView): number {
  return lengthGetter.call(v);
}

export function byteLengthOf(v: ArrayBufferView): number {
  return byteLengthGetter.call(v);
}

export function byteOffsetOf(v: ArrayBufferView): number {
  return byteOffsetGetter.call(v);
}

export function bufferOf(v: ArrayBufferView): ArrayBufferLike {
  return bufferGetter.call(v);
}

const arrayBufferByteLength = getter(ArrayBuffer.prototype, 'byteLength');

/** An ArrayBuffer (from any realm; not a SharedArrayBuffer). */
export function isArrayBuffer(v: unknown): boolean {
  try {
    arrayBufferByteLength.call(v);
    return true;
  } catch {
    return false;
  }
}

/** A SharedArrayBuffer (from any realm). */
export function isSharedBuffer(buffer: ArrayBufferLike): boolean {
  if (sharedByteLength === undefined) return false; // no SharedArrayBuffer here (e.g. a page that is not cross-origin isolated)
  try {
    sharedByteLength.call(buffer);
    return true;
  } catch {
    return false;
  }
}

/** A view of this realm over exactly the memory `v` covers now (no copy): whatever `v`'s own
 *  properties or prototype say, the view's length, offset and buffer are the real ones. */
export function plainView<K extends keyof TypedArrayOf>(kind: K, v: ArrayBufferView): TypedArrayOf[K] {
  const Ctor = CONSTRUCTORS[kind] as unknown as new (buffer: ArrayBufferLike, offset: number, length: number) => TypedArrayOf[K];
  const length = lengthOf(v);
  if (length === 0) return new (CONSTRUCTORS[kind] as unknown as new (n: number) => TypedArrayOf[K])(0);
  return new Ctor(bufferOf(v), byteOffsetOf(v), length);
}
