// The browser entry (lib/browser.ts) in Node, given the module's bytes: initWasm's arguments are
// checked before anything loads, and its resident budget reaches the module (test/wasm.test.ts
// covers what the budget does; test/browser.test.ts runs the entry in Chromium).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { getBackend, initWasm, matmul, prepareWeights, quantize } from '../lib/browser.js';
import { gaussian } from './helpers/data.js';

const bytes = readFileSync(new URL('../build-wasm/fp4kit.wasm', import.meta.url));

describe('initWasm', () => {
  it('refuses options that are not an object or a budget that is not a byte count', async () => {
    await expect(initWasm(bytes, 5 as never)).rejects.toThrow(TypeError);
    await expect(initWasm(bytes, { residentBytes: -1 })).rejects.toThrow(/residentBytes must be a number of bytes ≥ 0, got -1/);
    await expect(initWasm(bytes, { residentBytes: Number.NaN })).rejects.toThrow(RangeError);
    await expect(initWasm(bytes, { residentBytes: '1' as never })).rejects.toThrow(RangeError);
  });

  it('loads with a budget and runs the wasm backend', async () => {
    await initWasm(bytes, { residentBytes: 0 });
    expect(getBackend().name).toBe('wasm');
    const [m, n, k] = [2, 24, 64];
    const w = prepareWeights(quantize(gaussian(n * k, 3, 0.05), { format: 'mxfp4', shape: [n, k] }));
    const x = gaussian(m * k, 4);
    const first = matmul(x, w);
    expect(Array.from(matmul(x, w))).toEqual(Array.from(first));  // copied in per call (budget 0): same bits
  });
});
