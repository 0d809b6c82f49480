// quantizeAsync: the same bytes as quantize() on every backend, across its chunks (and the
// checkpoint tool's quantizeAsyncInSteps, across its steps); abort (and matmulAsync's); bad
// arguments; options.out written when the job ends.
import { describe, expect, it } from 'vitest';
import { dequantize, matmul, matmulAsync, quantize } from '../lib/index.js';
import { quantizeAsync, quantizeAsyncInSteps } from '../lib/core/quantize-async.js';
import { bitsOf, firstBitDifference } from './helpers/fixtures.js';
import { gaussian, toBf16 } from './helpers/data.js';
import { testedBackends, useBackend } from './helpers/backends.js';

describe.each(testedBackends())('quantizeAsync on %s', (backend) => {
  useBackend(backend);

  it.each([
    ['nvfp4 nearest', { format: 'nvfp4' }],
    ['nvfp4 stochastic', { format: 'nvfp4', rounding: 'stochastic', seed: 99 }],
    ['mxfp4 stochastic', { format: 'mxfp4', rounding: 'stochastic', seed: 7 }],
    ['mxfp6_e3m2 ceil', { format: 'mxfp6_e3m2', scaleRule: 'ceil' }],
    ['mxfp8_e4m3', { format: 'mxfp8_e4m3' }],
  ] as const)('%s: bit-identical to quantize() across chunks', async (_what, opts) => {
    const rows = 300;
    const cols = 520; // rows span several chunks; cols not a multiple of the block
    const x = toBf16(gaussian(rows * cols, 21, 3));
    const sync = quantize(x, { ...opts, shape: [rows, cols], dtype: 'bf16' } as never) as { data: Uint8Array; scales: Uint8Array; tensorScale?: number };
    const async_ = await quantizeAsync(x, { ...opts, shape: [rows, cols], dtype: 'bf16' } as never) as { data: Uint8Array; scales: Uint8Array; tensorScale?: number };
    expect(Buffer.from(async_.data).equals(Buffer.from(sync.data))).toBe(true);
    expect(Buffer.from(async_.scales).equals(Buffer.from(sync.scales))).toBe(true);
    expect(async_.tensorScale).toBe(sync.tensorScale);
  });

  it('fgmp matches quantize()', async () => {
    const x = gaussian(64 * 64, 5);
    const a = quantize(x, { format: 'fgmp', shape: [64, 64] });
    const b = await quantizeAsync(x, { format: 'fgmp', shape: [64, 64] });
    expect(firstBitDifference(dequantize(a), dequantize(b))).toBe(-1);
  });

  // The checkpoint tool's call: the rows in steps with a report between them (a native job per step).
  it.each([
    ['nvfp4 stochastic', { format: 'nvfp4', rounding: 'stochastic', seed: 99 }],
    ['mxfp4 stochastic', { format: 'mxfp4', rounding: 'stochastic', seed: 7 }],
    ['mxfp6_e3m2 ceil', { format: 'mxfp6_e3m2', scaleRule: 'ceil' }],
    ['fgmp, Fisher per element', { format: 'fgmp', fp4Fraction: 0.6 }],
  ] as const)('quantizeAsyncInSteps, %s: a report after every step of whole rows but the last; the bits of quantize()', async (_what, opts) => {
    const rows = 300;
    const cols = 520;
    const x = toBf16(gaussian(rows * cols, 22, 3));
    // Later rows larger: a tensor scale, FP8 scale or FGMP selection taken per step would differ.
    for (let i = 200 * cols; i < x.length; i++) x[i] += 0x0200; // × 16 (bf16 exponent + 4; no value here is near overflow)
    const fisher = opts.format === 'fgmp' ? gaussian(rows * cols, 23).map(Math.abs) : undefined;
    const options = { ...opts, shape: [rows, cols], dtype: 'bf16', ...(fisher ? { fisher } : {}) };
    const reports: number[] = [];
    const got = await quantizeAsyncInSteps(x, options as never, { elements: 64 * cols + 7, between: async (done) => { reports.push(done); } });
    const want = quantize(x, options as never) as Record<string, unknown>;
    expect(reports).toEqual([64, 128, 192, 256].map((r) => r * cols));
    for (const key of ['data', 'scales', 'mask'] as const) {
      if (want[key] !== undefined) expect(Buffer.from((got as never as Record<string, Uint8Array>)[key]).equals(Buffer.from(want[key] as Uint8Array)), key).toBe(true);
    }
    for (const key of ['tensorScale', 'fp8Scale', 'threshold', 'tiesTaken']) expect((got as never as Record<string, unknown>)[key]).toBe(want[key]);
  });

  it('quantizeAsyncInSteps: an abort during a report rejects with AbortError and no step runs after it', async () => {
    for (const format of ['mxfp4', 'fgmp'] as const) {
      const [rows, cols] = [256, 256];
      const c = new AbortController();
      const reports: number[] = [];
      const p = quantizeAsyncInSteps(gaussian(rows * cols, 4), { format, shape: [rows, cols], signal: c.signal }, {
        elements: 32 * cols,
        between: async (done) => { reports.push(done); if (done === 64 * cols) c.abort(); },
      });
      await expect(p).rejects.toMatchObject({ name: 'AbortError' });
      await new Promise((resolve) => setTimeout(resolve, 20)); // a step started after the abort would report by now
      expect(reports, format).toEqual([32 * cols, 64 * cols]);
    }
  });

  it('an aborted signal rejects with AbortError', async () => {
    const x = gaussian(2048 * 1024, 3);
    const c = new AbortController();
    const p = quantizeAsync(x, { format: 'mxfp4', shape: [2048, 1024], signal: c.signal });
    c.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    await expect(quantizeAsync(x, { format: 'nvfp4', shape: [2048, 1024], signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('writes options.out when the job ends: the result in the caller\'s arrays, or (detached or shrunk meanwhile) one TypeError and nothing written', async () => {
    const [rows, cols] = [300, 520];
    const x = gaussian(rows * cols, 8);
    const want = quantize(x, { format: 'nvfp4', shape: [rows, cols] });
    const sizes = { data: want.data.length, scales: want.scales.length };
    const fresh = () => ({ data: new Uint8Array(sizes.data), scales: new Uint8Array(sizes.scales) });
    const out = fresh();
    const got = await quantizeAsync(x, { format: 'nvfp4', shape: [rows, cols], out });
    expect(got.data).toBe(out.data);
    expect(Buffer.from(out.data).equals(Buffer.from(want.data)) && Buffer.from(out.scales).equals(Buffer.from(want.scales))).toBe(true);
    for (const change of ['detach data', 'shrink scales'] as const) {
      const target = fresh();
      const ab = new ArrayBuffer(sizes.scales, { maxByteLength: sizes.scales });
      const scales = change === 'shrink scales' ? new Uint8Array(ab) : target.scales;
      const p = quantizeAsync(x, { format: 'nvfp4', shape: [rows, cols], out: { data: target.data, scales } });
      if (change === 'detach data') structuredClone(target.data.buffer, { transfer: [target.data.buffer] });
      else ab.resize(0);
      await expect(p, change).rejects.toThrow(new TypeError('quantizeAsync: options.out was detached or resized while the job ran; nothing was written'));
      if (change === 'shrink scales') expect(target.data.every((v) => v === 0), 'nothing written to out.data').toBe(true);
    }
  });

  // A tensor of one chunk (wasm/js: up to 65,536 elements) once ran to the end inside the call on
  // wasm and js: an abort or a detached `out` right after the call was not seen, the Promise
  // resolved (with an empty `scales` after the detach). It must behave as a native job does.
  it.each(['mxfp4', 'nvfp4'] as const)('%s: a small tensor is still pending when the call returns: an abort or a detached out right after it is seen', async (format) => {
    const [rows, cols] = [64, 256];
    const x = gaussian(rows * cols, 4);
    const want = quantize(x, { format, shape: [rows, cols] });
    let settled = false;
    const pending = quantizeAsync(x, { format, shape: [rows, cols] });
    void pending.then(() => { settled = true; });
    await Promise.resolve();
    await Promise.resolve();
    expect(settled, 'settled within the microtasks after the call').toBe(false);
    const got = await pending;
    expect(Buffer.from(got.data).equals(Buffer.from(want.data)) && Buffer.from(got.scales).equals(Buffer.from(want.scales))).toBe(true);

    const c = new AbortController();
    const aborted = quantizeAsync(x, { format, shape: [rows, cols], signal: c.signal });
    c.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });

    const out = { data: new Uint8Array(want.data.length), scales: new Uint8Array(want.scales.length) };
    const detached = quantizeAsync(x, { format, shape: [rows, cols], out });
    structuredClone(out.scales.buffer, { transfer: [out.scales.buffer] });
    await expect(detached).rejects.toThrow(new TypeError('quantizeAsync: options.out was detached or resized while the job ran; nothing was written'));
    expect(out.data.every((v) => v === 0), 'nothing written to out.data').toBe(true);

    // no rows at all: settles after the call too
    const c2 = new AbortController();
    const empty = quantizeAsync(new Float32Array(0), { format, shape: [0, cols], signal: c2.signal });
    c2.abort();
    await expect(empty).rejects.toMatchObject({ name: 'AbortError' });
  });

  // abortable() added one 'abort' listener per pending call: 11 calls sharing a signal printed
  // Node's MaxListenersExceededWarning. Now one listener per signal fans out to the pending calls,
  // and it is gone once they have settled.
  it('one AbortSignal shared by many concurrent calls: one listener, no MaxListenersExceededWarning, none left after; an abort rejects them all', async () => {
    const { getEventListeners } = await import('node:events');
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const [rows, cols] = [256, 1024];
      const x = gaussian(rows * cols, 6);
      const w = quantize(gaussian(64 * cols, 7), { format: 'nvfp4', shape: [64, cols] });
      const want = quantize(x, { format: 'mxfp4', shape: [rows, cols] });
      const c = new AbortController();
      const run = () => [
        ...Array.from({ length: 16 }, () => quantizeAsync(x, { format: 'mxfp4', shape: [rows, cols], signal: c.signal })),
        ...Array.from({ length: 16 }, () => matmulAsync(x, w, { signal: c.signal })),
      ];
      const jobs = run();
      expect(getEventListeners(c.signal, 'abort').length).toBeLessThanOrEqual(1);
      const done = await Promise.all(jobs);
      expect(Buffer.from((done[0] as { data: Uint8Array }).data).equals(Buffer.from(want.data))).toBe(true);
      expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
      // aborted while pending: every call rejects, and nothing stays on the signal
      const again = run();
      c.abort();
      const results = await Promise.allSettled(again);
      expect(results.every((r) => r.status === 'rejected' && (r.reason as Error).name === 'AbortError')).toBe(true);
      expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
      await new Promise((r) => setImmediate(r)); // process warnings are emitted on a later tick
      expect(warnings.filter((m) => /MaxListeners/.test(m))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('an aborted signal comes after the argument checks: bad arguments are refused as without one', async () => {
    const aborted = AbortSignal.abort();
    for (const format of ['nvfp4', 'fgmp'] as const) {
      await expect(quantizeAsync(new Float32Array(6), { format, shape: [4, 4], signal: aborted }), format).rejects.toThrow(/holds 16 elements but the input has 6/);
      await expect(quantizeAsync(new Float32Array(16), { format, shape: [4, 4], signal: aborted }), format).rejects.toMatchObject({ name: 'AbortError' });
    }
  });

  it('matmulAsync takes an AbortSignal: aborted at the call, or while the product runs, it rejects with the signal\'s reason; bad arguments first', async () => {
    const [m, n, k] = backend === 'js' ? [64, 256, 512] : [1024, 1024, 2048];
    const w = quantize(gaussian(n * k, 1), { format: 'mxfp8_e4m3', shape: [n, k] });
    const x = gaussian(m * k, 2);
    await expect(matmulAsync(x, w, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(matmulAsync(x.subarray(1), w, { signal: AbortSignal.abort() })).rejects.toThrow(/not whole rows of K/);
    const c = new AbortController();
    const p = matmulAsync(x, w, { signal: c.signal });
    c.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    // Not aborted: the product, as matmul gives it.
    const done = await matmulAsync(x.subarray(0, 4 * k), w, { signal: new AbortController().signal });
    expect(Buffer.from(done.buffer).equals(Buffer.from(matmul(x.subarray(0, 4 * k), w).buffer))).toBe(true);
    await expect(matmulAsync(x, w, { signal: {} as never })).rejects.toThrow(new TypeError('matmulAsync: options.signal must be an AbortSignal, got an object'));
    expect(() => matmul(x, w, { signal: AbortSignal.abort() } as never)).toThrow(new TypeError('matmul: options.signal applies to matmulAsync (matmul returns when the product is done)'));
  });

  it('rejects bad arguments like quantize()', async () => {
    await expect(quantizeAsync(new Float32Array(4), { format: 'nope' as never })).rejects.toThrow(RangeError);
    expect(bitsOf(new Float32Array(1)).length).toBe(1);
  });
});
