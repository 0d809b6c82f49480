// What a caller passed, looked at without calling anything the caller defined (no toString, no
// getters, no Proxy traps): how an argument is named in an error message, what kind of value it
// is (an object to read fields of, an array, a revoked Proxy), and which error class a value
// outside a list gets.

import { isArrayBuffer, isSharedBuffer, typedArrayName } from './typed-arrays.js';

/** What a value is, for an error message: `null`, `an Array`, `2n (a BigInt)`, `Float64Array`, `"x"` … */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  switch (typeof v) {
    case 'bigint': return `${String(v)}n (a BigInt)`;
    case 'string': return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
    case 'number': return Object.is(v, -0) ? '-0' : String(v);
    case 'boolean': return String(v);
    case 'symbol': return 'a Symbol';
    case 'function': return 'a function';
  }
  if (isRevokedProxy(v)) return 'a revoked Proxy';
  if (Array.isArray(v)) return 'an Array';
  const name = typedArrayName(v);
  if (name !== undefined) return name;
  if (ArrayBuffer.isView(v)) return 'a DataView';
  if (isArrayBuffer(v)) return 'an ArrayBuffer';
  if (isSharedBuffer(v as ArrayBufferLike)) return 'a SharedArrayBuffer';
  return 'an object';
}

/**
 * The error for a value that is none of a list of allowed names or numbers: a TypeError when it is
 * not even of the list's kind (a BigInt, null or a Symbol where a name is expected), a RangeError
 * when it is (an unknown name, a number not in the list) — README "Arguments and errors".
 */
export function notOneOf(kind: 'string' | 'number', value: unknown, message: string): TypeError | RangeError {
  return typeof value === kind ? new RangeError(message) : new TypeError(message);
}

/** Whether `v` is a revoked Proxy: Array.isArray is the one look at an object that throws for it
 *  (and runs none of a live Proxy's traps). Reading anything of one is an engine error that names
 *  no function, so the checks refuse it first. */
export function isRevokedProxy(v: unknown): boolean {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return false;
  try {
    Array.isArray(v);
    return false;
  } catch {
    return true;
  }
}

/** Array.isArray, false for a revoked Proxy instead of an engine error. */
export function isArray(v: unknown): v is unknown[] {
  return !isRevokedProxy(v) && Array.isArray(v);
}

/** An object a function reads fields of (options, a tensor, a selection): not null, not an array
 *  or a typed array, not a revoked Proxy. */
export function isObjectArgument(v: unknown): v is object {
  return v !== null && typeof v === 'object' && !isRevokedProxy(v) && !Array.isArray(v) && !ArrayBuffer.isView(v);
}
