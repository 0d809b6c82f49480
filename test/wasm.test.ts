// The wasm backend beyond the shared suites: its memory (growth after large inputs, no growth
// from repeated calls), row chunking (stochastic bits equal one js call across chunk edges and
// firstIndex splits), and the FP4×INT8 matmul kernel against the reference accumulation.
import { mxArgs, mxOutArgs, nvfp4Args, nvfp4OutArgs } from './helpers/block-args.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jsKernels } from '../lib/kernels/ref/index.js';
import { loadWasmKernels, wasmKernels } from '../lib/kernels/wasm.js';
import { SCRATCH_BYTES, WasmMemory, type WasmExports, type WasmOptions } from '../lib/kernels/wasm-memory.js';
import { DtypeId, ElementId, RoundingId, ScaleRuleId } from '../lib/core/formats.js';
import { decodeOperand, matmulDecoded } from '../lib/core/matmul.js';
import { fp4KernelInputs, matmulFast, repackWeights } from '../lib/kernels/matmul-glue.js';
import { quantize } from '../lib/core/quantize.js';
import { instantiateWasmModule } from '../lib/kernels/wasm-memory.js';
import { availableBackends } from '../lib/index.js';
import { gaussian, variedMagnitude } from './helpers/data.js';
import { kernelOutputs, referenceOutputs } from './browser/matmul-cases.js';
import { firstBitDifference, firstByteDifference } from './helpers/fixtures.js';

const wasmFile = new URL('../build-wasm/fp4kit.wasm', import.meta.url);
const built = availableBackends().find((b) => b.name === 'wasm')?.available === true;

/** A fresh module, so its memory can be watched. */
function freshModule(options?: WasmOptions) {
  const mem = instantiateWasmModule(readFileSync(wasmFile), options);
  return { mem, kernels: wasmKernels(mem) };
}

function mxBuffers(rows: number, cols: number, bits: number) {
  const blocks = Math.ceil(cols / 32);
  return { data: new Uint8Array(rows * blocks * 4 * bits), scales: new Uint8Array(rows * blocks) };
}

