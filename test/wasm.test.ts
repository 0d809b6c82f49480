// The wasm backend beyond the shared suites: its memory (growth after large inputs, no growth
// from repeated calls), row chunking (stochastic bits equal one js call across chunk edges and
// firstIndex splits), and the FP4×INT8 matmul kernel against the reference accumulation.
import { mxArgs, mxOutArgs, nvfp4Args, nvfp4OutArgs } from './helpers/block-args.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jsKernels } from '../lib/kernels/ref/index.js';
import { wasmKernels } from '../lib/kernels/wasm.js';
import { SCRATCH_BYTES } from '../lib/kernels/wasm-memory.js';
import { DtypeId, ElementId, RoundingId, ScaleRuleId } from '../lib/core/formats.js';
import { decodeOperand, matmulDecoded } from '../lib/core/matmul.js';
import { matmulFast, repackWeights } from '../lib/kernels/matmul-glue.js';
import { quantize } from '../lib/core/quantize.js';
import { instantiateWasmModule } from '../lib/kernels/wasm-memory.js';
import { availableBackends } from '../lib/index.js';
import { gaussian, variedMagnitude } from './helpers/data.js';
import { firstBitDifference, firstByteDifference } from './helpers/fixtures.js';

const wasmFile = new URL('../build-wasm/fp4kit.wasm', import.meta.url);
const built = availableBackends().find((b) => b.name === 'wasm')?.available === true;

/** A fresh module, so its memory can be watched. */
function freshModule() {
  const mem = instantiateWasmModule(readFileSync(wasmFile));
  return { mem, kernels: wasmKernels(mem) };
}

function mxBuffers(rows: number, cols: number, bits: number) {
  const blocks = Math.ceil(cols / 32);
  return { data: new Uint8Array(rows * blocks * 4 * bits), scales: new Uint8Array(rows * blocks) };
}

