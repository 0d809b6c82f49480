// The WebAssembly backend: the AssemblyScript kernels (assembly/) compiled with SIMD128 into
// build-wasm/fp4kit.wasm, and with relaxed SIMD too into build-wasm/fp4kit-relaxed.wasm (which one
// loads: lib/kernels/wasm-builds.ts), bit-identical to the pure-TS reference (lib/kernels/ref/index.ts).
// Each call copies its input into the module's memory (lib/kernels/wasm-memory.ts) in row chunks of at
// most SCRATCH_BYTES (wasm-memory.ts), runs the kernel and copies the result out; chunks pass their global
// firstIndex, so stochastic rounding draws the same bits as one call over the whole tensor.
// This file imports nothing from Node at the top level: the browser entry (lib/browser.ts) calls
// instantiateWasmKernels with bytes it fetched, and only loadWasmKernels() asks Node for its file
// system. lib/kernels/wasm-memory.ts, the owner of the module's memory, imports nothing from here.

import { bitsToFloat } from './ref/element-codec.js';
import { widenedRange } from './ref/dtype.js';
import { DtypeId, ElementId, RoundingId, ScaleRuleId, type DtypeIdValue, type ElementIdValue } from '../core/formats.js';
import type { MatmulKernels } from './contract.js';
import { isRepackedFp4Weights, repackFp4Weights, type RepackedFp4Weights } from './matmul-repack.js';
import { isRepackedPlaneWeights, repackPlaneWeights, type RepackedPlaneWeights } from './matmul-planes-repack.js';
import { instantiateWasmModule, rowsPerChunk, type WasmMemory, type WasmOptions } from './wasm-memory.js';
import { ALIGNED_MAX_FALLBACK, ALIGNED_MIN_ROWS, alignedFallbackShare } from './matmul-aligned-plan.js';
import { blockKernels } from './block-kernels.js';
import { guardBytes, guardDims, guardDoubles, guardElementFormat, guardFloats, guardIndex, guardNumber, guardSource } from './kernel-guards.js';
import type { Kernels, Source } from './contract.js';
import { gradientQuantWasm } from './gradient-quant-wasm.js';
import { chooseWasmBuild, relaxedSimdWorks, SIMD128_MISSING, simd128Works, WASM_BUILD_FILES } from './wasm-builds.js';
import { bitplaneGemmWasm } from './bitplane-gemm-wasm.js';
import { fgmpDequantizeWasm } from './fgmp-dequantize-wasm.js';
import { ERROR_BINS, guardErrorSums } from './ref/error-sums.js';

const ELEMENT_BITS: Record<number, number> = {
  [ElementId.e2m1]: 4, [ElementId.e2m3]: 6, [ElementId.e3m2]: 6, [ElementId.e4m3]: 8,
  [ElementId.e5m2]: 8, [ElementId.e8m0]: 8, [ElementId.int8]: 8,
};

function sourceBytes(dtype: DtypeIdValue): number {
  return dtype === DtypeId.f32 ? 4 : 2;
}

