// FGMP dequantization (the wasm twin of native/fgmp_dequantize.cc; lib/kernels/ref/fgmp-dequantize.ts
// is the readable reference): an FP8 block's element is f32(E4M3[code] · fp8Scale), an FP4 block's
// f32(E2M1[nibble] · f32(tensorScale · E4M3[scale])); elements past a row's last column are padding,
// not written.

import { E2M1, E4M3, decodeTable } from "./element-codec";

const BLOCK: i32 = 16;

/**
 * Decodes `rows` rows of `cols` columns into out. The stream starts at this range's first block:
 * its mask bits from bit `maskBit` of the byte at `mask`, its data and scale bytes at `data` and
 * `scales` (the glue, lib/kernels/wasm.ts, copies that much of the tensor's stream here).
 */
export function dequantizeFgmp(mask: usize, maskBit: i32, data: usize, scales: usize, rows: i32, cols: i32, tensorScale: f32, fp8Scale: f32, out: usize): void {
  const e2m1 = decodeTable(E2M1);
  const e4m3 = decodeTable(E4M3);
  const blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  let bit = <usize>maskBit;
  for (let r = 0; r < rows; r++) {
    const row = out + ((<usize>r * <usize>cols) << 2);
    for (let j = 0; j < blocksPerRow; j++, bit++) {
      const col0 = j * BLOCK;
      const count = min(BLOCK, cols - col0);
      const o = row + (<usize>col0 << 2);
      if (((load<u8>(mask + (bit >> 3)) >> <u8>(bit & 7)) & 1) != 0) {
        for (let e = 0; e < count; e++) store<f32>(o + (<usize>e << 2), load<f32>(e4m3 + (<usize>load<u8>(data + <usize>e) << 2)) * fp8Scale);
        data += 16;
      } else {
        const total: f32 = tensorScale * load<f32>(e4m3 + (<usize>load<u8>(scales) << 2));
        scales++;
        for (let e = 0; e < count; e++) {
          const byte = <u32>load<u8>(data + (<usize>e >> 1));
          const code = (e & 1) == 0 ? byte & 0xf : byte >> 4;
          store<f32>(o + (<usize>e << 2), load<f32>(e2m1 + (<usize>code << 2)) * total);
        }
        data += 8;
      }
    }
  }
}
