// Caller code that runs while fp4kit reads its arguments — a getter on an options object or a
// tensor, a Proxy over a shape — cannot change what was checked. Every public function is called
// with its objects wrapped in Proxies that count the properties read; at the k-th read (for every
// k, and for each buffer) the trap shrinks one buffer of the call to 0 bytes. Whatever k, the call
// must see the buffer as it was or as it became — the bits of the undisturbed call, or exactly what
// the call given that buffer empty does — the same on every backend: never a mix (zeros from a view
// a shrink emptied after its check), never a kernel's message instead of the function's own.
import { afterAll, describe, expect, it } from 'vitest';
import {
  assignPrecision, bitplaneMatmul, bitplaneMatmulInt, calibrateFgmpActivations, dequantize, dequantizeGradient, encode, fgmpImpacts,
  matmul, matmulAsync, packBitPlanes, packGradient, packSigns, prepareWeights, quantize, quantizeAsync, quantizeFgmpActivations,
  quantizeGradient, quantizedByteLengths, selectThreshold, setBackend, withBackend,
} from '../lib/index.js';
import { testedBackends } from './helpers/backends.js';
import { gaussian } from './helpers/data.js';

const backends = testedBackends();
afterAll(() => setBackend('js'));

/**
 * One call's world: buffers that can be shrunk, and objects whose reads are counted. At read
 * `shrinkAt` the trap shrinks buffer `which` (the order the call's arrays were made in) to 0 bytes;
 * with `shrinkAt` = -1 it never does, and `emptied` empties buffer `which` before the call.
 */
class Hostile {
  private buffers: ArrayBuffer[] = [];
  private proxies = new WeakMap<object, object>();
  reads = 0;
  constructor(private shrinkAt: number, private which: number, private emptied = false) {}

  get bufferCount(): number {
    return this.buffers.length;
  }

  /** A copy of `a` in a resizable buffer the trap can shrink. */
  array<T extends Uint8Array | Uint16Array | Int32Array | Float32Array>(a: T): T {
    const ab = new ArrayBuffer(a.byteLength, { maxByteLength: Math.max(1, a.byteLength) });
    const copy = new (a.constructor as new (b: ArrayBuffer) => T)(ab);
    copy.set(a as never);
    if (this.emptied && this.buffers.length === this.which) ab.resize(0);
    this.buffers.push(ab);
    return copy;
  }

  /** `o` (and every object or array inside it, typed arrays excepted) behind a counting Proxy. */
  object<T extends object>(o: T): T {
    const known = this.proxies.get(o);
    if (known) return known as T;
    const wrap = (v: unknown) => (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v) ? this.object(v as object) : v);
    const p = new Proxy(o, {
      get: (t, key, r) => {
        this.read();
        return wrap(Reflect.get(t, key, r));
      },
      has: (t, key) => {
        this.read();
        return Reflect.has(t, key);
      },
    });
    this.proxies.set(o, p);
    return p;
  }

  private read(): void {
    if (this.reads++ === this.shrinkAt) this.buffers[this.which]?.resize(0);
  }
}

interface Case {
  /** The public function, as its messages name it. */
  fn: string;
  name: string;
  call(h: Hostile): unknown;
}

const x64 = gaussian(8 * 64, 1);
const w = gaussian(16 * 64, 2);
const fisher = new Float32Array(64).map((_, i) => 1 + (i % 5));
const nv = quantize(w, { format: 'nvfp4', shape: [16, 64] });
const mx8 = quantize(w, { format: 'mxfp8_e4m3', shape: [16, 64] });
const mx8a = quantize(x64, { format: 'mxfp8_e4m3', shape: [8, 64] });
const fg = quantize(w, { format: 'fgmp', shape: [16, 64], fp4Fraction: 0.5 });
const grad = quantizeGradient(x64, { shape: [8, 64], bits: 4, groups: 'tensor', seed: 3 });
const signs = packSigns(gaussian(4 * 64, 3), { shape: [4, 64] });
const planes = packBitPlanes(grad.codes, { shape: [8, 64], bits: 4 });
const packed = packGradient(grad, { reduce: 'columns' });
const L = quantizedByteLengths('nvfp4', [8, 64]);

/** A quantized tensor's arrays moved into shrinkable buffers, the object behind a Proxy. */
function tensor<T extends object>(h: Hostile, t: T): T {
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) copy[k] = ArrayBuffer.isView(v) ? h.array(v as Uint8Array) : Array.isArray(v) ? [...v] : v;
  return h.object(copy as T);
}

