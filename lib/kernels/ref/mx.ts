// OCP MX block quantization (blocks of 32 along a row, E8M0 shared exponent): the readable
// reference of assembly/mx.ts and the MX path of native/quantize_scalar.cc.
import { E8M0_BIAS, mxScaleExponent } from './block-scale.js';
import { loadBitsInto } from './dtype.js';
import { decodeTable, quantizeScaledElement } from './element-codec.js';
import { RoundingId, ScaleRuleId, elementFormatById, type DtypeIdValue, type ElementIdValue, type RoundingIdValue, type ScaleRuleIdValue } from '../../core/formats.js';
import { packCodesInto, unpackCodesInto } from './pack.js';
import { randomBits } from './stochastic.js';
import { guardBytes, guardDims, guardFloats, guardSource } from '../kernel-guards.js';
import type { Source } from '../contract.js';

/** Load one block's float32 bits (zero-padded to the block) and return the bits of its max |x|
 *  (≥ 0x7f800000 when the block holds Inf or NaN). */
export function loadBlock(src: Source, dtype: DtypeIdValue, start: number, count: number, bits: Uint32Array): number {
  bits.fill(0);
  loadBitsInto(src, dtype, start, count, bits);
  let amax = 0;
  for (let i = 0; i < count; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a > amax) amax = a;
  }
  return amax;
}

/** Visits each block of a [rows, cols] source: its index, the index of its first element, how many
 *  elements it holds (the last block of a row may be short), the bits of its max |x| and its float32
 *  bits zero-padded to the block (native/quantize_scalar.cc forEachSourceBlock). */
export function forEachSourceBlock(
  src: Source, dtype: DtypeIdValue, rows: number, cols: number, blockSize: number,
  visit: (blockIndex: number, first: number, count: number, amax: number, bits: Uint32Array) => void,
): void {
  const blocksPerRow = Math.ceil(cols / blockSize);
  const bits = new Uint32Array(blockSize);
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const first = row * cols + b * blockSize;
      const count = Math.min(blockSize, cols - b * blockSize);
      visit(row * blocksPerRow + b, first, count, loadBlock(src, dtype, first, count, bits), bits);
    }
  }
}

/** Random bits of element `index` of the call for stochastic rounding, or −1 for nearest-even. */
export function randomFor(rounding: RoundingIdValue, seed: number, index: number): number {
  return rounding === RoundingId.stochastic ? randomBits(seed, index) : -1;
}

export function quantizeMx(
  src: Source, dtype: DtypeIdValue, rows: number, cols: number, formatId: ElementIdValue,
  scaleRule: ScaleRuleIdValue, rounding: RoundingIdValue, seed: number, data: Uint8Array, scales: Uint8Array,
  firstIndex = 0,
): void {
  const format = elementFormatById(formatId);
  const blockSize = 32;
  const blocksPerRow = Math.ceil(cols / blockSize);
  const blockBytes = (blockSize * format.bits) / 8;
  guardDims('quantizeMx', rows, cols);
  src = guardSource('quantizeMx', src, dtype, rows * cols);
  data = guardBytes('quantizeMx', 'data', data, rows * blocksPerRow * blockBytes);
  scales = guardBytes('quantizeMx', 'scales', scales, rows * blocksPerRow);
  const codes = new Uint8Array(blockSize);
  forEachSourceBlock(src, dtype, rows, cols, blockSize, (blockIndex, first, count, amax, bits) => {
    codes.fill(0);
    if (amax >= 0x7f800000) {
      scales[blockIndex] = 0xff; // NaN or Inf in the block: the whole block is NaN
    } else {
      const s = mxScaleExponent(amax, format, scaleRule === ScaleRuleId.ceil);
      scales[blockIndex] = s + E8M0_BIAS;
      for (let i = 0; i < count; i++) codes[i] = quantizeScaledElement(bits[i], s, format, randomFor(rounding, seed, firstIndex + first + i));
    }
    packCodesInto(codes, 0, blockSize, format.bits, data, blockIndex * blockBytes);
  });
}

export function dequantizeMx(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, formatId: ElementIdValue, out: Float32Array): void {
  const format = elementFormatById(formatId);
  const table = decodeTable(format);
  const blockSize = 32;
  const blocksPerRow = Math.ceil(cols / blockSize);
  const blockBytes = (blockSize * format.bits) / 8;
  guardDims('dequantizeMx', rows, cols);
  data = guardBytes('dequantizeMx', 'data', data, rows * blocksPerRow * blockBytes);
  scales = guardBytes('dequantizeMx', 'scales', scales, rows * blocksPerRow);
  out = guardFloats('dequantizeMx', 'out', out, rows * cols);
  const codes = new Uint8Array(blockSize);
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const blockIndex = row * blocksPerRow + b;
      unpackCodesInto(data, blockIndex * blockBytes, blockSize, format.bits, codes, 0);
      const code = scales[blockIndex];
      const scale = code === 0xff ? NaN : 2 ** (code - E8M0_BIAS);
      const col0 = b * blockSize;
      const count = Math.min(blockSize, cols - col0);
      for (let i = 0; i < count; i++) out[row * cols + col0 + i] = Math.fround(table[codes[i]] * scale);
    }
  }
}
