// The one owner of the WebAssembly module's memory (assembly/index.ts). The module never
// allocates: above its heapBase() lie first the resident regions (matmul weights kept between
// calls, up to a byte budget: see keepResident), then scratch that this file hands out as
// regions for one kernel call at a time (reset() at the start of each call), growing the memory
// as needed.
// Typed-array views of the memory go stale when it grows, so every view is made afresh here,
// right where it is used. Nothing here touches Node's file system: the browser entry
// (lib/browser.ts) instantiates from bytes it fetched, the Node loader (lib/kernels/wasm.ts)
// from the file it read.

import { bufferOf, byteLengthOf, byteOffsetOf } from '../core/typed-arrays.js';

/** The module's exports (pointers are byte offsets into `memory`; bool arguments are 0/1). */
export interface WasmExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  encodeElements(src: number, dtype: number, count: number, format: number, stochastic: number, seed: number, firstIndex: number, out: number): number;
  decodeElements(codes: number, count: number, format: number, out: number): void;
  quantizeMx(src: number, dtype: number, rows: number, cols: number, format: number, ceilRule: number, stochastic: number, seed: number, firstIndex: number, data: number, scales: number): void;
  dequantizeMx(data: number, scales: number, rows: number, cols: number, format: number, out: number): void;
  quantizeNvfp4(src: number, dtype: number, rows: number, cols: number, tensorScale: number, stochastic: number, seed: number, firstIndex: number, data: number, scales: number): void;
  dequantizeNvfp4(data: number, scales: number, rows: number, cols: number, tensorScale: number, out: number): void;
  absMaxBits(src: number, dtype: number, count: number): number;
  errorSums(src: number, dtype: number, decoded: number, rows: number, cols: number, widened: number, sums: number, histogram: number): void;
  dequantizeFgmp(mask: number, maskBit: number, data: number, scales: number, rows: number, cols: number, tensorScale: number, fp8Scale: number, out: number): void;
  fgmpCandidates(
    x: number, rows: number, cols: number, fisher: number, fisherPerElement: number, tensorScale: number, fp8Scale: number, clipping: number,
    impacts: number, fp4Codes: number, fp4Scales: number, fp8Codes: number,
  ): void;
  gradientRangesInit(lo: number, hi: number, count: number): void;
  gradientRanges(src: number, rows: number, cols: number, groups: number, firstRow: number, lo: number, hi: number): number;
  gradientRangesFinish(lo: number, hi: number, count: number): void;
  gradientKeep(
    lo: number, hi: number, count: number, bits: number, prune: number, seed: number,
    scales: number, zeros: number, mask: number, keep: number, inv: number, p: number, clamped: number, scores: number,
  ): void;
  gradientCodes(src: number, rows: number, cols: number, bits: number, groups: number, seed: number, firstRow: number, lo: number, inv: number, codes: number): void;
  gradientDequantize(codes: number, scales: number, zeros: number, mask: number, rows: number, cols: number, groups: number, firstRow: number, out: number): void;
  packSignsRows(src: number, rows: number, cols: number, firstRow: number, transpose: number, ternary: number, outRows: number, length: number, out: number): void;
  packBitPlanesRows(codes: number, rows: number, cols: number, firstRow: number, bits: number, transpose: number, length: number, out: number): number;
  bitplaneSignSums(signs: number, n: number, length: number, ternary: number, sums: number): void;
  bitplaneMatmulRows(
    planes: number, rows: number, firstRow: number, bits: number, signs: number, n: number, length: number, ternary: number,
    rowsPerGroup: number, mask: number, scales: number, zeros: number, sums: number, outInt: number, outFloat: number, scratch: number,
  ): void;
  decodeFp8Lanes(fp8Lanes: number, fp8Codes: number, tiles: number, units: number, unit: number, values: number): void;
  matmulFp4Int8(
    nibbles: number, scales: number, fp8Lanes: number, fp8Values: number, n: number, units: number, unit: number, kGroups: number,
    aCodes: number, aScales: number, aSums: number, m: number, paddedK: number, bias: number, out: number, tileBegin: number, tileEnd: number,
  ): void;
  /** The relaxed build's correction for matmulFp4Int8: Σ of each row-unit's activation codes. */
  activationUnitSums(aCodes: number, m: number, paddedK: number, units: number, unit: number, sums: number): void;
  /** 1 in fp4kit-relaxed.wasm (lib/kernels/wasm-builds.ts), 0 in fp4kit.wasm. */
  relaxedSimd(): number;
  matmulPlanesInt8(
    h: number, low: number, lowQuads: number, lowShift: number, scales: number, n: number, units: number, unit: number, kQuads: number, unitScale: number,
    aCodes: number, aScales: number, m: number, paddedK: number, bias: number, out: number, tileBegin: number, tileEnd: number,
  ): void;
  matmulDecoded(
    a: number, aScales: number, m: number, aPadded: number, aBlock: number, aBlocksPerRow: number,
    b: number, bScales: number, n: number, bPadded: number, bBlock: number, bBlocksPerRow: number,
    units: number, unit: number, bias: number, out: number, panel: number,
  ): void;
  alignRows(values: number, rows: number, padded: number, units: number, unit: number, ints: number, exps: number, spans: number): void;
  matmulAligned(
    a: number, aScales: number, aInts: number, aExps: number, aSpans: number, m: number, aPadded: number, aBlock: number, aBlocksPerRow: number,
    b: number, bScales: number, bInts: number, bExps: number, bSpans: number, n: number, bPadded: number, bBlock: number, bBlocksPerRow: number,
    units: number, unit: number, bias: number, out: number, panel: number,
  ): void;
}

