// An FGMP tensor's block stream (lib/fgmp/stream.ts: blocks of 16 in row-major order, the mask's
// bit b set when block b is FP8) decoded to float32, a range of rows at a time: the readable
// reference of native/fgmp_dequantize.cc and assembly/fgmp-dequantize.ts.
//
// Every value is one float32 multiply, as the formats define them:
// - FP8 block: f32(E4M3[code] · fp8Scale);
// - FP4 block: f32(E2M1[nibble] · f32(tensorScale · E4M3[scale code])) (NVFP4's dequantization).
// A row's last block may run past `cols`: those elements are padding and are not written.
// NaN codes (E4M3 0x7f/0xff, which quantization never writes) decode to NaN with no specified payload.

import { countFp8Blocks, isFp8Block } from '../../fgmp/select.js';
import { ELEMENT_FORMATS } from '../../core/formats.js';
import type { FgmpDequantizeArgs } from '../contract.js';
import { guardBytes, guardFloats, guardIndex, guardNumber } from '../kernel-guards.js';
import { decodeTable } from './element-codec.js';

const BLOCK = 16;
const E2M1_VALUES = decodeTable(ELEMENT_FORMATS.e2m1);
const E4M3_VALUES = decodeTable(ELEMENT_FORMATS.e4m3);

/** Where rows [rowBegin, rowEnd) of the stream are: their first block, and the data bytes and
 *  scale bytes before them and up to their end. */
export interface FgmpRowRange {
  firstBlock: number;
  blocks: number;
  dataBegin: number;
  dataEnd: number;
  scaleBegin: number;
  scaleEnd: number;
}

/** The arguments read once and checked (every backend's first step): the stream must hold every
 *  block up to row rowEnd. Returns the arguments as plain views and the rows' place in the stream. */
export function guardFgmpDequantize(fn: string, a: FgmpDequantizeArgs): { args: FgmpDequantizeArgs; range: FgmpRowRange } {
  if (a === null || typeof a !== 'object') throw new TypeError(`${fn}: arguments must be an object { mask, data, scales, cols, rowBegin, rowEnd, tensorScale, fp8Scale, out }`);
  const x = { ...a };
  for (const name of ['cols', 'rowBegin', 'rowEnd'] as const) guardIndex(fn, name, x[name]);
  if (x.rowBegin > x.rowEnd) throw new RangeError(`${fn}: rowBegin (${x.rowBegin}) is past rowEnd (${x.rowEnd})`);
  guardNumber(fn, 'tensorScale', x.tensorScale);
  guardNumber(fn, 'fp8Scale', x.fp8Scale);
  const blocksPerRow = Math.ceil(x.cols / BLOCK);
  const firstBlock = x.rowBegin * blocksPerRow;
  const endBlock = x.rowEnd * blocksPerRow;
  const mask = guardBytes(fn, 'mask', x.mask, Math.ceil(endBlock / 8));
  const fp8Before = countFp8Blocks(mask, firstBlock);
  const fp8Through = countFp8Blocks(mask, endBlock);
  const range: FgmpRowRange = {
    firstBlock,
    blocks: endBlock - firstBlock,
    dataBegin: fp8Before * 16 + (firstBlock - fp8Before) * 8,
    dataEnd: fp8Through * 16 + (endBlock - fp8Through) * 8,
    scaleBegin: firstBlock - fp8Before,
    scaleEnd: endBlock - fp8Through,
  };
  const data = guardBytes(fn, 'data', x.data, range.dataEnd);
  const scales = guardBytes(fn, 'scales', x.scales, range.scaleEnd);
  const out = guardFloats(fn, 'out', x.out, (x.rowEnd - x.rowBegin) * x.cols);
  // The scales as float32 values (what the addon's float arguments hold).
  const tensorScale = Math.fround(x.tensorScale), fp8Scale = Math.fround(x.fp8Scale);
  return { args: { ...x, mask, data, scales, out, tensorScale, fp8Scale }, range };
}

/** Decodes rows [rowBegin, rowEnd) of an FGMP tensor into out (row rowBegin at out[0]). */
export function dequantizeFgmp(a: FgmpDequantizeArgs): void {
  const { args: x, range } = guardFgmpDequantize('dequantizeFgmp', a);
  const { mask, data, scales, cols, tensorScale, fp8Scale, out } = x;
  const blocksPerRow = Math.ceil(cols / BLOCK);
  let dataOffset = range.dataBegin;
  let scaleIndex = range.scaleBegin;
  for (let i = 0; i < range.blocks; i++) {
    const row = Math.floor(i / blocksPerRow);
    const col0 = (i - row * blocksPerRow) * BLOCK;
    const count = Math.min(BLOCK, cols - col0);
    const at = row * cols + col0;
    if (isFp8Block(mask, range.firstBlock + i)) {
      for (let e = 0; e < count; e++) out[at + e] = Math.fround(E4M3_VALUES[data[dataOffset + e]] * fp8Scale);
      dataOffset += 16;
    } else {
      const total = Math.fround(tensorScale * E4M3_VALUES[scales[scaleIndex++]]);
      for (let e = 0; e < count; e++) {
        const byte = data[dataOffset + (e >> 1)];
        out[at + e] = Math.fround(E2M1_VALUES[(e & 1) === 0 ? byte & 0xf : byte >> 4] * total);
      }
      dataOffset += 8;
    }
  }
}
