// NVFP4 block quantization (blocks of 16, E4M3 block scale under a float32 tensor scale) and the
// tensor's absolute maximum: the readable reference of assembly/nvfp4.ts and the NVFP4 path of
// native/quantize_scalar.cc.
import { E2M1_MAX, nvfp4ScaledBlockScale } from './block-scale.js';
import { loadBitsInto } from './dtype.js';
import { bitsToFloat, decodeTable, encodeElementBits, floatToBits, quantizeScaledElement } from './element-codec.js';
import { ELEMENT_FORMATS, type DtypeIdValue, type RoundingIdValue } from '../../core/formats.js';
import { packCodesInto, unpackCodesInto } from './pack.js';
import { CHUNK } from './elements.js';
import { forEachSourceBlock, randomFor } from './mx.js';
import { guardBytes, guardDims, guardFloats, guardSource } from '../kernel-guards.js';
import type { Source } from '../contract.js';

export function absMax(src: Source, dtype: DtypeIdValue): number {
  src = guardSource('absMax', src, dtype, 0);
  const bits = new Uint32Array(CHUNK);
  let amax = 0;
  for (let start = 0; start < src.length; start += CHUNK) {
    const count = Math.min(CHUNK, src.length - start);
    loadBitsInto(src, dtype, start, count, bits);
    for (let i = 0; i < count; i++) {
      const a = bits[i] & 0x7fffffff;
      if (a > 0x7f800000) return NaN;
      if (a > amax) amax = a;
    }
  }
  return bitsToFloat(amax);
}

const e2m1 = ELEMENT_FORMATS.e2m1;
const e4m3 = ELEMENT_FORMATS.e4m3;

export function quantizeNvfp4(
  src: Source, dtype: DtypeIdValue, rows: number, cols: number, tensorScale: number,
  rounding: RoundingIdValue, seed: number, data: Uint8Array, scales: Uint8Array,
  firstIndex = 0,
): void {
  const blockSize = 16;
  const blocksPerRow = Math.ceil(cols / blockSize);
  guardDims('quantizeNvfp4', rows, cols);
  src = guardSource('quantizeNvfp4', src, dtype, rows * cols);
  data = guardBytes('quantizeNvfp4', 'data', data, rows * blocksPerRow * 8);
  scales = guardBytes('quantizeNvfp4', 'scales', scales, rows * blocksPerRow);
  const e4m3Table = decodeTable(e4m3);
  const codes = new Uint8Array(blockSize);
  forEachSourceBlock(src, dtype, rows, cols, blockSize, (blockIndex, first, count, amax, bits) => {
    const scaled = nvfp4ScaledBlockScale(bitsToFloat(amax), tensorScale);
    const scaleCode = encodeElementBits(floatToBits(scaled), e4m3, -1);
    scales[blockIndex] = scaleCode;
    const total = Math.fround(tensorScale * e4m3Table[scaleCode]);
    codes.fill(0);
    // A block holding a NaN has the NaN scale (E4M3 0x7f), which alone makes it decode to NaN:
    // its element codes are all 0 (the quotients x / NaN would carry the sign of a NaN, which
    // JavaScript does not keep).
    for (let i = 0; i < count && !Number.isNaN(total); i++) {
      let v = Math.fround(bitsToFloat(bits[i]) / total);
      if (v > E2M1_MAX) v = E2M1_MAX;
      else if (v < -E2M1_MAX) v = -E2M1_MAX;
      codes[i] = quantizeScaledElement(floatToBits(v), 0, e2m1, randomFor(rounding, seed, firstIndex + first + i));
    }
    packCodesInto(codes, 0, blockSize, 4, data, blockIndex * 8);
  });
}

export function dequantizeNvfp4(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, tensorScale: number, out: Float32Array): void {
  const blockSize = 16;
  const blocksPerRow = Math.ceil(cols / blockSize);
  guardDims('dequantizeNvfp4', rows, cols);
  data = guardBytes('dequantizeNvfp4', 'data', data, rows * blocksPerRow * 8);
  scales = guardBytes('dequantizeNvfp4', 'scales', scales, rows * blocksPerRow);
  out = guardFloats('dequantizeNvfp4', 'out', out, rows * cols);
  const e2m1Table = decodeTable(e2m1);
  const e4m3Table = decodeTable(e4m3);
  const codes = new Uint8Array(blockSize);
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const blockIndex = row * blocksPerRow + b;
      unpackCodesInto(data, blockIndex * 8, blockSize, 4, codes, 0);
      const total = Math.fround(tensorScale * e4m3Table[scales[blockIndex]]);
      const col0 = b * blockSize;
      const count = Math.min(blockSize, cols - col0);
      for (let i = 0; i < count; i++) out[row * cols + col0 + i] = Math.fround(e2m1Table[codes[i]] * total);
    }
  }
}
