// quantize / dequantize, the contract on every backend: object shapes and sizes, padding, empty
// tensors, error bounds, the MX ceil rule, bf16/f16 inputs, caller-provided output buffers.
import { describe, expect, it } from 'vitest';
import { dequantize, encode, getBackend, quantize, quantizeAsync, quantizedByteLengths } from '../lib/index.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { gaussian } from './helpers/data.js';

describe.each(testedBackends())('contract on %s', (backend) => {
  useBackend(backend);

  it('getBackend names the backend in use', () => {
    expect(getBackend().name).toBe(backend);
  });

  it('returns { format, shape, data, scales, tensorScale? } with the documented sizes', () => {
    const x = gaussian(4 * 64, 1);
    const q = quantize(x, { format: 'nvfp4', shape: [4, 64] });
    expect(q.format).toBe('nvfp4');
    expect(q.shape).toEqual([4, 64]);
    expect(q.data.length).toBe(4 * 32);
    expect(q.scales.length).toBe(4 * 4);
    expect(typeof q.tensorScale).toBe('number');
    const m = quantize(x, { format: 'mxfp6_e3m2', shape: [4, 64] });
    expect(m.data.length).toBe(4 * 48);
    expect(m.scales.length).toBe(8);
    expect(m.tensorScale).toBeUndefined();
  });

  it('pads a last axis that is not a multiple of the block with zeros inside the final block', () => {
    const cols = 45;
    const x = gaussian(3 * cols, 2);
    const q = quantize(x, { format: 'mxfp4', shape: [3, cols] });
    expect(q.data.length).toBe(3 * 32); // two blocks of 32 per row
    const back = dequantize(q);
    expect(back.length).toBe(3 * cols);
    // Each row quantizes as if it were followed by zeros: compare with an explicitly padded copy.
    const padded = new Float32Array(3 * 64);
    for (let r = 0; r < 3; r++) padded.set(x.subarray(r * cols, (r + 1) * cols), r * 64);
    const qp = quantize(padded, { format: 'mxfp4', shape: [3, 64] });
    expect(Buffer.compare(q.data, qp.data)).toBe(0);
    expect(Buffer.compare(q.scales, qp.scales)).toBe(0);
  });

  it('handles empty tensors', () => {
    const q = quantize(new Float32Array(0), { format: 'mxfp8_e4m3', shape: [0, 32] });
    expect(q.data.length).toBe(0);
    expect(dequantize(q).length).toBe(0);
  });

  it('keeps relative error within each format\'s precision on Gaussian data', () => {
    const x = gaussian(256 * 256, 3);
    const limits: Record<string, number> = { mxfp4: 0.2, nvfp4: 0.15, mxfp6_e2m3: 0.06, mxfp6_e3m2: 0.1, mxfp8_e4m3: 0.04, mxfp8_e5m2: 0.08, mxint8: 0.01 };
    for (const [format, limit] of Object.entries(limits)) {
      const back = dequantize(quantize(x, { format: format as never, shape: [256, 256] }));
      let num = 0, den = 0;
      for (let i = 0; i < x.length; i++) { num += (back[i] - x[i]) ** 2; den += x[i] ** 2; }
      expect(Math.sqrt(num / den), format).toBeLessThan(limit);
    }
  });

  it('MX ceil scale rule never clips: every error is within half a quantum of the top binade', () => {
    const x = gaussian(64 * 32, 4);
    const ceil = quantize(x, { format: 'mxfp4', shape: [64, 32], scaleRule: 'ceil' });
    const floor = quantize(x, { format: 'mxfp4', shape: [64, 32] });
    const backCeil = dequantize(ceil);
    const backFloor = dequantize(floor);
    let clippedFloor = 0;
    for (let r = 0; r < 64; r++) {
      // e2m1's largest quantum is 2, so a rounding (not clipping) error is at most 1·2^s.
      const halfQuantumCeil = 2 ** (ceil.scales[r] - 127);
      const halfQuantumFloor = 2 ** (floor.scales[r] - 127);
      for (let c = 0; c < 32; c++) {
        const i = r * 32 + c;
        expect(Math.abs(backCeil[i] - x[i])).toBeLessThanOrEqual(halfQuantumCeil);
        if (Math.abs(backFloor[i] - x[i]) > halfQuantumFloor) clippedFloor++;
      }
    }
    expect(clippedFloor).toBeGreaterThan(0); // the OCP floor rule does clip some block maxima
  });

  it('encodes bf16 and f16 inputs exactly as their float32 widening', () => {
    const f16 = Uint16Array.from([0x3c00, 0xbc00, 0x0001, 0x7bff, 0x7c00, 0x3555]);
    const widened = new Float32Array([1, -1, 2 ** -24, 65504, Infinity, 0.333251953125]);
    expect([...encode(f16, 'e4m3', { dtype: 'f16' })]).toEqual([...encode(widened, 'e4m3')]);
    const bf16 = Uint16Array.from([0x3f80, 0xc040, 0x0001, 0x7f7f]);
    const wb = new Float32Array(new Uint32Array(Array.from(bf16, (h) => h << 16)).buffer);
    expect([...encode(bf16, 'e5m2', { dtype: 'bf16' })]).toEqual([...encode(wb, 'e5m2')]);
  });
});