/** The Kernels table over one instantiated module. */
export function wasmKernels(mem: WasmMemory): Kernels {
  const x = mem.exports;

  function encodeElements(src: Source, dtype: DtypeIdValue, format: ElementIdValue, rounding: number, seed: number, out: Uint8Array, firstIndex = 0): number {
    src = guardSource('encodeElements', src, dtype, 0);
    guardElementFormat('encodeElements', format);
    guardIndex('encodeElements', 'seed', seed);
    guardIndex('encodeElements', 'firstIndex', firstIndex);
    out = guardBytes('encodeElements', 'out', out, src.length);
    const per = rowsPerChunk(sourceBytes(dtype) + 1);
    const stochastic = rounding === RoundingId.stochastic ? 1 : 0;
    let nans = 0;
    for (let start = 0; start < src.length; start += per) {
      const count = Math.min(per, src.length - start);
      mem.reset();
      const p = mem.copyIn(src.subarray(start, start + count));
      const o = mem.alloc(count);
      nans += x.encodeElements(p, dtype, count, format, stochastic, seed, firstIndex + start, o);
      mem.copyOut(o, out.subarray(start, start + count));
    }
    return nans;
  }

  function decodeElements(codes: Uint8Array, format: ElementIdValue, out: Float32Array): void {
    codes = guardBytes('decodeElements', 'codes', codes, 0);
    guardElementFormat('decodeElements', format);
    out = guardFloats('decodeElements', 'out', out, codes.length);
    const per = rowsPerChunk(5);
    for (let start = 0; start < codes.length; start += per) {
      const count = Math.min(per, codes.length - start);
      mem.reset();
      const p = mem.copyIn(codes.subarray(start, start + count));
      const o = mem.alloc(count * 4);
      x.decodeElements(p, count, format, o);
      mem.copyOut(o, out.subarray(start, start + count));
    }
  }

  function quantizeMx(
    src: Source, dtype: DtypeIdValue, rows: number, cols: number, format: ElementIdValue,
    scaleRule: number, rounding: number, seed: number, data: Uint8Array, scales: Uint8Array, firstIndex = 0,
  ): void {
    guardDims('quantizeMx', rows, cols);
    src = guardSource('quantizeMx', src, dtype, rows * cols);
    guardElementFormat('quantizeMx', format);
    guardIndex('quantizeMx', 'seed', seed);
    guardIndex('quantizeMx', 'firstIndex', firstIndex);
    const rowBytes = Math.ceil(cols / 32) * 4 * ELEMENT_BITS[format];
    const ceil = scaleRule === ScaleRuleId.ceil ? 1 : 0;
    const stochastic = rounding === RoundingId.stochastic ? 1 : 0;
    quantizeChunked('quantizeMx', src, dtype, rows, cols, 32, rowBytes, data, scales,
      (p, n, r0, d, s) => x.quantizeMx(p, dtype, n, cols, format, ceil, stochastic, seed, firstIndex + r0 * cols, d, s));
  }

  /** FGMP candidates (assembly/fgmp.ts) in row chunks; per-column Fisher values go in once. */
  function fgmpCandidates(
    source: Source, dtype: DtypeIdValue, rows: number, cols: number, fisher: Float32Array | null, fisherPerElement: boolean,
    tensorScale: number, fp8Scale: number, clipping: boolean,
    impacts: Float64Array, fp4Codes: Uint8Array, fp4Scales: Uint8Array, fp8Codes: Uint8Array,
  ): void {
    const fn = 'fgmpCandidates';
    guardDims(fn, rows, cols);
    source = guardSource(fn, source, dtype, rows * cols);
    if (fisher !== null) fisher = guardFloats(fn, 'fisher', fisher, fisherPerElement ? rows * cols : cols);
    guardNumber(fn, 'tensorScale', tensorScale);
    guardNumber(fn, 'fp8Scale', fp8Scale);
    const blocksPerRow = Math.ceil(cols / 16);
    const blocks = rows * blocksPerRow;
    impacts = guardDoubles(fn, 'impacts', impacts, blocks);
    fp4Codes = guardBytes(fn, 'fp4Codes', fp4Codes, blocks * 16);
    fp4Scales = guardBytes(fn, 'fp4Scales', fp4Scales, blocks);
    fp8Codes = guardBytes(fn, 'fp8Codes', fp8Codes, blocks * 16);
    const perElement = fisher !== null && fisherPerElement;
    const per = rowsPerChunk(cols * (perElement ? 8 : 4) + blocksPerRow * (8 + 16 + 1 + 16));
    mem.reset();
    const columnFisher = fisher !== null && !perElement ? mem.copyIn(fisher.subarray(0, cols)) : 0;
    const chunkStart = mem.mark();
    // A bf16/f16 chunk as float32 before it goes in, in one array reused chunk to chunk.
    const widened = dtype === DtypeId.f32 ? undefined : new Float32Array(Math.min(rows, per) * cols);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      const b0 = r0 * blocksPerRow;
      const nb = n * blocksPerRow;
      mem.release(chunkStart);
      const px = mem.copyIn(widenedRange(source, dtype, r0 * cols, (r0 + n) * cols, widened));
      const pf = perElement ? mem.copyIn(fisher!.subarray(r0 * cols, (r0 + n) * cols)) : columnFisher;
      const pi = mem.alloc(nb * 8);
      const p4 = mem.alloc(nb * 16);
      const ps = mem.alloc(nb);
      const p8 = mem.alloc(nb * 16);
      x.fgmpCandidates(px, n, cols, pf, perElement ? 1 : 0, tensorScale, fp8Scale, clipping ? 1 : 0, pi, p4, ps, p8);
      mem.copyOut(pi, impacts.subarray(b0, b0 + nb));
      mem.copyOut(p4, fp4Codes.subarray(b0 * 16, (b0 + nb) * 16));
      mem.copyOut(ps, fp4Scales.subarray(b0, b0 + nb));
      mem.copyOut(p8, fp8Codes.subarray(b0 * 16, (b0 + nb) * 16));
    }
  }

  /** Quantize in row chunks: copy source rows in, run `kernel` (source, rows, first row, codes, scales)
   *  into scratch, copy packed rows and scales out. `src` is already guarded. */
  function quantizeChunked(
    fn: string, src: Source, dtype: DtypeIdValue, rows: number, cols: number, block: number, rowBytes: number,
    data: Uint8Array, scales: Uint8Array, kernel: (p: number, n: number, r0: number, d: number, s: number) => void,
  ): void {
    const blocksPerRow = Math.ceil(cols / block);
    data = guardBytes(fn, 'data', data, rows * rowBytes);
    scales = guardBytes(fn, 'scales', scales, rows * blocksPerRow);
    const per = rowsPerChunk(cols * sourceBytes(dtype) + rowBytes + blocksPerRow);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      mem.reset();
      const p = mem.copyIn(src.subarray(r0 * cols, (r0 + n) * cols));
      const d = mem.alloc(n * rowBytes);
      const s = mem.alloc(n * blocksPerRow);
      kernel(p, n, r0, d, s);
      mem.copyOut(d, data.subarray(r0 * rowBytes, (r0 + n) * rowBytes));
      mem.copyOut(s, scales.subarray(r0 * blocksPerRow, (r0 + n) * blocksPerRow));
    }
  }

  /** Dequantize in row chunks: copy packed rows and scales in, run `kernel`, copy the values out. */
  function dequantizeChunked(
    data: Uint8Array, scales: Uint8Array, rows: number, cols: number, block: number, rowBytes: number,
    out: Float32Array, kernel: (d: number, s: number, n: number, o: number) => void,
  ): void {
    const blocksPerRow = Math.ceil(cols / block);
    data = guardBytes('dequantize', 'data', data, rows * rowBytes);
    scales = guardBytes('dequantize', 'scales', scales, rows * blocksPerRow);
    out = guardFloats('dequantize', 'out', out, rows * cols);
    const per = rowsPerChunk(rowBytes + blocksPerRow + cols * 4);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      mem.reset();
      const d = mem.copyIn(data.subarray(r0 * rowBytes, (r0 + n) * rowBytes));
      const s = mem.copyIn(scales.subarray(r0 * blocksPerRow, (r0 + n) * blocksPerRow));
      const o = mem.alloc(n * cols * 4);
      kernel(d, s, n, o);
      mem.copyOut(o, out.subarray(r0 * cols, (r0 + n) * cols));
    }
  }

  function dequantizeMx(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, format: ElementIdValue, out: Float32Array): void {
    guardDims('dequantizeMx', rows, cols);
    guardElementFormat('dequantizeMx', format);
    const rowBytes = Math.ceil(cols / 32) * 4 * ELEMENT_BITS[format];
    dequantizeChunked(data, scales, rows, cols, 32, rowBytes, out, (d, s, n, o) => x.dequantizeMx(d, s, n, cols, format, o));
  }

  function absMax(src: Source, dtype: DtypeIdValue): number {
    src = guardSource('absMax', src, dtype, 0);
    const per = rowsPerChunk(sourceBytes(dtype));
    let amax = 0;
    for (let start = 0; start < src.length; start += per) {
      const count = Math.min(per, src.length - start);
      mem.reset();
      const p = mem.copyIn(src.subarray(start, start + count));
      const bits = x.absMaxBits(p, dtype, count) >>> 0;
      if (bits > 0x7f800000) return NaN;
      if (bits > amax) amax = bits;
    }
    return bitsToFloat(amax);
  }

  function errorSums(src: Source, dtype: DtypeIdValue, decoded: Float32Array, rows: number, cols: number, sums: Float64Array, histogram?: Float64Array): void {
    ({ src, decoded, sums, histogram } = guardErrorSums(src, dtype, decoded, rows, cols, sums, histogram));
    if (rows * cols === 0) return; // nothing to add, however many rows of nothing
    // Whole rows per chunk; the running sums and this call's counts (from zero) stay in the
    // module's memory between chunks.
    mem.reset();
    const s = mem.copyIn(sums.subarray(0, 3));
    const h = histogram === undefined ? 0 : mem.copyIn(new Float64Array(ERROR_BINS));
    mem.forEachRowChunk(rows, cols * (sourceBytes(dtype) + 4), (r0, n) => {
      const p = mem.copyIn(src.subarray(r0 * cols, (r0 + n) * cols));
      const d = mem.copyIn(decoded.subarray(r0 * cols, (r0 + n) * cols));
      const w = dtype === DtypeId.f32 ? 0 : mem.alloc(cols * 4);
      x.errorSums(p, dtype, d, n, cols, w, s, h);
    });
    mem.copyOut(s, sums.subarray(0, 3));
    if (histogram !== undefined) {
      const counts = new Float64Array(ERROR_BINS);
      mem.copyOut(h, counts);
      for (let i = 0; i < ERROR_BINS; i++) histogram[i] += counts[i];
    }
  }

  function quantizeNvfp4(
    src: Source, dtype: DtypeIdValue, rows: number, cols: number, tensorScale: number,
    rounding: number, seed: number, data: Uint8Array, scales: Uint8Array, firstIndex = 0,
  ): void {
    guardDims('quantizeNvfp4', rows, cols);
    src = guardSource('quantizeNvfp4', src, dtype, rows * cols);
    guardNumber('quantizeNvfp4', 'tensorScale', tensorScale);
    guardIndex('quantizeNvfp4', 'seed', seed);
    guardIndex('quantizeNvfp4', 'firstIndex', firstIndex);
    const rowBytes = Math.ceil(cols / 16) * 8;
    const stochastic = rounding === RoundingId.stochastic ? 1 : 0;
    quantizeChunked('quantizeNvfp4', src, dtype, rows, cols, 16, rowBytes, data, scales,
      (p, n, r0, d, s) => x.quantizeNvfp4(p, dtype, n, cols, tensorScale, stochastic, seed, firstIndex + r0 * cols, d, s));
  }

  function dequantizeNvfp4(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, tensorScale: number, out: Float32Array): void {
    guardDims('dequantizeNvfp4', rows, cols);
    guardNumber('dequantizeNvfp4', 'tensorScale', tensorScale);
    const rowBytes = Math.ceil(cols / 16) * 8;
    dequantizeChunked(data, scales, rows, cols, 16, rowBytes, out, (d, s, n, o) => x.dequantizeNvfp4(d, s, n, cols, tensorScale, o));
  }

  const matmul = wasmMatmul(mem);
  return {
    name: 'wasm',
    simd: matmul.matmulSimd, // the build's level: only the matmul differs between the two
    encodeElements,
    decodeElements,
    ...blockKernels({ quantizeMx, dequantizeMx, quantizeNvfp4, dequantizeNvfp4 }),
    absMax,
    errorSums,
    ...fgmpDequantizeWasm(mem),
    fgmpCandidates,
    ...gradientQuantWasm(mem),
    ...bitplaneGemmWasm(mem),
    matmul,
  };
}