const PAGE = 65536;
const WASM32_MAX_BYTES = 65536 * PAGE;

/** Upper bound on the scratch one chunk of a streamed kernel call uses (a single row may exceed it). */
export const SCRATCH_BYTES = 1 << 20;

/** Rows per chunk when one row takes `rowBytes` of scratch. */
export function rowsPerChunk(rowBytes: number): number {
  return Math.max(1, Math.floor(SCRATCH_BYTES / Math.max(1, rowBytes)));
}
const ALIGN = 16; // v128 loads and stores stay aligned

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** Default byte budget of the resident regions (WasmOptions.residentBytes). */
export const DEFAULT_RESIDENT_BYTES = 256 * 2 ** 20;

export interface WasmOptions {
  /** Bytes of module memory that matmul weights may keep between calls (default 256 MiB). A
   *  model whose weights fit runs every layer on weights already in the module; past the budget,
   *  the weights that came first stay and the others are copied in for each call (the
   *  memory of a WebAssembly module never shrinks, so this is memory held for good). */
  residentBytes?: number;
}

/** One owner's resident bytes [start, end); `live` false once released, collected or dropped. */
interface ResidentRegion {
  start: number;
  end: number;
  live: boolean;
}

/** The instantiated module and a bump allocator over its memory above heapBase(). */
export class WasmMemory {
  readonly exports: WasmExports;
  private readonly heapBase: number;
  private readonly residentBudget: number;
  /** Start of scratch: above heapBase and the resident regions (see keepResident). */
  private base: number;
  private top: number;
  /** The resident regions in address order (a stack: the top one ends at `base`), and each
   *  owner's, weakly (a collected owner's region turns dead, as a released one does). */
  private stack: ResidentRegion[] = [];
  private regions = new WeakMap<object, ResidentRegion>();
  /** Bytes of dead regions under live ones (a bump allocator frees from the top only). */
  private deadBytes = 0;
  private readonly collected = typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<ResidentRegion>((region) => this.retire(region))
    : null;
  /** Regions kept resident since the module started (for tests: a kept owner adds none). */
  residentCopies = 0;

  constructor(exports: WasmExports, options: WasmOptions = {}) {
    this.exports = exports;
    this.heapBase = alignUp(exports.heapBase() >>> 0);
    this.residentBudget = options.residentBytes ?? DEFAULT_RESIDENT_BYTES;
    this.base = this.heapBase;
    this.top = this.base;
  }

  /** Free every scratch region: the next kernel call starts with empty scratch. */
  reset(): void {
    this.top = this.base;
  }

  /** Whether `owner`'s region is resident (kept by keepResident, not released since). */
  isResident(owner: object): boolean {
    return this.regions.get(owner)?.live === true;
  }

  /** `owner` is done with its region (e.g. its weights were released): the region is freed if it
   *  is the top one (with any dead ones under it), else counted dead until the next flush. */
  releaseResident(owner: object): void {
    const region = this.regions.get(owner);
    if (region === undefined) return;
    this.regions.delete(owner);
    this.retire(region);
  }

  private retire(region: ResidentRegion): void {
    if (!region.live) return;
    region.live = false;
    this.collected?.unregister(region);
    this.deadBytes += region.end - region.start;
    while (this.stack.length > 0 && !this.stack[this.stack.length - 1].live) {
      const top = this.stack.pop()!;
      this.deadBytes -= top.end - top.start;
      this.base = top.start;
    }
    this.top = this.base;
  }

  /** Drop every resident region (their owners copy theirs in again on next use). */
  private dropResident(): void {
    for (const region of this.stack) {
      region.live = false;
      this.collected?.unregister(region);
    }
    this.stack = [];
    this.regions = new WeakMap<object, ResidentRegion>();
    this.deadBytes = 0;
    this.base = this.heapBase;
    this.top = this.base;
  }

