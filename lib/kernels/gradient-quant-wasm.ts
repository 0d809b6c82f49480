// The gradient quantizers on the WebAssembly module (assembly/gradient-quant.ts): the per-group
// arrays stay in memory while row chunks go through phase 1 (ranges) and, after phase 2 (keep
// decisions), phase 3 (codes); a tensor that fits one chunk is copied in once. Arguments are
// checked by gradient-quant-glue.ts, as for the js backend.

import type { GradientDequantArgs, GradientQuantArgs, Kernels } from './contract.js';
import { guardGradientDequantArgs, guardGradientQuantArgs } from './gradient-quant-glue.js';
import { gradientElementRows } from './ref/gradient-quant.js';
import { rowsPerChunk, type WasmMemory } from './wasm-memory.js';

export function gradientQuantWasm(mem: WasmMemory): Pick<Kernels, 'quantizeGradient' | 'dequantizeGradient'> {
  const x = mem.exports;

  /** Gradient quantizer (assembly/gradient-quant.ts): the per-group arrays stay in memory while
   *  row chunks go through phase 1 (ranges) and, after phase 2 (keep decisions), phase 3 (codes);
   *  a tensor that fits one chunk is copied in once. */
  function quantizeGradient(args: GradientQuantArgs): number {
    const a = guardGradientQuantArgs(args);
    const { cols, count } = a;
    const rows = gradientElementRows(a.rows, cols);
    mem.reset();
    const lo = mem.alloc(count * 4);
    const hi = mem.alloc(count * 4);
    const scales = mem.alloc(count * 4);
    const zeros = mem.alloc(count * 4);
    const keep = mem.alloc(count * 4);
    const mask = mem.alloc(count);
    const inv = mem.alloc(count * 8);
    const p = mem.alloc(count * 8);
    const clamped = mem.alloc(count);
    const scores = mem.alloc(count * 4);
    const chunkStart = mem.mark();
    const per = rowsPerChunk(cols * 5);
    const single = per >= rows;
    let whole = 0;
    x.gradientRangesInit(lo, hi, count);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      mem.release(chunkStart);
      const src = mem.copyIn(a.src.subarray(r0 * cols, (r0 + n) * cols));
      if (single) whole = src;
      const bad = x.gradientRanges(src, n, cols, a.groups, r0, lo, hi);
      if (bad >= 0) return r0 * cols + bad;
    }
    x.gradientRangesFinish(lo, hi, count);
    x.gradientKeep(lo, hi, count, a.bits, a.prune, a.seed, scales, zeros, mask, keep, inv, p, clamped, scores);
    mem.copyOut(scales, a.scales.subarray(0, count));
    mem.copyOut(zeros, a.zeros.subarray(0, count));
    mem.copyOut(mask, a.mask.subarray(0, count));
    mem.copyOut(keep, a.keepProbability.subarray(0, count));
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      if (!single) mem.release(chunkStart);
      const src = single ? whole : mem.copyIn(a.src.subarray(r0 * cols, (r0 + n) * cols));
      const codes = mem.alloc(n * cols);
      x.gradientCodes(src, n, cols, a.bits, a.groups, a.seed, r0, lo, inv, codes);
      mem.copyOut(codes, a.codes.subarray(r0 * cols, (r0 + n) * cols));
    }
    return -1;
  }

  function dequantizeGradient(args: GradientDequantArgs): void {
    const a = guardGradientDequantArgs(args);
    const { cols, count } = a;
    const rows = gradientElementRows(a.rows, cols);
    mem.reset();
    const scales = mem.copyIn(a.scales.subarray(0, count));
    const zeros = mem.copyIn(a.zeros.subarray(0, count));
    const mask = mem.copyIn(a.mask.subarray(0, count));
    mem.forEachRowChunk(rows, cols * 5, (r0, n) => {
      const codes = mem.copyIn(a.codes.subarray(r0 * cols, (r0 + n) * cols));
      const out = mem.alloc(n * cols * 4);
      x.gradientDequantize(codes, scales, zeros, mask, n, cols, a.groups, r0, out);
      mem.copyOut(out, a.out.subarray(r0 * cols, (r0 + n) * cols));
    });
  }

  return { quantizeGradient, dequantizeGradient };
}
