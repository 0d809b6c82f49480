// FGMP dequantization on the WebAssembly module (assembly/fgmp-dequantize.ts). Arguments are
// checked as for the js backend (lib/kernels/ref/fgmp-dequantize.ts); rows go through the module's
// memory a chunk at a time, each chunk with its own share of the mask, data and scales.

import { countFp8BlocksBetween } from '../fgmp/select.js';
import type { FgmpDequantizeArgs, Kernels } from './contract.js';
import { guardFgmpDequantize } from './ref/fgmp-dequantize.js';
import type { WasmMemory } from './wasm-memory.js';

export function fgmpDequantizeWasm(mem: WasmMemory): Pick<Kernels, 'dequantizeFgmp'> {
  const x = mem.exports;
  function dequantizeFgmp(args: FgmpDequantizeArgs): void {
    const { args: a, range } = guardFgmpDequantize('dequantizeFgmp', args);
    const { mask, data, scales, cols, tensorScale, fp8Scale, out } = a;
    if (cols === 0) return; // rows of nothing: nothing to write, however many
    const blocksPerRow = Math.ceil(cols / 16);
    let block = range.firstBlock, dataAt = range.dataBegin, scaleAt = range.scaleBegin;
    mem.reset();
    // Per row at most: 16 data bytes and one mask bit per block, its float32 values.
    mem.forEachRowChunk(a.rowEnd - a.rowBegin, blocksPerRow * 17 + cols * 4, (r0, n) => {
      const blocks = n * blocksPerRow;
      const fp8 = countFp8BlocksBetween(mask, block, block + blocks);
      const dataBytes = fp8 * 16 + (blocks - fp8) * 8;
      const scaleBytes = blocks - fp8;
      const m = mem.copyIn(mask.subarray(Math.floor(block / 8), Math.ceil((block + blocks) / 8)));
      const d = mem.copyIn(data.subarray(dataAt, dataAt + dataBytes));
      const s = mem.copyIn(scales.subarray(scaleAt, scaleAt + scaleBytes));
      const o = mem.alloc(n * cols * 4);
      x.dequantizeFgmp(m, block % 8, d, s, n, cols, tensorScale, fp8Scale, o);
      mem.copyOut(o, out.subarray(r0 * cols, (r0 + n) * cols));
      block += blocks;
      dataAt += dataBytes;
      scaleAt += scaleBytes;
    });
  }
  return { dequantizeFgmp };
}