const CASES: Case[] = [
  { fn: 'quantize', name: 'nvfp4 into out', call: (h) => quantize(h.array(x64), h.object({ format: 'nvfp4' as const, shape: [8, 64], out: { data: h.array(new Uint8Array(L.data)), scales: h.array(new Uint8Array(L.scales)) } })) },
  { fn: 'quantize', name: 'mxfp6 stochastic', call: (h) => quantize(h.array(x64), h.object({ format: 'mxfp6_e3m2' as const, shape: [8, 64], rounding: 'stochastic' as const, seed: 5 })) },
  { fn: 'quantize', name: 'fgmp with fisher', call: (h) => quantize(h.array(x64), h.object({ format: 'fgmp' as const, shape: [8, 64], fisher: h.array(fisher), fp4Fraction: 0.5 })) },
  { fn: 'quantizeAsync', name: 'nvfp4 into out', call: (h) => quantizeAsync(h.array(x64), h.object({ format: 'nvfp4' as const, shape: [8, 64], out: { data: h.array(new Uint8Array(L.data)), scales: h.array(new Uint8Array(L.scales)) } })) },
  { fn: 'quantizeAsync', name: 'fgmp', call: (h) => quantizeAsync(h.array(x64), h.object({ format: 'fgmp' as const, shape: [8, 64], fisher: h.array(fisher) })) },
  { fn: 'dequantize', name: 'nvfp4 into out', call: (h) => dequantize(tensor(h, nv), h.object({ out: h.array(new Float32Array(16 * 64)) })) },
  { fn: 'dequantize', name: 'fgmp into out', call: (h) => dequantize(tensor(h, fg), h.object({ out: h.array(new Float32Array(16 * 64)) })) },
  { fn: 'dequantize', name: 'fgmp', call: (h) => dequantize(tensor(h, fg)) },
  { fn: 'matmul', name: 'float a, nvfp4 b, bias, out', call: (h) => matmul(h.array(x64), tensor(h, nv), h.object({ shape: [8, 64], bias: h.array(gaussian(16, 4)), out: h.array(new Float32Array(8 * 16)) })) },
  { fn: 'matmul', name: 'mxfp8 a, mxfp8 b, out', call: (h) => matmul(tensor(h, mx8a), tensor(h, mx8), h.object({ out: h.array(new Float32Array(8 * 16)) })) },
  { fn: 'matmul', name: 'float a, fgmp b', call: (h) => matmul(h.array(x64), tensor(h, fg), h.object({ bias: h.array(gaussian(16, 4)) })) },
  { fn: 'matmulAsync', name: 'float a, nvfp4 b, out', call: (h) => matmulAsync(h.array(x64), tensor(h, nv), h.object({ shape: [8, 64], out: h.array(new Float32Array(8 * 16)) })) },
  { fn: 'matmulAsync', name: 'mxfp8 a, fgmp b', call: (h) => matmulAsync(tensor(h, mx8a), tensor(h, fg)) },
  { fn: 'prepareWeights', name: 'fgmp', call: (h) => { const p = prepareWeights(tensor(h, fg)); try { return matmul(x64, p); } finally { p.dispose(); } } },
  { fn: 'prepareWeights', name: 'nvfp4', call: (h) => { const p = prepareWeights(tensor(h, nv)); try { return matmul(x64, p); } finally { p.dispose(); } } },
  { fn: 'encode', name: 'e4m3 stochastic', call: (h) => encode(h.array(x64), 'e4m3', h.object({ rounding: 'stochastic' as const, seed: 9 })) },
  { fn: 'fgmpImpacts', name: 'per-channel fisher', call: (h) => fgmpImpacts(h.array(x64), h.object({ shape: [8, 64], fisher: h.array(fisher) })) },
  { fn: 'quantizeFgmpActivations', name: 'threshold', call: (h) => quantizeFgmpActivations(h.array(x64), h.object({ shape: [8, 64], channelFisher: h.array(fisher), threshold: 1 })) },
  { fn: 'calibrateFgmpActivations', name: 'two batches', call: (h) => calibrateFgmpActivations(h.object([h.array(x64), h.array(x64.slice(0, 128))]), h.object({ cols: 64, channelFisher: h.array(fisher), fp4Fraction: 0.5 })) },
  { fn: 'selectThreshold', name: 'two lists', call: (h) => selectThreshold(h.object([h.array(new Float32Array([3, 1, 2])), h.array(new Float32Array([5, 0]))]), 0.5) },
  { fn: 'assignPrecision', name: 'two lists', call: (h) => assignPrecision(h.object([h.array(new Float32Array([3, 1, 2])), h.array(new Float32Array([5, 0]))]), h.object({ threshold: 2, tiesTaken: 0 })) },
  { fn: 'quantizeGradient', name: 'sample groups into out', call: (h) => quantizeGradient(h.array(x64), h.object({ shape: [8, 64], bits: 4, groups: 'sample' as const, seed: 1, out: {
    codes: h.array(new Uint8Array(8 * 64)), scales: h.array(new Float32Array(8)), zeros: h.array(new Float32Array(8)), mask: h.array(new Uint8Array(8)), keepProbability: h.array(new Float32Array(8)) } })) },
  { fn: 'dequantizeGradient', name: 'into out', call: (h) => dequantizeGradient(tensor(h, grad), h.object({ out: h.array(new Float32Array(8 * 64)) })) },
  { fn: 'packSigns', name: 'transposed', call: (h) => packSigns(h.array(x64), h.object({ shape: [8, 64], transpose: true })) },
  { fn: 'packBitPlanes', name: '4 bits', call: (h) => packBitPlanes(h.array(grad.codes), h.object({ shape: [8, 64], bits: 4 })) },
  { fn: 'packGradient', name: 'columns', call: (h) => packGradient(tensor(h, grad), h.object({ reduce: 'columns' as const })) },
  { fn: 'bitplaneMatmulInt', name: 'into out', call: (h) => bitplaneMatmulInt(tensor(h, planes), tensor(h, signs), h.object({ out: h.array(new Int32Array(8 * 4)) })) },
  { fn: 'bitplaneMatmul', name: 'into out', call: (h) => bitplaneMatmul(tensor(h, packed), tensor(h, signs), h.object({ out: h.array(new Float32Array(8 * 4)) })) },
];

