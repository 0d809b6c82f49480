// quantizeAsync: the same bytes as quantize() on every backend, across its chunks; abort; bad arguments.
import { describe, expect, it } from 'vitest';
import { dequantize, quantize } from '../lib/index.js';
import { quantizeAsync } from '../lib/core/quantize-async.js';
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

  it('rejects bad arguments like quantize()', async () => {
    await expect(quantizeAsync(new Float32Array(4), { format: 'nope' as never })).rejects.toThrow(RangeError);
    expect(bitsOf(new Float32Array(1)).length).toBe(1);
  });
});