describe.runIf(built)('wasm backend', () => {
  it('loads with SIMD128 and a matmul kernel', () => {
    const { kernels } = freshModule();
    expect(kernels.name).toBe('wasm');
    expect(kernels.simd).toBe('simd128');
    expect(kernels.matmul?.matmulSimd).toBe('simd128');
  });

  it('grows its memory for a large tensor, then still gives the same bits for small ones', () => {
    const { mem, kernels } = freshModule();
    const before = mem.byteLength;
    const rows = 1100, cols = 4096; // 18 MB of float32: several chunks
    const x = variedMagnitude(rows * cols, 1);
    const want = mxBuffers(rows, cols, 4);
    const got = mxBuffers(rows, cols, 4);
    jsKernels.quantizeBlocks(mxArgs(x, DtypeId.f32, rows, cols, ElementId.e2m1, ScaleRuleId.floor, RoundingId.nearest, 0, want.data, want.scales));
    kernels.quantizeBlocks(mxArgs(x, DtypeId.f32, rows, cols, ElementId.e2m1, ScaleRuleId.floor, RoundingId.nearest, 0, got.data, got.scales));
    expect(firstByteDifference(got.data, want.data)).toBe(-1);
    expect(firstByteDifference(got.scales, want.scales)).toBe(-1);
    expect(mem.byteLength).toBeGreaterThan(before);
    // Scratch is bounded by the chunk size, not the tensor size.
    expect(mem.byteLength).toBeLessThan(2 * SCRATCH_BYTES);
    for (const [r, c] of [[3, 50], [1, 1], [2, 33]]) {
      const y = variedMagnitude(r * c, r + c);
      const w = mxBuffers(r, c, 8);
      const g = mxBuffers(r, c, 8);
      jsKernels.quantizeBlocks(mxArgs(y, DtypeId.f32, r, c, ElementId.e4m3, ScaleRuleId.ceil, RoundingId.stochastic, 5, w.data, w.scales));
      kernels.quantizeBlocks(mxArgs(y, DtypeId.f32, r, c, ElementId.e4m3, ScaleRuleId.ceil, RoundingId.stochastic, 5, g.data, g.scales));
      expect(firstByteDifference(g.data, w.data)).toBe(-1);
      expect(firstByteDifference(g.scales, w.scales)).toBe(-1);
      const back = new Float32Array(r * c);
      const ref = new Float32Array(r * c);
      jsKernels.dequantizeBlocks(mxOutArgs(w.data, w.scales, r, c, ElementId.e4m3, ref));
      kernels.dequantizeBlocks(mxOutArgs(w.data, w.scales, r, c, ElementId.e4m3, back));
      expect(firstBitDifference(back, ref)).toBe(-1);
    }
  });

  it('does not grow its memory over repeated calls', () => {
    const { mem, kernels } = freshModule();
    const rows = 64, cols = 1000;
    const x = gaussian(rows * cols, 9);
    const data = new Uint8Array(rows * Math.ceil(cols / 16) * 8);
    const scales = new Uint8Array(rows * Math.ceil(cols / 16));
    const out = new Float32Array(rows * cols);
    const once = () => {
      kernels.quantizeBlocks(nvfp4Args(x, DtypeId.f32, rows, cols, 1e-3, RoundingId.stochastic, 3, data, scales));
      kernels.dequantizeBlocks(nvfp4OutArgs(data, scales, rows, cols, 1e-3, out));
      kernels.encodeElements(x, DtypeId.f32, ElementId.e5m2, RoundingId.nearest, 0, new Uint8Array(x.length));
      kernels.absMax(x, DtypeId.f32);
    };
    once();
    const settled = mem.byteLength;
    for (let i = 0; i < 50; i++) once();
    expect(mem.byteLength).toBe(settled);
  });

  it('stochastic rounding across chunk edges equals one js call', () => {
    const { kernels } = freshModule();
    // Element casts: 5.2M f32 elements make several chunks.
    const n = 5_200_000;
    const x = variedMagnitude(n, 21);
    const want = new Uint8Array(n);
    const got = new Uint8Array(n);
    jsKernels.encodeElements(x, DtypeId.f32, ElementId.e2m1, RoundingId.stochastic, 77, want, 123);
    kernels.encodeElements(x, DtypeId.f32, ElementId.e2m1, RoundingId.stochastic, 77, got, 123);
    expect(firstByteDifference(got, want)).toBe(-1);
    // Block quantization: rows of 40000 columns, a few dozen rows per chunk.
    const rows = 130, cols = 40000;
    const y = x.subarray(0, rows * cols);
    const w = mxBuffers(rows, cols, 6);
    const g = mxBuffers(rows, cols, 6);
    jsKernels.quantizeBlocks(mxArgs(y, DtypeId.f32, rows, cols, ElementId.e3m2, ScaleRuleId.floor, RoundingId.stochastic, 0xdeadbeef, w.data, w.scales, 7));
    kernels.quantizeBlocks(mxArgs(y, DtypeId.f32, rows, cols, ElementId.e3m2, ScaleRuleId.floor, RoundingId.stochastic, 0xdeadbeef, g.data, g.scales, 7));
    expect(firstByteDifference(g.data, w.data)).toBe(-1);
    expect(firstByteDifference(g.scales, w.scales)).toBe(-1);
  });

  it('firstIndex splits (past 2^32 too) give the bits of one call, for every dtype', () => {
    const { kernels } = freshModule();
    const rows = 12, cols = 70;
    const x = variedMagnitude(rows * cols, 4).map((v) => Math.max(-60000, Math.min(60000, v)));
    const bf16 = new Uint16Array(new Uint32Array(x.buffer).map((b) => b >>> 16));
    for (const [dtype, src] of [[DtypeId.f32, x], [DtypeId.bf16, bf16]] as const) {
      for (const first of [0, 2 ** 32 - 100, 3 * 2 ** 40 + 5]) {
        const blocks = Math.ceil(cols / 16);
        const want = { data: new Uint8Array(rows * blocks * 8), scales: new Uint8Array(rows * blocks) };
        const got = { data: new Uint8Array(rows * blocks * 8), scales: new Uint8Array(rows * blocks) };
        jsKernels.quantizeBlocks(nvfp4Args(src, dtype, rows, cols, 2e-3, RoundingId.stochastic, 11, want.data, want.scales, first));
        const split = 5;
        kernels.quantizeBlocks(nvfp4Args(src.subarray(0, split * cols), dtype, split, cols, 2e-3, RoundingId.stochastic, 11, got.data.subarray(0, split * blocks * 8), got.scales.subarray(0, split * blocks), first));
        kernels.quantizeBlocks(nvfp4Args(src.subarray(split * cols), dtype, rows - split, cols, 2e-3, RoundingId.stochastic, 11, got.data.subarray(split * blocks * 8), got.scales.subarray(split * blocks), first + split * cols));
        expect(firstByteDifference(got.data, want.data), `dtype ${dtype} first ${first}`).toBe(-1);
        expect(firstByteDifference(got.scales, want.scales), `dtype ${dtype} first ${first}`).toBe(-1);
      }
    }
  });

  describe('FP4×INT8 matmul equals the reference accumulation bit for bit', () => {
    const SHAPES: Array<[number, number, number]> = [[1, 1, 1], [3, 19, 77], [7, 33, 250], [2, 16, 16], [5, 47, 513]];
    it.each(['mxfp4', 'nvfp4', 'fgmp'] as const)('%s weights, odd M/N/K, with and without bias', (format) => {
      const { kernels } = freshModule();
      for (const [m, n, k] of SHAPES) {
        const wv = gaussian(n * k, n + k, 0.05);
        for (let i = 0; i < wv.length; i += 29) wv[i] *= 40;
        const b = format === 'fgmp'
          ? quantize(wv, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.5 } as never)
          : quantize(wv, { format, shape: [n, k] });
        const a = quantize(gaussian(m * k, m * 31 + k), { format: 'mxint8', shape: [m, k] });
        const bias = gaussian(n, 3);
        for (const withBias of [false, true]) {
          const want = matmulDecoded(decodeOperand('test', a), decodeOperand('test', b as never), withBias ? bias : undefined);
          const got = matmulFast(kernels.matmul!, a, repackWeights(kernels.matmul!, b as never), n, withBias ? bias : undefined);
          expect(firstBitDifference(got, want), `${format} [${m}, ${n}, ${k}] bias ${withBias}`).toBe(-1);
        }
      }
    });

    it('chunks many activation rows; released weights are refused', () => {
      const { kernels } = freshModule();
      const [m, n, k] = [700, 1500, 64]; // 700 rows × 6 KB of output: more than one 4 MiB chunk
      const b = quantize(gaussian(n * k, 5, 0.1), { format: 'nvfp4', shape: [n, k] });
      const a = quantize(gaussian(m * k, 6), { format: 'mxint8', shape: [m, k] });
      const want = matmulDecoded(decodeOperand('test', a), decodeOperand('test', b));
      expect(firstBitDifference(matmulFast(kernels.matmul!, a, repackWeights(kernels.matmul!, b), n, undefined), want)).toBe(-1);
      const out = new Float32Array(m * n);
      const packed = kernels.matmul!.repackFp4Weights(b.data, Float32Array.from(b.scales, () => 0), null, null, n, k, 16);
      out.fill(1);
      kernels.matmul!.matmulFp4Int8(packed, a.data, new Float32Array(m * 2), m, null, out);
      expect(out.every((v) => v === 0)).toBe(true);
      expect(() => kernels.matmul!.matmulFp4Int8({}, a.data, new Float32Array(m * 2), m, null, out)).toThrow(TypeError);
      kernels.matmul!.releaseFp4Weights(packed);
      expect(() => kernels.matmul!.matmulFp4Int8(packed, a.data, new Float32Array(m * 2), m, null, out)).toThrow(/released/);
      expect(kernels.matmul!.matmulFp4Int8Async).toBeUndefined(); // wasm slices in the facade instead
    });
  });
});
