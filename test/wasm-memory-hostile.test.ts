// The wasm backend used as a hostile caller would. (1) Outputs that alias inputs through a second
// SharedArrayBuffer object over the same memory: the wasm backend streams row chunks through its
// module memory (lib/kernels/wasm-memory.ts), writing each chunk of the output before it reads the
// next chunk of input, so an aliased output gave other bits than the js backend's, while the addon
// refused the call: the facade must see the aliasing on every backend. (2) Resident weights kept
// again after every drop of the resident regions: each keep registered the owner with the
// FinalizationRegistry once more, and the registrations of a long-lived owner piled up for good.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { dequantize, matmul, quantize, quantizedByteLengths, withBackend } from '../lib/index.js';
import { instantiateWasmModule } from '../lib/kernels/wasm-memory.js';
import { wasmKernels } from '../lib/kernels/wasm.js';
import { matmulFast, repackWeights } from '../lib/kernels/matmul-glue.js';
import { decodeOperand, matmulDecoded } from '../lib/core/matmul.js';
import { gaussian } from './helpers/data.js';
import { firstBitDifference, firstByteDifference } from './helpers/fixtures.js';
import { testedBackends } from './helpers/backends.js';

const backends = testedBackends();

describe('outputs aliasing inputs through another SharedArrayBuffer object over the same memory', () => {
  // Rows enough for several of the wasm backend's row chunks (1 MiB of scratch each).
  const [rows, k, n] = [3000, 512, 64];
  const b = quantize(gaussian(n * k, 6), { format: 'nvfp4', shape: [n, k] });
  const a = quantize(gaussian(rows * k, 5), { format: 'mxint8', shape: [rows, k] });
  const q = quantize(gaussian(rows * k, 7), { format: 'mxfp4', shape: [rows, k] });

  it('structuredClone of a SharedArrayBuffer is another object over the same memory (what the check must see through)', () => {
    const sab = new SharedArrayBuffer(8);
    const twin = structuredClone(sab);
    expect(twin).not.toBe(sab);
    new Uint8Array(twin)[3] = 9;
    expect(new Uint8Array(sab)[3]).toBe(9);
  });

  it.each(backends)('%s: matmul and dequantize refuse an out that is an input\'s memory, and leave both as they were', (backend) => {
    const sab = new SharedArrayBuffer(rows * Math.max(n, k) * 4);
    const twin = structuredClone(sab);
    const data = new Uint8Array(sab, 0, a.data.length);
    data.set(a.data);
    const out = new Float32Array(twin, 0, rows * n);
    expect(() => withBackend(backend, () => matmul({ ...a, data }, b, { out }))).toThrow(new RangeError('matmul: out and a.data share memory'));
    expect(firstByteDifference(data, a.data)).toBe(-1);

    const qData = new Uint8Array(sab, 0, q.data.length);
    qData.set(q.data);
    const dOut = new Float32Array(twin, 0, rows * k);
    expect(() => withBackend(backend, () => dequantize({ ...q, data: qData }, { out: dOut }))).toThrow(new RangeError('dequantize: out and data share memory'));
    expect(firstByteDifference(qData, q.data)).toBe(-1);

    const x = new Float32Array(sab, 0, rows * k);
    x.set(gaussian(rows * k, 8));
    const lengths = quantizedByteLengths('mxfp8_e4m3', [rows, k]);
    const qOut = { data: new Uint8Array(twin, 4, lengths.data), scales: new Uint8Array(lengths.scales) };
    expect(() => withBackend(backend, () => quantize(x, { format: 'mxfp8_e4m3', shape: [rows, k], out: qOut }))).toThrow(new RangeError('quantize: out.data and input share memory'));
  });

  it.each(backends)('%s: two SharedArrayBuffers at the same offsets, equal bytes where they meet, are not one memory: same bits as js', (backend) => {
    // Both start with zero bytes, so the check must write to tell them apart.
    const data = new Uint8Array(new SharedArrayBuffer(a.data.length + 16), 0, a.data.length);
    data.set(a.data);
    data[0] = 0;
    const other = new SharedArrayBuffer(rows * n * 4);
    const out = new Float32Array(other, 0, rows * n);
    const operand = { ...a, data };
    withBackend(backend, () => matmul(operand, b, { out }));
    expect(firstBitDifference(out, withBackend('js', () => matmul(operand, b)))).toBe(-1);
    expect(data[0]).toBe(0);
  });
});

describe.runIf(backends.includes('wasm'))('resident weights and the FinalizationRegistry', () => {
  const Registry = globalThis.FinalizationRegistry;
  afterEach(() => {
    globalThis.FinalizationRegistry = Registry;
  });

  it('an owner kept again after every drop holds one registration, not one per keep', () => {
    // Counts the regions the module's registry holds (register's held value), less those unregistered.
    const held = new Set<{ live: boolean }>();
    globalThis.FinalizationRegistry = class extends Registry<{ live: boolean }> {
      register(target: object, value: { live: boolean }, token?: object) {
        held.add(value);
        super.register(target, value, token);
      }
      unregister(token: object) {
        held.delete(token as { live: boolean });
        return super.unregister(token);
      }
    } as typeof FinalizationRegistry;
    const [m, n, k] = [1, 16, 64];
    const model = quantize(gaussian(n * k, 2), { format: 'nvfp4', shape: [n, k] });
    const request = quantize(gaussian(n * k, 3), { format: 'nvfp4', shape: [n, k] });
    const a = quantize(gaussian(m * k, 1), { format: 'mxint8', shape: [m, k] });
    // A budget of two and a half regions (768 bytes each here): a request's weights, released under
    // the model's, leave a dead region, and the next request's drop every region; the model's are
    // then kept again.
    const mem = instantiateWasmModule(readFileSync(new URL('../build-wasm/fp4kit.wasm', import.meta.url)), { residentBytes: 1920 });
    const kernels = wasmKernels(mem).matmul!;
    const kept = repackWeights(kernels, model as never);
    const want = matmulDecoded(decodeOperand('t', a), decodeOperand('t', model));
    const copies = mem.residentCopies;
    for (let i = 0; i < 200; i++) {
      const temp = repackWeights(kernels, request as never);
      matmulFast(kernels, a, temp, n, undefined);
      expect(firstBitDifference(matmulFast(kernels, a, kept, n, undefined), want)).toBe(-1);
      kernels.releaseFp4Weights(temp);
    }
    expect(mem.residentCopies - copies).toBe(400); // the drops happened: both copied in on every round
    expect([...held].filter((r) => !r.live).length).toBe(0);
    expect(held.size).toBeLessThanOrEqual(2);
  });
});