  /**
   * After reset() and allocations for `owner` (made since then, nothing else): keep them as its
   * resident region, so later resets stop above it, if the resident regions stay within the
   * budget — else they stay scratch for this call only. When the budget is full but dead regions
   * (released or collected owners) lie under live ones, every resident region is dropped and
   * `owner`'s moved to the start (the others copy theirs in on next use): `move(from, to)` is
   * called then (pointers shift by to − from). Returns whether the region is kept.
   */
  keepResident(owner: object, move: (from: number, to: number) => void): boolean {
    const bytes = this.top - this.base;
    if (this.top - this.heapBase > this.residentBudget) {
      if (this.deadBytes === 0 || bytes > this.residentBudget) return false;
      const from = this.base;
      this.dropResident();
      this.alloc(bytes);
      new Uint8Array(this.exports.memory.buffer).copyWithin(this.heapBase, from, from + bytes);
      move(from, this.heapBase);
    }
    const region: ResidentRegion = { start: this.base, end: this.top, live: true };
    this.stack.push(region);
    this.regions.set(owner, region);
    // The region is its own unregister token: once it is dead (released, dropped) the registry
    // lets go of it, else an owner kept again after every drop would pile up registrations.
    this.collected?.register(owner, region, region);
    this.residentCopies++;
    this.base = this.top;
    return true;
  }

  /** The current end of the allocated regions, for release(). */
  mark(): number {
    return this.top;
  }

  /**
   * Streams `rows` rows through scratch in chunks of rowsPerChunk(rowBytes): before each
   * visit(r0, n) every region allocated since the call began is freed again, so what was
   * allocated before it (resident operands, outputs) stays.
   */
  forEachRowChunk(rows: number, rowBytes: number, visit: (r0: number, n: number) => void): void {
    const start = this.mark();
    const per = rowsPerChunk(rowBytes);
    for (let r0 = 0; r0 < rows; r0 += per) {
      this.release(start);
      visit(r0, Math.min(per, rows - r0));
    }
  }

  /** Free the regions allocated after `mark`. */
  release(mark: number): void {
    this.top = mark;
  }

  /** A 16-byte-aligned region of `bytes` bytes; grows the memory when it does not fit. */
  alloc(bytes: number): number {
    const ptr = this.top;
    const end = alignUp(ptr + bytes);
    const memory = this.exports.memory;
    const have = memory.buffer.byteLength;
    if (end > have) {
      // wasm32 addresses 4 GiB at most, and an engine may grant less: either way the error says
      // whose memory ran out (V8's own names neither fp4kit nor the call). Memory never shrinks.
      const outOfMemory = (why: string) => new RangeError(`fp4kit (wasm backend): out of memory: ${end} bytes of WebAssembly memory needed, ${have} held (${why})`);
      if (end > WASM32_MAX_BYTES) throw outOfMemory('beyond the 4 GiB a wasm32 memory can address');
      try {
        memory.grow(Math.ceil((end - have) / PAGE));
      } catch (err) {
        throw Object.assign(outOfMemory(`the engine refused to grow it: ${err instanceof Error ? err.message : String(err)}`), { cause: err });
      }
    }
    this.top = end;
    return ptr;
  }

  /** A fresh byte view of a region (valid until the memory next grows). */
  bytes(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.exports.memory.buffer, ptr, length);
  }

  /** A fresh int32 view of a region of `length` int32 (valid until the memory next grows). */
  int32s(ptr: number, length: number): Int32Array {
    return new Int32Array(this.exports.memory.buffer, ptr, length);
  }

  /** Copy a typed array into a new region; returns its pointer. Sizes come from the intrinsic
   *  getters (lib/core/typed-arrays.ts), not from properties the array's owner could redefine. */
  copyIn(src: ArrayBufferView): number {
    const bytes = byteLengthOf(src);
    const ptr = this.alloc(bytes);
    if (bytes > 0) this.bytes(ptr, bytes).set(new Uint8Array(bufferOf(src), byteOffsetOf(src), bytes));
    return ptr;
  }

  /** Copy a region out into a typed array of the region's size. */
  copyOut(ptr: number, dst: ArrayBufferView): void {
    const bytes = byteLengthOf(dst);
    if (bytes > 0) new Uint8Array(bufferOf(dst), byteOffsetOf(dst), bytes).set(this.bytes(ptr, bytes));
  }

  /** Bytes of WebAssembly memory in use (it never shrinks). */
  get byteLength(): number {
    return this.exports.memory.buffer.byteLength;
  }
}

function abort(): never {
  throw new Error('fp4kit wasm: abort');
}

/** Compile and instantiate the module synchronously (Node; browsers allow this off the main thread only). */
export function instantiateWasmModule(bytes: BufferSource, options?: WasmOptions): WasmMemory {
  const module = new WebAssembly.Module(bytes);
  const instance = new WebAssembly.Instance(module, { env: { abort } });
  return new WasmMemory(instance.exports as unknown as WasmExports, options);
}