/** Repacked weights given to releaseFp4Weights (mirrors the addon, which frees them). */
const released = new WeakSet<object>();

type WasmWeights = RepackedFp4Weights | RepackedPlaneWeights;

function checkRepacked(packed: unknown): WasmWeights {
  if (!isRepackedFp4Weights(packed) && !isRepackedPlaneWeights(packed)) throw new TypeError('matmulFp4Int8: weights must come from repackFp4Weights or repackPlaneWeights');
  if (released.has(packed)) throw new TypeError('matmulFp4Int8: these weights were released');
  return packed;
}


/** The FP4×INT8 and byte-plane matmuls (assembly/matmul.ts, assembly/matmul-planes.ts) over weights
 *  repacked in TypeScript. Weights stay resident in the module's memory between calls (FGMP FP8
 *  lanes decoded to integers once), up to the memory's resident budget (WasmOptions.residentBytes):
 *  a model's layers, called in turn, copy only their activations; weights past the budget are
 *  copied in for each call. */
export function wasmMatmul(mem: WasmMemory): MatmulKernels {
  const x = mem.exports;
  const relaxed = x.relaxedSimd() === 1;
  // FGMP weights whose planes joined them (repackPlaneWeights with `into`).
  const planesOf = new WeakMap<RepackedFp4Weights, RepackedPlaneWeights>();
  type Pointers = { nibbles: number; scales: number; fp8Lanes: number; fp8Values: number; h: number; low: number; lowQuads: number };
  const residentPointers = new WeakMap<WasmWeights, Pointers>();
  /** The weights' regions in the module: kept ones, else copied in now (after mem.reset(): as
   *  resident regions if the budget allows, else as this call's scratch). */
  function weightPointers(w: WasmWeights): Pointers {
    const kept = residentPointers.get(w);
    if (kept && mem.isResident(w)) return kept;
    const p: Pointers = { nibbles: 0, scales: mem.copyIn(w.scales), fp8Lanes: 0, fp8Values: 0, h: 0, low: 0, lowQuads: 0 };
    if ('h' in w) {
      p.h = mem.copyIn(w.h);
      if (w.low && w.lowQuads) {
        p.low = mem.copyIn(w.low);
        p.lowQuads = mem.copyIn(w.lowQuads);
      }
    } else {
      p.nibbles = mem.copyIn(w.nibbles);
      if (w.fp8Lanes && w.fp8Codes) {
        p.fp8Lanes = mem.copyIn(w.fp8Lanes);
        p.fp8Values = mem.alloc(w.fp8Codes.length * 4);
        // The codes are the decoder's input only: above the values, and freed before they are kept.
        const mark = mem.mark();
        const codes = mem.copyIn(w.fp8Codes);
        x.decodeFp8Lanes(p.fp8Lanes, codes, w.tiles, w.units, w.unit, p.fp8Values);
        mem.release(mark);
      }
    }
    const moved = (from: number, to: number) => {
      for (const key of Object.keys(p) as Array<keyof Pointers>) if (p[key] !== 0) p[key] += to - from;
    };
    if (mem.keepResident(w, moved)) residentPointers.set(w, p);
    return p;
  }
  function matmulFp4Int8(packed: unknown, aCodes: Uint8Array, aScales: Float32Array, m: number, bias: Float32Array | null, out: Float32Array): void {
    let w = checkRepacked(packed);
    guardDims('matmulFp4Int8', m, w.k);
    const paddedK = Math.ceil(w.k / 32) * 32;
    const aBlocks = paddedK / 32;
    aCodes = guardBytes('matmulFp4Int8', 'activation codes', aCodes, m * paddedK);
    aScales = guardFloats('matmulFp4Int8', 'activation scales', aScales, m * aBlocks);
    out = guardFloats('matmulFp4Int8', 'out', out, m * w.n);
    if (bias !== null) bias = guardFloats('matmulFp4Int8', 'bias', bias, w.n);
    // FGMP weights with planes run on them at every row count. Measured 2026-12-04 (npm run
    // bench:wasm-layers, weights resident), one row, ms per product, planes against the FP4 tiles
    // with their FP8 lanes as int32: 4 layers of 2048² 0.62–0.95 vs 1.12, 2 layers of 4096² 2.6–3.4
    // vs 4.4–4.5; the planes also take half the module memory (~40 MB per 4096² weight against
    // ~80) and copy in 5× faster when they do not fit the resident budget.
    const planes = 'nibbles' in w ? planesOf.get(w) : undefined;
    if (planes) w = planes;
    mem.reset();
    const p = weightPointers(w);
    const b = bias ? mem.copyIn(bias.subarray(0, w.n)) : 0;
    const kernel = 'h' in w
      ? (a: number, s: number, rows: number, o: number, v = w as RepackedPlaneWeights) =>
          x.matmulPlanesInt8(p.h, p.low, p.lowQuads, v.lowShift, p.scales, v.n, v.units, v.unit, v.kQuads, 2 ** -(v.shift + 6), a, s, rows, paddedK, b, o, 0, v.tiles)
      : (a: number, s: number, rows: number, o: number, v = w as RepackedFp4Weights) => {
          // The relaxed build's dot takes the weights biased by 12: it needs each row-unit's Σ a.
          const sums = relaxed ? mem.alloc(rows * v.units * 4) : 0;
          if (relaxed) x.activationUnitSums(a, rows, paddedK, v.units, v.unit, sums);
          x.matmulFp4Int8(p.nibbles, p.scales, p.fp8Lanes, p.fp8Values, v.n, v.units, v.unit, v.kGroups, a, s, sums, rows, paddedK, b, o, 0, v.tiles);
        };
    mem.forEachRowChunk(m, paddedK + aBlocks * 4 + w.n * 4 + (relaxed ? paddedK / 4 : 0), (r0, rows) => {
      const a = mem.copyIn(aCodes.subarray(r0 * paddedK, (r0 + rows) * paddedK));
      const s = mem.copyIn(aScales.subarray(r0 * aBlocks, (r0 + rows) * aBlocks));
      const o = mem.alloc(rows * w.n * 4);
      kernel(a, s, rows, o);
      mem.copyOut(o, out.subarray(r0 * w.n, (r0 + rows) * w.n));
    });
  }
  /** The reference order over decoded operands: on the aligned int16 kernel (assembly/matmul-aligned.ts)
   *  when the first chunk of a and all of b say few lanes need the float64 sum
   *  (matmul-aligned-plan.ts), else on the float64 loop (assembly/matmul-decoded.ts) — the same bits.
   *  b, its multipliers and its int16 form go in once per call, a's rows stream through scratch. */
  function matmulDecoded(aValues: Float32Array, aScales: Float32Array, m: number, aBlock: number, bValues: Float32Array, bScales: Float32Array, n: number,
    bBlock: number, k: number, bias: Float32Array | null, out: Float32Array): 'aligned' | 'float64' {
    const fn = 'matmulDecoded';
    guardDims(fn, m, k);
    guardDims(fn, n, k);
    if (![16, 32].includes(aBlock) || ![16, 32].includes(bBlock)) throw new RangeError(`${fn}: block sizes must be 16 or 32`);
    const aBlocks = Math.ceil(k / aBlock), bBlocks = Math.ceil(k / bBlock);
    const aPadded = aBlocks * aBlock, bPadded = bBlocks * bBlock;
    const unit = Math.min(aBlock, bBlock), units = Math.ceil(k / unit), K = units * unit;
    aValues = guardFloats(fn, 'a values', aValues, m * aPadded);
    aScales = guardFloats(fn, 'a scales', aScales, m * aBlocks);
    bValues = guardFloats(fn, 'b values', bValues, n * bPadded);
    bScales = guardFloats(fn, 'b scales', bScales, n * bBlocks);
    out = guardFloats(fn, 'out', out, m * n);
    if (bias !== null) bias = guardFloats(fn, 'bias', bias, n);
    mem.reset();
    const b = mem.copyIn(bValues.subarray(0, n * bPadded));
    const bs = mem.copyIn(bScales.subarray(0, n * bBlocks));
    const biasPtr = bias ? mem.copyIn(bias.subarray(0, n)) : 0;
    // Scratch for either kernel's panel: the float64 loop's [k][4] values and [unit][4] multipliers,
    // the aligned one's [unit][pair][8] int32 pairs, [unit][8] exponents, spans, multipliers and 32 bytes.
    const panel = mem.alloc(Math.max((units * unit + units) * 16, K * 16 + units * 96 + 32));
    let aligned = m >= ALIGNED_MIN_ROWS, decided = !aligned;
    let bInts = 0, bExps = 0, bSpans = 0, bSpanCopy = new Int32Array(0);
    if (aligned) {
      bInts = mem.alloc(n * K * 2);
      bExps = mem.alloc(n * units * 4);
      bSpans = mem.alloc(n * units * 4);
      x.alignRows(b, n, bPadded, units, unit, bInts, bExps, bSpans);
      bSpanCopy = mem.int32s(bSpans, n * units).slice();
    }
    const rowBytes = (aPadded + aBlocks + n) * 4 + (aligned ? K * 2 + units * 8 : 0);
    mem.forEachRowChunk(m, rowBytes, (r0, rows) => {
      const a = mem.copyIn(aValues.subarray(r0 * aPadded, (r0 + rows) * aPadded));
      const as = mem.copyIn(aScales.subarray(r0 * aBlocks, (r0 + rows) * aBlocks));
      const o = mem.alloc(rows * n * 4);
      if (aligned) {
        const aInts = mem.alloc(rows * K * 2), aExps = mem.alloc(rows * units * 4), aSpans = mem.alloc(rows * units * 4);
        x.alignRows(a, rows, aPadded, units, unit, aInts, aExps, aSpans);
        if (!decided) {
          aligned = alignedFallbackShare(mem.int32s(aSpans, rows * units), bSpanCopy, unit) <= ALIGNED_MAX_FALLBACK;
          decided = true;
        }
        if (aligned) {
          x.matmulAligned(a, as, aInts, aExps, aSpans, rows, aPadded, aBlock, aBlocks, b, bs, bInts, bExps, bSpans, n, bPadded, bBlock, bBlocks, units, unit, biasPtr, o, panel);
        }
      }
      if (!aligned) x.matmulDecoded(a, as, rows, aPadded, aBlock, aBlocks, b, bs, n, bPadded, bBlock, bBlocks, units, unit, biasPtr, o, panel);
      mem.copyOut(o, out.subarray(r0 * n, (r0 + rows) * n));
    });
    return aligned ? 'aligned' : 'float64';
  }
  return {
    matmulSimd: relaxed ? 'relaxed-simd' : 'simd128',
    matmulDecoded,
    repackFp4Weights,
    repackPlaneWeights(codes: Uint8Array, valueTable: Int32Array, shift: number, blockScales: Float32Array, n: number, k: number, blockSize?: number, into?: unknown) {
      if (into === undefined || into === null) return repackPlaneWeights(codes, valueTable, shift, blockScales, n, k, blockSize);
      const fp4 = checkRepacked(into);
      if (!('nibbles' in fp4) || planesOf.has(fp4)) throw new TypeError('repackPlaneWeights: `into` must be live FP4 weights without planes');
      if (fp4.n !== n || fp4.k !== k) throw new RangeError('repackPlaneWeights: `into` has another shape');
      planesOf.set(fp4, repackPlaneWeights(codes, valueTable, shift, blockScales, n, k, blockSize));
      return into;
    },
    releaseFp4Weights(packed: unknown) {
      const w = checkRepacked(packed);
      released.add(w);
      const planes = 'nibbles' in w ? planesOf.get(w) : undefined;
      if (planes) released.add(planes);
      if (planes) mem.releaseResident(planes);
      mem.releaseResident(w);
    },
    matmulFp4Int8,
  };
}

