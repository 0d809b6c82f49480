// The cases the browser test runs in Chromium and, for the expected bytes, in Node on the js
// reference. Results are hex strings so they cross the page boundary unchanged.
import type { BlockFormatName } from '../../lib/core/formats.js';

export interface BrowserResult {
  backend: { name: string; simd: string };
  available: Array<{ name: string; available: boolean }>;
  outputs: Record<string, string>;
}

interface Api {
  quantize: (x: Float32Array, o: { format: BlockFormatName; shape: number[]; rounding?: 'nearest' | 'stochastic'; seed?: number }) => { data: Uint8Array; scales: Uint8Array };
  encode: (x: Float32Array, f: 'e4m3' | 'e2m1' | 'e8m0', o?: { nan?: 'zero' }) => Uint8Array;
  matmul: (a: Float32Array, b: never) => Float32Array;
  quantizeGradient: (g: Float32Array, o: { shape: number[]; bits: number; groups: 'sample' | 'channel' | 'tensor'; prune: 'none' | 'agp' | 'topk'; seed: number }) =>
    { codes: Uint8Array; scales: Float32Array; zeros: Float32Array; mask: Uint8Array };
}

/** The bytes as a hex string (hex of a Float32Array: its bytes). */
export function hex(bytes: Uint8Array | Float32Array): string {
  if (bytes instanceof Float32Array) bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Deterministic inputs with varied magnitudes, ties and signed zeros. */
export function input(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const u = a / 4294967296 - 0.5;
    x[i] = u * 2 ** ((i >> 5) % 24 - 12);
    if (i % 97 === 0) x[i] = i % 2 ? -0 : 0.25 * 2 ** ((i >> 5) % 24 - 12);
  }
  return x;
}

export function browserCases(api: Api, backend: { name: string; simd: string }, available: Array<{ name: string; available: boolean }>): BrowserResult {
  const outputs: Record<string, string> = {};
  const rows = 37, cols = 300;
  const x = input(rows * cols, 1);
  for (const format of ['mxfp4', 'nvfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as const) {
    for (const rounding of ['nearest', 'stochastic'] as const) {
      const q = api.quantize(x, { format, shape: [rows, cols], rounding, seed: 42 });
      outputs[`${format}/${rounding}`] = hex(q.data) + '/' + hex(q.scales);
    }
  }
  for (const f of ['e4m3', 'e2m1', 'e8m0'] as const) outputs[`encode/${f}`] = hex(api.encode(x, f, { nan: 'zero' }));
  const w = api.quantize(input(24 * 300, 2), { format: 'mxfp4', shape: [24, 300] });
  const y = api.matmul(input(5 * 300, 3), w as never);
  outputs['matmul/mxfp4'] = hex(y);
  for (const groups of ['sample', 'channel', 'tensor'] as const) {
    for (const prune of ['none', 'agp', 'topk'] as const) {
      const q = api.quantizeGradient(x, { shape: [rows, cols], bits: 4, groups, prune, seed: 42 });
      outputs[`gradient/${groups}/${prune}`] = [hex(q.codes), hex(q.scales), hex(q.zeros), hex(q.mask)].join('/');
    }
  }
  return { backend, available: available.map((b) => ({ name: b.name, available: b.available })), outputs };
}