/** Every byte and field of a result, as text (NaN payloads included). */
function fingerprint(v: unknown): string {
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}[${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}]`;
  if (Array.isArray(v)) return `[${v.map(fingerprint).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${k}:${fingerprint((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return typeof v === 'number' ? String(Object.is(v, -0) ? '-0' : v) : JSON.stringify(v);
}

async function outcome(c: Case, h: Hostile): Promise<{ text: string; reads: number; buffers: number }> {
  try {
    const r = await c.call(h);
    return { text: `ok ${fingerprint(r)}`, reads: h.reads, buffers: h.bufferCount };
  } catch (e) {
    return { text: `${(e as Error).constructor.name}: ${(e as Error).message}`, reads: h.reads, buffers: h.bufferCount };
  }
}

describe('caller code run while the arguments are read cannot change what was checked', () => {
  it.each(CASES.map((c) => [`${c.fn} (${c.name})`, c] as const))('%s: a buffer shrunk at any read is seen as it was or as it became, with the same bits or refusal on every backend', async (_, c) => {
    const reference = await withBackend('js', () => outcome(c, new Hostile(-1, -1)));
    expect(reference.text.startsWith('ok '), reference.text).toBe(true);
    expect(reference.reads).toBeGreaterThan(0);
    for (let j = 0; j < reference.buffers; j++) {
      // The call given buffer j already empty: what a shrink before the arrays are looked at gives.
      const emptied = await withBackend('js', () => outcome(c, new Hostile(-1, j, true)));
      for (let k = 0; k < reference.reads; k++) {
        const seen = new Map<string, string>();
        for (const b of backends) {
          const r = await withBackend(b, () => outcome(c, new Hostile(k, j)));
          seen.set(b, r.text);
          const where = `buffer ${j} shrunk at read ${k} on ${b}`;
          if (!r.text.startsWith('ok ')) {
            // The function's own check (e.g. "quantize: input must hold …"), not a kernel's.
            expect(r.text, where).toMatch(new RegExp(`^(TypeError|RangeError): ${c.fn}(\\(\\w+\\))?: `));
          }
          expect([reference.text, emptied.text], `${where}: neither the undisturbed call nor the call given an empty buffer`).toContain(r.text);
        }
        expect(new Set(seen.values()).size, `buffer ${j} shrunk at read ${k}: ${JSON.stringify(Object.fromEntries(seen))}`).toBe(1);
      }
    }
  });
});

describe.each(backends)('an out array whose class overrides its methods (%s)', (backend) => {
  /** A Float32Array subclass that lies about its length and whose methods do nothing: fp4kit must
   *  write through the array's real memory and call none of them. */
  const called: string[] = [];
  class LyingOut extends Float32Array {
    override get length(): number { called.push('length'); return 3; }
    override set(): void { called.push('set'); }
    override subarray(): Float32Array { called.push('subarray'); return new Float32Array(16); }
    override fill(): this { called.push('fill'); return this; }
  }
  const n = 4, k = 64;
  const cases = [['nvfp4 (integer kernels)', 'nvfp4', k], ['mxfp8_e5m2 (decoded)', 'mxfp8_e5m2', k], ['K = 0', 'nvfp4', 0]] as const;
  it.each(cases)('matmul and matmulAsync write %s into its memory and return it', async (_, format, kk) => {
    const b = quantize(gaussian(n * kk, 5), { format, shape: [n, kk] });
    const a = gaussian(2 * kk, 6);
    const bias = gaussian(n, 7);
    const want = withBackend(backend, () => matmul(a, b, { shape: [2, kk], bias }));
    for (const call of ['matmul', 'matmulAsync'] as const) {
      called.length = 0;
      const out = new LyingOut(2 * n);
      const got = await withBackend(backend, () => (call === 'matmul' ? matmul : matmulAsync)(a, b, { shape: [2, kk], bias, out }));
      expect(got, call).toBe(out);
      expect(called, call).toEqual([]);
      expect(new Uint32Array(out.buffer), call).toEqual(new Uint32Array(want.buffer));
    }
  });
});

// Found by a review of the read-once change (eighteenth session): caller code that still ran after
// the arrays were checked — a signal's own throwIfAborted, an Array subclass's Symbol.species
// (slice() builds its copy through it), an FGMP field's valueOf.
describe.each(backends)('caller code fp4kit never runs after the checks (%s)', (backend) => {
  const [m, n, k] = [2, 8, 64];
  const x = gaussian(m * k, 31);
  const weights = (format: 'mxfp4' | 'mxfp6_e3m2' | 'fgmp') => quantize(gaussian(n * k, 32), { format, shape: [n, k] } as never) as unknown as Record<string, unknown>;
  /** b with its data in a buffer `detach` transfers away. */
  function detachable(format: 'mxfp4' | 'mxfp6_e3m2' | 'fgmp') {
    const b = weights(format);
    const data = new Uint8Array(b.data as Uint8Array);
    return { b: { ...b, data }, detach: () => { if (data.buffer.byteLength) structuredClone(data.buffer, { transfer: [data.buffer] }); } };
  }
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

  it.each(['mxfp4', 'mxfp6_e3m2', 'fgmp'] as const)('an AbortSignal\'s own throwIfAborted is never called (%s; matmulAsync, quantizeAsync)', async (format) => {
    const want = bits(matmul(x, weights(format) as never));
    const { b, detach } = detachable(format);
    let called = false;
    const signal = new AbortController().signal;
    Object.defineProperty(signal, 'throwIfAborted', { value: () => { called = true; detach(); } });
    expect(bits(await withBackend(backend, () => matmulAsync(x, b as never, { signal })))).toBe(want);
    const xs = x.slice();
    const signal2 = new AbortController().signal;
    Object.defineProperty(signal2, 'throwIfAborted', { value: () => { called = true; structuredClone(xs.buffer, { transfer: [xs.buffer] }); } });
    const q = await withBackend(backend, () => quantizeAsync(xs, { format: format === 'fgmp' ? 'fgmp' : 'nvfp4', shape: [m, k], signal: signal2 } as never)) as { data: Uint8Array };
    expect(Buffer.from(q.data).toString('hex')).toBe(Buffer.from((quantize(x, { format: format === 'fgmp' ? 'fgmp' : 'nvfp4', shape: [m, k] } as never) as { data: Uint8Array }).data).toString('hex'));
    expect(called).toBe(false);
  });

  it.each(['mxfp4', 'fgmp'] as const)('a shape that is an Array subclass is copied without its Symbol.species (%s)', (format) => {
    const want = bits(matmul(x, weights(format) as never));
    const { b, detach } = detachable(format);
    let species = 0;
    class Shape extends Array<number> {
      static get [Symbol.species]() { species++; detach(); return Array; }
    }
    const shape = Shape.from([m, k]) as unknown as number[];
    expect(bits(withBackend(backend, () => matmul(x, b as never, { shape })))).toBe(want);
    expect(species).toBe(0);
  });

  it('an FGMP tensor\'s informational fields are not converted by their valueOf', () => {
    const want = bits(matmul(x, weights('fgmp') as never));
    const { b, detach } = detachable('fgmp');
    let converted = false;
    const hostile = { ...b, threshold: { valueOf: () => { converted = true; detach(); return 1; } } };
    expect(bits(withBackend(backend, () => matmul(x, hostile as never)))).toBe(want);
    expect(converted).toBe(false);
  });
});
