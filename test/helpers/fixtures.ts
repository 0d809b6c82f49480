// Reads the committed conformance vectors (test/fixtures, made by scripts/gen_vectors.py).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

function bytes(rel: string): Buffer {
  return readFileSync(path.join(DIR, rel));
}

function copyTo<T>(rel: string, make: (b: ArrayBuffer) => T): T {
  const b = bytes(rel);
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return make(ab as ArrayBuffer);
}

export const fixture = {
  f32: (rel: string) => copyTo(rel, (b) => new Float32Array(b)),
  u32: (rel: string) => copyTo(rel, (b) => new Uint32Array(b)),
  u8: (rel: string) => copyTo(rel, (b) => new Uint8Array(b)),
  json: <T = any>(rel: string): T => JSON.parse(bytes(rel).toString('utf8')) as T,
};

/** Float32 bit patterns, for comparisons that see −0 and NaN payloads. */
export function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Index of the first element where two float arrays differ bit for bit (NaNs equal to NaNs), or −1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const ab = bitsOf(a);
  const bb = bitsOf(b);
  for (let i = 0; i < a.length; i++) {
    if (ab[i] !== bb[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  }
  return -1;
}

export function firstByteDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