describe.runIf(built)('wasm backend', () => {
  it('FP4 × INT8 products on its kernels give the reference bytes (the cases Chromium runs on both builds)', () => {
    const { kernels } = freshModule();
    expect(kernelOutputs(kernels.matmul!)).toEqual(referenceOutputs());
  });

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

  it('out of memory is a RangeError naming fp4kit\'s wasm backend, not the engine\'s bare one', () => {
    const heapBase = () => 0;
    // A memory the engine will not grow (its maximum is reached), then a request past wasm32's 4 GiB.
    const capped = new WasmMemory({ memory: new WebAssembly.Memory({ initial: 1, maximum: 1 }), heapBase } as unknown as WasmExports);
    expect(() => capped.alloc(2 * 65536)).toThrow(/^fp4kit \(wasm backend\): out of memory: 131072 bytes of WebAssembly memory needed, 65536 held \(the engine refused to grow it: /);
    const small = new WasmMemory({ memory: new WebAssembly.Memory({ initial: 1 }), heapBase } as unknown as WasmExports);
    expect(() => small.alloc(2 ** 32 + 16)).toThrow(new RangeError(`fp4kit (wasm backend): out of memory: ${2 ** 32 + 16} bytes of WebAssembly memory needed, 65536 held (beyond the 4 GiB a wasm32 memory can address)`));
    expect(small.alloc(100)).toBe(0); // nothing was taken by the failed request
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

    it('FGMP on FP4 tiles with FP8 lanes (the kernel API without planes; the facade uses the planes)', () => {
      const { kernels } = freshModule();
      for (const [m, n, k] of [[1, 40, 96], [3, 19, 77], [7, 33, 250]] as const) {
        const wv = gaussian(n * k, n + k, 0.05);
        for (let i = 0; i < wv.length; i += 29) wv[i] *= 40;
        const b = quantize(wv, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.5 } as never) as never;
        const w = fp4KernelInputs(b);
        const packed = kernels.matmul!.repackFp4Weights(w.nibbles, w.blockScales, w.fp8Blocks, w.fp8Codes, w.n, w.k, w.blockSize, w.scaleCodes, w.scaleCoding, w.tensorScale);
        const a = quantize(gaussian(m * k, m * 31 + k), { format: 'mxint8', shape: [m, k] });
        const want = matmulDecoded(decodeOperand('test', a), decodeOperand('test', b));
        for (let round = 0; round < 2; round++) {  // copied in, then resident
          expect(firstBitDifference(matmulFast(kernels.matmul!, a, packed, n, undefined), want), `[${m}, ${n}, ${k}] round ${round}`).toBe(-1);
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

  // A model calls its layers in turn: each layer's weights must stay in the module's memory
  // between calls (copying them in — and decoding FGMP's FP8 lanes — on every switch cost FGMP
  // 5.5 → 43 ms per 4096² product), up to the resident budget; past it the weights that came first
  // stay and the others are copied in per call, with the same bits either way.
  describe('weights resident between calls', () => {
    const [m, n, k] = [3, 40, 96];
    const layers = (count: number) => Array.from({ length: count }, (_, i) => {
      const w = gaussian(n * k, 100 + i, 0.05);
      return i % 2 === 0
        ? quantize(w, { format: 'nvfp4', shape: [n, k] })
        : (quantize(w, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.6 } as never) as never);
    });
    const a = quantize(gaussian(m * k, 77), { format: 'mxint8', shape: [m, k] });
    const a1 = quantize(gaussian(k, 78), { format: 'mxint8', shape: [1, k] });
    const want = (b: never, x = a) => matmulDecoded(decodeOperand('test', x), decodeOperand('test', b));

    it('several weight sets stay resident: each is copied in once over many alternating calls', () => {
      const { mem, kernels } = freshModule();
      const bs = layers(4);
      const packed = bs.map((b) => repackWeights(kernels.matmul!, b as never));
      const before = mem.residentCopies;
      for (let round = 0; round < 3; round++) {
        bs.forEach((b, i) => {
          expect(firstBitDifference(matmulFast(kernels.matmul!, a, packed[i], n, undefined), want(b as never)), `round ${round} layer ${i}`).toBe(-1);
          expect(firstBitDifference(matmulFast(kernels.matmul!, a1, packed[i], n, undefined), want(b as never, a1)), `round ${round} layer ${i} m=1`).toBe(-1);
        });
      }
      // One form each (FGMP: its int16 planes at every row count here).
      expect(mem.residentCopies - before).toBe(4);
      const settled = mem.byteLength;
      for (let round = 0; round < 5; round++) bs.forEach((_, i) => matmulFast(kernels.matmul!, a, packed[i], n, undefined));
      expect(mem.byteLength).toBe(settled);
    });

    it('past the budget the first weights stay and the rest are copied per call, same bits', () => {
      const bs = layers(4);
      // 8 KiB: an nvfp4 40 × 96 weight (~3.5 KiB) fits, FGMP's int16 planes (~10 KiB) do not.
      const { mem, kernels } = freshModule({ residentBytes: 8 * 1024 });
      const packed = bs.map((b) => repackWeights(kernels.matmul!, b as never));
      const before = mem.residentCopies;
      for (let round = 0; round < 3; round++) {
        bs.forEach((b, i) => expect(firstBitDifference(matmulFast(kernels.matmul!, a, packed[i], n, undefined), want(b as never)), `round ${round} layer ${i}`).toBe(-1));
      }
      const kept = mem.residentCopies - before;
      expect(kept).toBeGreaterThanOrEqual(1);
      expect(kept).toBeLessThan(4);
      // A budget of 0 keeps nothing: every call copies, the bits are the same.
      const none = freshModule({ residentBytes: 0 });
      const packedNone = bs.map((b) => repackWeights(none.kernels.matmul!, b as never));
      bs.forEach((b, i) => expect(firstBitDifference(matmulFast(none.kernels.matmul!, a, packedNone[i], n, undefined), want(b as never))).toBe(-1));
      expect(none.mem.residentCopies).toBe(0);
    });

    it('a full budget with a dead region under live ones starts over with the new weights', () => {
      // nvfp4 40 × 96 (~3.5 KiB each): an 8 KiB budget holds two.
      const { mem, kernels } = freshModule({ residentBytes: 8 * 1024 });
      const bs = Array.from({ length: 3 }, (_, i) => quantize(gaussian(n * k, 200 + i, 0.05), { format: 'nvfp4', shape: [n, k] }));
      const packed = bs.map((b) => repackWeights(kernels.matmul!, b as never));
      const run = (i: number) => expect(firstBitDifference(matmulFast(kernels.matmul!, a, packed[i], n, undefined), want(bs[i] as never)), `layer ${i}`).toBe(-1);
      run(0);
      run(1);
      const c0 = mem.residentCopies;
      kernels.matmul!.releaseFp4Weights(packed[0]);  // under layer 1: dead
      run(2);  // does not fit beside them: everything is dropped, layer 2 moves to the start
      expect(mem.residentCopies - c0).toBe(1);
      run(2);
      expect(mem.residentCopies - c0).toBe(1);  // kept
      run(1);  // dropped with the rest: copied in again, and kept (fits beside layer 2)
      run(1);
      run(2);
      expect(mem.residentCopies - c0).toBe(2);
    });

    it('a full budget whose owners were collected starts over with the new weights (FinalizationRegistry)', () => {
      // In a child with --expose-gc: layer 0 fills the budget, is dropped and collected; layer 1
      // (which did not fit beside it) is then kept — copied in once, not on every call.
      const script = `
        import { readFileSync } from 'node:fs';
        import { instantiateWasmModule } from './lib/kernels/wasm-memory.ts';
        import { wasmKernels } from './lib/kernels/wasm.ts';
        import { matmulFast, repackWeights } from './lib/kernels/matmul-glue.ts';
        import { decodeOperand, matmulDecoded } from './lib/core/matmul.ts';
        import { quantize } from './lib/core/quantize.ts';
        import { gaussian } from './test/helpers/data.ts';
        const [m, n, k] = [${m}, ${n}, ${k}];
        const mem = instantiateWasmModule(readFileSync('build-wasm/fp4kit.wasm'), { residentBytes: 6 * 1024 });
        const kernels = wasmKernels(mem);
        const a = quantize(gaussian(m * k, 77), { format: 'mxint8', shape: [m, k] });
        const layer = (seed) => quantize(gaussian(n * k, seed, 0.05), { format: 'nvfp4', shape: [n, k] });
        (() => { const p0 = repackWeights(kernels.matmul, layer(100)); matmulFast(kernels.matmul, a, p0, n, undefined); })();
        const b1 = layer(101), p1 = repackWeights(kernels.matmul, b1);
        const before = mem.residentCopies;
        matmulFast(kernels.matmul, a, p1, n, undefined);
        const whileAlive = mem.residentCopies - before;
        for (let i = 0; i < 20 && mem.residentCopies - before === whileAlive; i++) {
          globalThis.gc();
          await new Promise((r) => setTimeout(r, 10));
          matmulFast(kernels.matmul, a, p1, n, undefined);
        }
        const kept = mem.residentCopies - before;
        const got = matmulFast(kernels.matmul, a, p1, n, undefined);
        const want = matmulDecoded(decodeOperand('t', a), decodeOperand('t', b1));
        const sameBits = got.every((v, i) => Object.is(v, want[i]));
        console.log(JSON.stringify({ whileAlive, kept, after: mem.residentCopies - before, sameBits }));`;
      const stdout = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
      const r = JSON.parse(stdout) as { whileAlive: number; kept: number; after: number; sameBits: boolean };
      expect(r.whileAlive).toBe(0);  // the budget holds layer 0 only
      expect(r.kept).toBe(1);        // once layer 0 was collected, layer 1 moved in
      expect(r.after).toBe(1);       // and stays
      expect(r.sameBits).toBe(true);
    }, 60_000);

    it('FP4KIT_WASM_RESIDENT_MB sets the budget of the Node loader, and is checked', () => {
      const saved = process.env.FP4KIT_WASM_RESIDENT_MB;
      try {
        process.env.FP4KIT_WASM_RESIDENT_MB = 'lots';
        expect(() => loadWasmKernels()).toThrow(/FP4KIT_WASM_RESIDENT_MB must be a number of MiB ≥ 0, got lots/);
        process.env.FP4KIT_WASM_RESIDENT_MB = '-1';
        expect(() => loadWasmKernels()).toThrow(RangeError);
        process.env.FP4KIT_WASM_RESIDENT_MB = '0.5';
        expect(loadWasmKernels().name).toBe('wasm');
      } finally {
        if (saved === undefined) delete process.env.FP4KIT_WASM_RESIDENT_MB;
        else process.env.FP4KIT_WASM_RESIDENT_MB = saved;
      }
    });

    it('released weights free their region or leave it dead; the others stay resident (a plain tensor\'s repack-and-release per call included)', () => {
      const { mem, kernels } = freshModule();
      const bs = layers(3);
      const packed = bs.map((b) => repackWeights(kernels.matmul!, b as never));
      bs.forEach((_, i) => matmulFast(kernels.matmul!, a, packed[i], n, undefined));
      const before = mem.residentCopies;
      kernels.matmul!.releaseFp4Weights(packed[1]);  // in the middle: dead until a flush
      expect(() => matmulFast(kernels.matmul!, a, packed[1], n, undefined)).toThrow(/released/);
      for (const i of [0, 2, 0, 2]) expect(firstBitDifference(matmulFast(kernels.matmul!, a, packed[i], n, undefined), want(bs[i] as never))).toBe(-1);
      expect(mem.residentCopies - before).toBe(0);
      // matmul on a plain quantized tensor repacks, multiplies and releases on every call: its
      // region is the top one and is freed each time, so memory stays and the layers stay resident.
      const plain = layers(5)[4];
      const once = () => {
        const p = repackWeights(kernels.matmul!, plain as never);
        expect(firstBitDifference(matmulFast(kernels.matmul!, a, p, n, undefined), want(plain as never))).toBe(-1);
        kernels.matmul!.releaseFp4Weights(p);
      };
      once();
      const settled = mem.byteLength;
      const copies = mem.residentCopies;
      for (let i = 0; i < 10; i++) {
        once();
        for (const j of [0, 2]) matmulFast(kernels.matmul!, a, packed[j], n, undefined);
      }
      expect(mem.byteLength).toBe(settled);
      expect(mem.residentCopies - copies).toBe(10);  // the plain tensor's, once per call; none for the layers
    });
  });
});
