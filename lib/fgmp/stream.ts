// The layout of an FGMP tensor's block stream, walked in one place: blocks in row-major order,
// each FP8 block 16 E4M3 code bytes in `data`, each FP4 block 8 bytes of E2M1 nibbles (element 2i
// in the low nibble) in `data` plus one E4M3 scale byte, in order, in `scales`. The mask's bit b
// (bit b & 7 of byte b >> 3) set means block b is FP8.

import { LITTLE_ENDIAN } from '../core/typed-arrays.js';
import { isFp8Block } from './select.js';

/** Where block `from` of a stream starts, `fp8Before` of the blocks before it being FP8: its byte in
 *  `data` and its FP4 scale's index (the FP4 blocks before it). */
function streamOffsets(from: number, fp8Before: number): { dataOffset: number; scaleIndex: number } {
  return { dataOffset: (from - fp8Before) * 8 + fp8Before * 16, scaleIndex: from - fp8Before };
}

/** Calls `visit` for every block in stream order with where its bytes are: blocks [from, blocks),
 *  `fp8Before` of the blocks before `from` being FP8 (the whole stream by default). */
export function forEachFgmpBlock(
  mask: Uint8Array, blocks: number,
  visit: (block: number, fp8: boolean, dataOffset: number, scaleIndex: number) => void,
  from = 0, fp8Before = 0,
): void {
  let { dataOffset, scaleIndex } = streamOffsets(from, fp8Before);
  for (let b = from; b < blocks; b++) {
    if (isFp8Block(mask, b)) {
      visit(b, true, dataOffset, -1);
      dataOffset += 16;
    } else {
      visit(b, false, dataOffset, scaleIndex++);
      dataOffset += 8;
    }
  }
}

/** Bytes c0..c3 of a word (E2M1 codes, each < 16) as the 16 bits c0 | c1 << 4 | c2 << 8 | c3 << 12. */
function nibbles16(w: number): number {
  return (w & 0xf) | ((w >>> 4) & 0xf0) | ((w >>> 8) & 0xf00) | ((w >>> 12) & 0xf000);
}

/**
 * Writes the block stream of `blocks` blocks into `data` and `scales` (sized for the mask) from
 * both encodings of every block: `fp4Codes`/`fp8Codes` (16 codes per block, one per byte) and
 * `fp4Scales` (one per block). The same bytes as walking forEachFgmpBlock and copying block by
 * block, a word (four bytes) at a time where every array starts on a 4-byte boundary: a million
 * blocks (a 4096² weight) in 7–11 ms instead of 29–46 ms byte by byte behind the callback (warm
 * buffers; a fresh output's first-touch page faults add ~40 ms on this VM either way).
 * With `from` (and `fp8Before`, the FP8 blocks among the ones before it), blocks [from, blocks)
 * only: the stream written in consecutive ranges is the same bytes (quantizeFgmpAsync's steps).
 */
export function packFgmpStream(
  mask: Uint8Array, blocks: number, fp4Codes: Uint8Array, fp4Scales: Uint8Array, fp8Codes: Uint8Array,
  data: Uint8Array, scales: Uint8Array, from = 0, fp8Before = 0,
): void {
  const aligned = LITTLE_ENDIAN && [fp4Codes, fp8Codes, data].every((a) => a.byteOffset % 4 === 0);
  if (!aligned) {
    forEachFgmpBlock(mask, blocks, (b, fp8, o, s) => {
      const codes = b * 16;
      if (fp8) {
        for (let i = 0; i < 16; i++) data[o + i] = fp8Codes[codes + i];
      } else {
        for (let i = 0; i < 16; i += 2) data[o + (i >> 1)] = (fp4Codes[codes + i] & 0xf) | ((fp4Codes[codes + i + 1] & 0xf) << 4);
        scales[s] = fp4Scales[b];
      }
    }, from, fp8Before);
    return;
  }
  const c4 = new Uint32Array(fp4Codes.buffer, fp4Codes.byteOffset, blocks * 4);
  const c8 = new Uint32Array(fp8Codes.buffer, fp8Codes.byteOffset, blocks * 4);
  const out = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);  // 8 or 16 bytes per block
  const start = streamOffsets(from, fp8Before);
  let o = start.dataOffset >> 2;
  let s = start.scaleIndex;
  for (let b = from; b < blocks; b++) {
    const w = b << 2;
    if (((mask[b >> 3] >> (b & 7)) & 1) === 1) {
      out[o] = c8[w];
      out[o + 1] = c8[w + 1];
      out[o + 2] = c8[w + 2];
      out[o + 3] = c8[w + 3];
      o += 4;
    } else {
      out[o] = nibbles16(c4[w]) | (nibbles16(c4[w + 1]) << 16);
      out[o + 1] = nibbles16(c4[w + 2]) | (nibbles16(c4[w + 3]) << 16);
      scales[s++] = fp4Scales[b];
      o += 2;
    }
  }
}
