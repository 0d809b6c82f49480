// Argument checks for the public API. Every public function checks its arguments here before any
// backend runs, so a refusal is the same text on every backend and names the function, the
// argument and what was expected ("quantize: options.shape[1] must be a non-negative integer,
// got 2n (a BigInt)"). Typed arrays are read through lib/core/typed-arrays.ts (the real length, any
// realm); names a caller gives (formats, dtypes, backends) are looked up as own keys only, so
// 'toString' or '__proto__' is an unknown name, not an Object built-in. The native addon repeats
// the checks that protect memory (lengths, types) in C++.

import { BLOCK_FORMATS, type BlockFormatName, type DtypeName, type RoundingName, type ScaleRuleName } from './formats.js';
import { describe, isArray, isObjectArgument, notOneOf } from './describe.js';
import { isAbortSignal } from './async-jobs.js';
import { bufferOf, byteLengthOf, byteOffsetOf, lengthOf, plainView, typedArrayName, type TypedArrayOf } from './typed-arrays.js';

export { describe, isArray, isObjectArgument, notOneOf };

export type Source = Float32Array | Uint16Array;

/** A list for messages: 'a', 'b' or 'c'. */
function oneOf(names: readonly string[]): string {
  const quoted = names.map((n) => `'${n}'`);
  return quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

/** `name` must be one of `names` (compared as strings, never looked up on an object). */
export function checkName<T extends string>(fn: string, argument: string, value: unknown, names: readonly T[]): T {
  if (typeof value !== 'string' || !names.includes(value as T)) {
    throw notOneOf('string', value, `${fn}: ${argument} must be ${oneOf(names)}, got ${describe(value)}`);
  }
  return value as T;
}

/**
 * An options object: a plain object (undefined → {} when the options are optional) whose own
 * enumerable names are all in `names`: a typo (`rouding`, `bais`) is a RangeError naming it, not an
 * option silently ignored. (An option of another format, e.g. fp4Fraction with nvfp4, is a known
 * name here: quantize() refuses it once it knows the format.)
 */
export function checkOptions<T extends object>(fn: string, options: unknown, expected: string, optional: boolean, names: readonly string[]): T {
  if (options === undefined && optional) return {} as T;
  if (!isObjectArgument(options)) {
    throw new TypeError(`${fn}: options must be an object ${expected}, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!names.includes(key)) throw new RangeError(`${fn}: unknown option ${JSON.stringify(key)}; the options are ${names.join(', ')}`);
  }
  return options as T;
}

const DTYPES: readonly DtypeName[] = ['f32', 'bf16', 'f16'];

/** A float input: a Float32Array (dtype f32), or a Uint16Array carrying bf16/f16 bits. Returns
 *  the dtype and the array to read: a plain view of its memory (lib/core/typed-arrays.ts). */
export function checkSource(fn: string, x: unknown, dtype: unknown, argument = 'input'): { dtype: DtypeName; x: Source } {
  if (dtype !== undefined) checkName(fn, 'dtype', dtype, DTYPES);
  const kind = typedArrayName(x);
  if (kind === 'Float32Array') {
    if (dtype !== undefined && dtype !== 'f32') throw new TypeError(`${fn}: a Float32Array ${argument} has dtype 'f32', not '${String(dtype)}'`);
    return { dtype: 'f32', x: plainView('Float32Array', x as Float32Array) };
  }
  if (kind === 'Uint16Array') {
    if (dtype !== 'bf16' && dtype !== 'f16') {
      throw new TypeError(`${fn}: a Uint16Array ${argument} needs dtype 'bf16' or 'f16' (got ${dtype === undefined ? 'none' : `'${String(dtype)}'`})`);
    }
    return { dtype, x: plainView('Uint16Array', x as Uint16Array) };
  }
  throw new TypeError(`${fn}: ${argument} must be a Float32Array, or a Uint16Array with dtype 'bf16' | 'f16'; got ${describe(x)}`);
}

/** A non-negative safe integer (a Number: a BigInt is refused by name). */
export function checkCount(fn: string, argument: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${argument} must be a non-negative integer (a Number), got ${describe(v)}`);
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${fn}: ${argument} must be a non-negative integer, got ${describe(v)}`);
  return v;
}

/**
 * A shape option read once into a plain array (a getter or Proxy is asked for each dimension one
 * time), every dimension a non-negative integer Number; undefined stays undefined. Callers read
 * shapes before they look at the data, so nothing the shape runs can change the data afterwards.
 * `scalars`: [] (a scalar, as a safetensors tensor may be) is a shape too.
 */
export function readShape(fn: string, shape: unknown, argument = 'shape', scalars = false): number[] | undefined {
  if (shape === undefined) return undefined;
  if (!isArray(shape)) throw new TypeError(`${fn}: ${argument} must be ${scalars ? 'an' : 'a non-empty'} array of integers, got ${describe(shape)}`);
  const dims = copyShape(shape) as unknown[];
  if (dims.length === 0 && !scalars) throw new RangeError(`${fn}: ${argument} must be a non-empty array of integers, got []`);
  if (dims.length > MAX_DIMS) throw new RangeError(`${fn}: ${argument} has more than ${MAX_DIMS} dimensions`);
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i];
    if (typeof d !== 'number') throw new TypeError(`${fn}: ${argument}[${i}] must be a non-negative integer (a Number), got ${describe(d)}`);
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`${fn}: ${argument} [${dims.join(', ')}] has an invalid dimension ${String(d)} at [${i}]`);
  }
  return dims as number[];
}

/**
 * The named properties of a caller's object (options, a tensor), each read exactly once into a
 * plain object; an array `shape` is copied into a plain array (copyShape). The public functions
 * read every caller object this way before they look at any typed array, so no getter or Proxy of
 * the caller runs between an array's check and the kernel (it could shrink or detach the array's
 * buffer meanwhile).
 */
export function readFields<K extends string>(o: object, keys: readonly K[]): { [key in K]?: unknown } {
  const fields: { [key in K]?: unknown } = {};
  for (const key of keys) {
    const v = (o as Record<string, unknown>)[key];
    fields[key] = key === 'shape' ? copyShape(v) : v;
  }
  return fields;
}

/** The most dimensions a shape may have (NumPy's limit): a longer array is refused unread, so a
 *  sparse array or a Proxy claiming 2^32 − 1 elements costs nothing (a copy of every element would
 *  exhaust the heap, which ends the process). */
export const MAX_DIMS = 64;

/** An array shape copied into a plain array, its length and each element read once (checked later
 *  by readShape); at most MAX_DIMS + 1 elements are read, enough for readShape to refuse a longer one. */
export function copyShape(shape: unknown): unknown {
  return isArray(shape) ? copyArray(shape, MAX_DIMS + 1) : shape;
}

/**
 * The first `limit` elements of a caller's array (its length read once, each element read once),
 * into a plain array. An index loop, not slice(): slice builds its copy through the array's own
 * Symbol.species, which a subclass of Array can define (caller code, and a copy of its class).
 */
export function copyArray(array: readonly unknown[], limit = Infinity): unknown[] {
  const length = Math.min(array.length, limit);
  const copy: unknown[] = [];
  for (let i = 0; i < length; i++) copy.push(array[i]);
  return copy;
}

/**
 * A shape for `length` elements (default [length]): the product of its dimensions must be
 * `length`. `rows` × `cols` is the 2-D view the kernels take (blocks along the last axis; rows = 0
 * when there are no elements); `leading` is the product of the dimensions before the last one.
 */
export function checkShape(fn: string, shape: unknown, length: number, argument = 'shape'): { rows: number; cols: number; leading: number; shape: number[] } {
  const dims = readShape(fn, shape, argument) ?? [length];
  let count = 1;
  for (const d of dims) count *= d;
  if (count !== length) {
    const detached = length === 0 && count > 0 ? ' (is its buffer detached, or shrunk?)' : '';
    throw new RangeError(`${fn}: ${argument} [${dims.join(', ')}] holds ${count} elements but the input has ${length}${detached}`);
  }
  const cols = dims[dims.length - 1];
  const leading = dims.slice(0, -1).reduce((a, b) => a * b, 1);
  // Sizes are computed in doubles: past 2^53 they would be silently rounded.
  if (!Number.isSafeInteger(count)) throw new RangeError(`${fn}: ${argument} [${dims.join(', ')}] holds ${count} elements, more than 2^53`);
  if (!Number.isSafeInteger(leading)) throw new RangeError(`${fn}: ${argument} [${dims.join(', ')}] has ${leading} rows, more than 2^53`);
  const rows = cols === 0 ? 0 : count / cols;
  return { rows, cols, leading, shape: dims };
}

const BLOCK_FORMAT_NAMES = Object.keys(BLOCK_FORMATS) as BlockFormatName[];

/** A block format name (own keys of the format table only; 'fgmp' is handled by the callers). */
export function checkBlockFormat(fn: string, format: unknown, argument = 'format'): BlockFormatName {
  if (typeof format !== 'string' || !Object.hasOwn(BLOCK_FORMATS, format)) {
    throw notOneOf('string', format, `${fn}: unknown ${argument} ${describe(format)}; expected one of ${BLOCK_FORMAT_NAMES.join(', ')}, fgmp`);
  }
  return format as BlockFormatName;
}

/** A seed: an integer in [0, 2^32) (a Number). */
export function checkSeed(fn: string, argument: string, seed: unknown): number {
  if (typeof seed !== 'number') throw new TypeError(`${fn}: ${argument} must be an integer in [0, 2^32) (a Number), got ${describe(seed)}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`${fn}: ${argument} must be an integer in [0, 2^32), got ${describe(seed)}`);
  return seed;
}

export function checkRounding(fn: string, rounding: unknown, seed: unknown): { rounding: RoundingName; seed: number } {
  const r = rounding === undefined ? 'nearest' : rounding; // undefined is absent; null is a value, refused
  if (r !== 'nearest' && r !== 'stochastic') throw notOneOf('string', r, `${fn}: rounding must be 'nearest' or 'stochastic', got ${describe(r)}`);
  return { rounding: r, seed: checkSeed(fn, 'seed', seed === undefined ? 0 : seed) };
}

export function checkScaleRule(fn: string, rule: unknown): ScaleRuleName {
  const r = rule === undefined ? 'floor' : rule;
  if (r !== 'floor' && r !== 'ceil') throw notOneOf('string', r, `${fn}: scaleRule must be 'floor' or 'ceil', got ${describe(r)}`);
  return r;
}

/** A typed array argument of one kind and (optionally) an exact element count, checked from its
 *  real length (any realm; an own `length` or a Proxy is not believed). Returns it unchanged. */
export function checkArray<K extends keyof TypedArrayOf>(fn: string, name: string, value: unknown, kind: K, expected?: number, unit = 'elements'): TypedArrayOf[K] {
  if (typedArrayName(value) !== kind) throw new TypeError(`${fn}: ${name} must be a ${kind}, got ${describe(value)}`);
  const length = lengthOf(value as ArrayBufferView);
  if (expected !== undefined && length !== expected) {
    const detached = length === 0 ? ' (is its buffer detached, or shrunk?)' : '';
    throw new RangeError(`${fn}: ${name} must hold ${expected} ${unit}, got ${length}${detached}`);
  }
  return value as TypedArrayOf[K];
}

/** checkArray for an input the call reads: a plain view of its memory (lib/core/typed-arrays.ts). */
export function inputArray<K extends keyof TypedArrayOf>(fn: string, name: string, value: unknown, kind: K, expected?: number, unit = 'elements'): TypedArrayOf[K] {
  return plainView(kind, checkArray(fn, name, value, kind, expected, unit));
}

export function checkBytes(fn: string, name: string, value: unknown, expected?: number): Uint8Array {
  return inputArray(fn, name, value, 'Uint8Array', expected, expected === undefined ? 'bytes' : 'bytes for this shape');
}

/** A float32 tensor scale: finite, positive and normal (subnormal scales would let block scales underflow). */
export function checkTensorScale(fn: string, t: unknown, argument = 'tensorScale'): number {
  if (typeof t !== 'number') throw new TypeError(`${fn}: ${argument} must be a finite float32 ≥ 2^-126 (a Number), got ${describe(t)}`);
  if (!Number.isFinite(t) || Math.fround(t) < 2 ** -126) throw new RangeError(`${fn}: ${argument} must be a finite float32 ≥ 2^-126, got ${describe(t)}`);
  const f = Math.fround(t);
  if (!Number.isFinite(f)) throw new RangeError(`${fn}: ${argument} ${t} overflows float32`);
  return f;
}

/** A number in [0, 1]. */
export function checkFraction(fn: string, argument: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${argument} must be a number in [0, 1], got ${describe(v)}`);
  if (!(v >= 0 && v <= 1)) throw new RangeError(`${fn}: ${argument} must be a number in [0, 1], got ${describe(v)}`);
  return v;
}

export { isAbortSignal };

/** An AbortSignal (from any realm that shares this one's AbortSignal), or undefined. */
export function checkSignal(fn: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!isAbortSignal(signal)) throw new TypeError(`${fn}: options.signal must be an AbortSignal, got ${describe(signal)}`);
  return signal;
}

/**
 * Whether `out` and `other`, views of two buffer objects, see the same memory at byte `at` of both.
 * Two SharedArrayBuffer objects can hold one memory (one posted or structuredClone'd into the same
 * thread, a shared WebAssembly.Memory's buffer before and after it grew), always from the same
 * start, so equal offsets are the same byte. No property tells (and asking a buffer whether it is
 * shared costs a thrown exception when it is not), so the byte of `out` (an output, written by the
 * call anyway) is flipped and read through `other`, then put back: two memories never both change.
 */
function sameMemory(out: ArrayBufferView, other: ArrayBufferView, at: number): boolean {
  const o = new Uint8Array(bufferOf(out), at, 1), x = new Uint8Array(bufferOf(other), at, 1);
  const v = o[0];
  if (x[0] !== v) return false;
  o[0] = v ^ 0xff;
  const same = x[0] === (v ^ 0xff);
  o[0] = v;
  return same;
}

/**
 * Refuses an output that shares memory with an input or with another output ("quantize: out.data
 * and input share memory"). Kernels read and write such memory in different orders on different
 * backends (threads, SIMD widths), so an overlap would give different bits on each. Inputs may
 * share memory with each other (they are only read). Undefined entries (absent options) are skipped.
 */
export function checkDisjoint(fn: string, outputs: Array<[string, ArrayBufferView | null | undefined]>, inputs: Array<[string, ArrayBufferView | null | undefined]>): void {
  const present = (list: typeof outputs) => list.filter((e): e is [string, ArrayBufferView] => e[1] != null && byteLengthOf(e[1]) > 0);
  const outs = present(outputs);
  const all = [...outs, ...present(inputs)];
  for (let i = 0; i < outs.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const [na, a] = outs[i];
      const [nb, b] = all[j];
      const a0 = byteOffsetOf(a), b0 = byteOffsetOf(b);
      if (!(a0 < b0 + byteLengthOf(b) && b0 < a0 + byteLengthOf(a))) continue;
      if (bufferOf(a) === bufferOf(b) || sameMemory(a, b, Math.max(a0, b0))) throw new RangeError(`${fn}: ${na} and ${nb} share memory`);
    }
  }
}

/**
 * A new zeroed typed array of `length` elements, or a RangeError that names the call and what the
 * array was for when the engine cannot make one (longer than it allows, or out of memory): shapes
 * with an empty dimension can ask for huge outputs without any input data.
 */
export function newArray<T extends Float32Array | Float64Array | Uint8Array | Int32Array>(fn: string, Kind: new (length: number) => T, length: number, what: string): T {
  try {
    return new Kind(length);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new RangeError(`${fn}: cannot allocate the ${what} (${length} elements)`);
  }
}
