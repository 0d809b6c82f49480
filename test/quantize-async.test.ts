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

  it('rejects bad arguments like quantize()', async () => {
    await expect(quantizeAsync(new Float32Array(4), { format: 'nope' as never })).rejects.toThrow(RangeError);
    expect(bitsOf(new Float32Array(1)).length).toBe(1);
  });
});