describe.each(testedBackends())('dequantize into a caller buffer on %s', (backend) => {
  useBackend(backend);
  it('writes the same values into `out` and returns it; refuses a wrong-sized out', () => {
    const x = gaussian(3 * 100, 5);
    for (const format of ['mxfp4', 'nvfp4', 'mxfp8_e4m3'] as const) {
      const q = quantize(x, { format, shape: [3, 100] });
      const out = new Float32Array(300).fill(7);
      expect(dequantize(q, { out })).toBe(out);
      expect(out).toEqual(dequantize(q));
      expect(() => dequantize(q, { out: new Float32Array(299) })).toThrow(/out must hold 300 elements/);
      expect(() => dequantize(q, { out: new Float64Array(300) as never })).toThrow(TypeError);
    }
    const f = quantize(x, { format: 'fgmp', shape: [3, 100] });
    const out = new Float32Array(300);
    expect(dequantize(f, { out })).toBe(out);
    expect(out).toEqual(dequantize(f));
  });
});

describe.each(testedBackends())('quantize into caller buffers on %s', (backend) => {
  useBackend(backend);
  const formats = ['mxfp4', 'nvfp4', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxint8'] as const;

  it('writes the same bytes into out.data / out.scales, returns them, and reuses them call after call', async () => {
    const shape = [5, 70];
    for (const format of formats) {
      const sizes = quantizedByteLengths(format, shape);
      const out = { data: new Uint8Array(sizes.data).fill(0xa5), scales: new Uint8Array(sizes.scales).fill(0x5a) };
      for (let seed = 1; seed <= 3; seed++) {
        const x = gaussian(350, seed);
        const want = quantize(x, { format, shape });
        const got = quantize(x, { format, shape, out });
        expect(got.data).toBe(out.data);
        expect(got.scales).toBe(out.scales);
        expect(Buffer.compare(got.data, want.data), format).toBe(0);
        expect(Buffer.compare(got.scales, want.scales), format).toBe(0);
        expect(got.tensorScale).toBe(want.tensorScale);
        out.data.fill(0xa5);
        const a = await quantizeAsync(x, { format, shape, out, rounding: 'stochastic', seed });
        const wantStochastic = quantize(x, { format, shape, rounding: 'stochastic', seed });
        expect(a.data).toBe(out.data);
        expect(Buffer.compare(a.data, wantStochastic.data), `${format} async`).toBe(0);
        expect(Buffer.compare(a.scales, wantStochastic.scales), `${format} async`).toBe(0);
      }
    }
  });

  it('refuses out arrays of the wrong size or kind, and out for fgmp', async () => {
    const x = gaussian(350, 2);
    const sizes = quantizedByteLengths('nvfp4', [5, 70]);
    expect(() => quantize(x, { format: 'nvfp4', shape: [5, 70], out: { data: new Uint8Array(sizes.data - 1), scales: new Uint8Array(sizes.scales) } }))
      .toThrow(`quantize: out.data must hold ${sizes.data} bytes for this shape, got ${sizes.data - 1}`);
    expect(() => quantize(x, { format: 'nvfp4', shape: [5, 70], out: { data: new Uint8Array(sizes.data), scales: new Int8Array(sizes.scales) as never } }))
      .toThrow(/quantize: out\.scales must be a Uint8Array/);
    expect(() => quantize(x, { format: 'nvfp4', shape: [5, 70], out: null as never })).toThrow(/options\.out must be an object/);
    expect(() => quantize(x, { format: 'fgmp', shape: [5, 70], out: { data: new Uint8Array(1), scales: new Uint8Array(1) } } as never)).toThrow(/out is not available for fgmp/);
    await expect(quantizeAsync(x, { format: 'mxfp4', shape: [5, 70], out: { data: new Uint8Array(3), scales: new Uint8Array(3) } })).rejects.toThrow(/quantizeAsync: out\.data must hold/);
  });
});
