// The bit-plane products on the WebAssembly module (assembly/bitplane-gemm.ts). Arguments are
// checked by bitplane-gemm-glue.ts, as for the js backend.

import type { BitplaneMatmulArgs, Kernels, PackBitPlanesArgs, PackSignsArgs } from './contract.js';
import { guardBitplaneMatmulArgs, guardPackBitPlanesArgs, guardPackSignsArgs } from './bitplane-gemm-glue.js';
import { planesBytes, signsBytes } from './ref/bitplane-gemm.js';
import { rowsPerChunk, type WasmMemory } from './wasm-memory.js';

export function bitplaneGemmWasm(mem: WasmMemory): Pick<Kernels, 'packSigns' | 'packBitPlanes' | 'bitplaneMatmul'> {
  const x = mem.exports;

  /** Bit-plane products (assembly/bitplane-gemm.ts): packing streams source rows through the
   *  module into one resident output; the product keeps the signs operand resident and streams
   *  runs of code rows with their output rows. */
  function packSigns(args: PackSignsArgs): void {
    const a = guardPackSignsArgs(args);
    const { rows, cols, outRows, length } = a;
    const outBytes = signsBytes(outRows, length, a.ternary);
    mem.reset();
    const out = mem.alloc(outBytes);
    mem.bytes(out, outBytes).fill(0);
    // Empty rows (cols = 0) hold nothing to read, however many there are.
    mem.forEachRowChunk(cols === 0 ? 0 : rows, cols * 4, (r0, n) => {
      const src = mem.copyIn(a.src.subarray(r0 * cols, (r0 + n) * cols));
      x.packSignsRows(src, n, cols, r0, a.transpose ? 1 : 0, a.ternary ? 1 : 0, outRows, length, out);
    });
    mem.copyOut(out, a.out.subarray(0, outBytes));
  }

  function packBitPlanes(args: PackBitPlanesArgs): number {
    const a = guardPackBitPlanesArgs(args);
    const { rows, cols, outRows, length } = a;
    const outBytes = planesBytes(outRows, length, a.bits);
    mem.reset();
    const out = mem.alloc(outBytes);
    mem.bytes(out, outBytes).fill(0);
    const chunkStart = mem.mark();
    const per = rowsPerChunk(cols);
    for (let r0 = 0; cols > 0 && r0 < rows; r0 += per) { // empty rows hold nothing to read
      const n = Math.min(per, rows - r0);
      mem.release(chunkStart);
      const codes = mem.copyIn(a.codes.subarray(r0 * cols, (r0 + n) * cols));
      const bad = x.packBitPlanesRows(codes, n, cols, r0, a.bits, a.transpose ? 1 : 0, length, out);
      if (bad >= 0) return r0 * cols + bad;
    }
    mem.copyOut(out, a.out.subarray(0, outBytes));
    return -1;
  }

  function bitplaneMatmul(args: BitplaneMatmulArgs): void {
    const a = guardBitplaneMatmulArgs(args);
    const { m, n, bits, length, groups } = a;
    const float = a.outFloat !== null;
    mem.reset();
    const signs = mem.copyIn(a.signs.subarray(0, signsBytes(n, length, a.ternary)));
    const mask = a.mask ? mem.copyIn(a.mask.subarray(0, groups)) : 0;
    const scales = a.scales ? mem.copyIn(a.scales.subarray(0, groups)) : 0;
    const zeros = a.zeros ? mem.copyIn(a.zeros.subarray(0, groups)) : 0;
    const sums = mem.alloc(n * 4);
    if (float) x.bitplaneSignSums(signs, n, length, a.ternary ? 1 : 0, sums);
    const scratch = mem.alloc(n * 8);
    const rowBytes = planesBytes(1, length, bits);
    mem.forEachRowChunk(m, rowBytes + n * 4, (r0, rows) => {
      const planes = mem.copyIn(a.planes.subarray(r0 * rowBytes, (r0 + rows) * rowBytes));
      const out = mem.alloc(rows * n * 4);
      x.bitplaneMatmulRows(planes, rows, r0, bits, signs, n, length, a.ternary ? 1 : 0, a.rowsPerGroup, mask, scales, zeros, sums,
        float ? 0 : out, float ? out : 0, scratch);
      const dst = float ? a.outFloat!.subarray(r0 * n, (r0 + rows) * n) : a.outInt!.subarray(r0 * n, (r0 + rows) * n);
      mem.copyOut(out, dst);
    });
  }

  return { packSigns, packBitPlanes, bitplaneMatmul };
}