/** The wasm backend's kernels over a module given as bytes (the browser entry's loader too). The
 *  relaxed build is refused where the engine does not compute relaxed SIMD as specified
 *  (lib/kernels/wasm-builds.ts): there it would instantiate and give wrong products. */
export function instantiateWasmKernels(bytes: BufferSource, options?: WasmOptions): Kernels {
  const mem = instantiateWasmModule(bytes, options);
  if (mem.exports.relaxedSimd() === 1 && !relaxedSimdWorks()) {
    throw new Error(`the module is fp4kit's relaxed-SIMD build (${WASM_BUILD_FILES.relaxed}), and this engine does not run relaxed SIMD as specified: load ${WASM_BUILD_FILES.simd128}`);
  }
  return wasmKernels(mem);
}

type NodeFs = typeof import('node:fs');

/** Node: the kernels over build-wasm/fp4kit-relaxed.wasm where this Node runs relaxed SIMD as
 *  specified (Node 22 on, by its V8; Node 20 does not), else build-wasm/fp4kit.wasm (FP4KIT_WASM_SIMD=relaxed|simd128|auto
 *  chooses), found from lib/kernels/ or dist/lib/kernels/. */
export function loadWasmKernels(): Kernels {
  const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as NodeFs | undefined;
  if (!fs) throw new Error('loadWasmKernels needs Node ≥ 20.16; in a browser call initWasm() from fp4kit/browser');
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
  const file = WASM_BUILD_FILES[chooseWasmBuild(env.FP4KIT_WASM_SIMD || undefined, 'FP4KIT_WASM_SIMD')];
  if (!simd128Works()) throw new Error(`loadWasmKernels: ${SIMD128_MISSING}; use the native or js backend`);
  const candidates = [new URL(`../../build-wasm/${file}`, import.meta.url), new URL(`../../../build-wasm/${file}`, import.meta.url)];
  const found = candidates.find((url) => fs.existsSync(url));
  if (!found) {
    throw new Error(`the WebAssembly module is not built: ${candidates.map((u) => u.pathname).join(' or ')} is missing (run npm run build:wasm)`);
  }
  // FP4KIT_WASM_RESIDENT_MB: the resident budget (WasmOptions.residentBytes) in MiB.
  const mib = env.FP4KIT_WASM_RESIDENT_MB === undefined ? undefined : Number(env.FP4KIT_WASM_RESIDENT_MB);
  if (mib !== undefined && !(Number.isFinite(mib) && mib >= 0)) throw new RangeError(`FP4KIT_WASM_RESIDENT_MB must be a number of MiB ≥ 0, got ${env.FP4KIT_WASM_RESIDENT_MB}`);
  return instantiateWasmKernels(fs.readFileSync(found), mib === undefined ? undefined : { residentBytes: mib * 2 ** 20 });
}
