// The layout of an FGMP tensor's block stream, walked in one place: blocks in row-major order,
// each FP8 block 16 E4M3 code bytes in `data`, each FP4 block 8 bytes of E2M1 nibbles (element 2i
// in the low nibble) in `data` plus one E4M3 scale byte, in order, in `scales`. The mask's bit b
// (bit b & 7 of byte b >> 3) set means block b is FP8.

import { isFp8Block } from './select.js';

/** Calls `visit` for every block in stream order with where its bytes are. */
export function forEachFgmpBlock(
  mask: Uint8Array, blocks: number,
  visit: (block: number, fp8: boolean, dataOffset: number, scaleIndex: number) => void,
): void {
  let dataOffset = 0;
  let scaleIndex = 0;
  for (let b = 0; b < blocks; b++) {
    if (isFp8Block(mask, b)) {
      visit(b, true, dataOffset, -1);
      dataOffset += 16;
    } else {
      visit(b, false, dataOffset, scaleIndex++);
      dataOffset += 8;
    }
  }
}
