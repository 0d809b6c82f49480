// The pure-TypeScript backend: the readable reference every other backend must match bit for bit.
// It favours plain loops over speed; the steps mirror native/quantize_scalar.cc and assembly/.
// Like the other backends it checks its buffers at the boundary (kernel-guards.ts): the real
// lengths, so a caller that skips the facade cannot make it read or write past them.

import { E2M1_MAX, E8M0_BIAS, mxScaleExponent, nvfp4ScaledBlockScale } from './block-scale.js';
import { loadBitsInto } from './dtype.js';
import { bitsToFloat, decodeTable, encodeElementBits, floatToBits, roundMagnitude } from './element-codec.js';
import {
  ELEMENT_FORMATS,
  RoundingId,
  ScaleRuleId,
  elementFormatById,
  type DtypeIdValue,
  type ElementFormat,
  type ElementIdValue,
  type RoundingIdValue,
  type ScaleRuleIdValue,
} from '../../core/formats.js';
import { packCodesInto, unpackCodesInto } from '../../core/pack.js';
import { randomBits } from './stochastic.js';
import { blockKernels } from '../block-kernels.js';
import { guardBytes, guardDims, guardFloats, guardSource } from '../kernel-guards.js';
import type { Kernels, Source } from '../contract.js';

const CHUNK = 4096;

/** Code of one block element |x|·2^−s, saturated to the largest finite value (block formats). */
export function quantizeScaledElement(bits: number, scaleExponent: number, format: ElementFormat, random: number): number {
  const negative = (bits >>> 31) !== 0;
  const abs = bits & 0x7fffffff;
  let mag = abs === 0 ? 0 : roundMagnitude(abs, scaleExponent, format, random);
  if (mag > format.maxFiniteCode) mag = format.maxFiniteCode;
  if (format.name === 'int8') return negative ? -mag & 0xff : mag;
  return negative ? mag | format.signBit : mag;
}

function encodeElements(src: Source, dtype: DtypeIdValue, formatId: ElementIdValue, rounding: RoundingIdValue, seed: number, out: Uint8Array, firstIndex = 0): number {
  src = guardSource('encodeElements', src, dtype, 0);
  out = guardBytes('encodeElements', 'out', out, src.length);
  const format = elementFormatById(formatId);
  const bits = new Uint32Array(CHUNK);
  let nans = 0;
  for (let start = 0; start < src.length; start += CHUNK) {
    const count = Math.min(CHUNK, src.length - start);
    loadBitsInto(src, dtype, start, count, bits);
    for (let i = 0; i < count; i++) {
      const b = bits[i];
      if (format.nanCode < 0 && (b & 0x7fffffff) > 0x7f800000) nans++;
      const random = rounding === RoundingId.stochastic ? randomBits(seed, firstIndex + start + i) : -1;
      out[start + i] = encodeElementBits(b, format, random);
    }
  }
  return nans;
}

function decodeElements(codes: Uint8Array, formatId: ElementIdValue, out: Float32Array): void {
  codes = guardBytes('decodeElements', 'codes', codes, 0);
  out = guardFloats('decodeElements', 'out', out, codes.length);
  const table = decodeTable(elementFormatById(formatId));
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i]];
}

/** Load one block's float32 bits (zero-padded to the block) and return the bits of its max |x|
 *  (≥ 0x7f800000 when the block holds Inf or NaN). */
function loadBlock(src: Source, dtype: DtypeIdValue, start: number, count: number, bits: Uint32Array): number {
  bits.fill(0);
  loadBitsInto(src, dtype, start, count, bits);
  let amax = 0;
  for (let i = 0; i < count; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a > amax) amax = a;
  }
  return amax;
}

function quantizeMx(
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
  const bits = new Uint32Array(blockSize);
  const codes = new Uint8Array(blockSize);
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const col0 = b * blockSize;
      const count = Math.min(blockSize, cols - col0);
      const amax = loadBlock(src, dtype, row * cols + col0, count, bits);
      codes.fill(0);
      const blockIndex = row * blocksPerRow + b;
      if (amax >= 0x7f800000) {
        scales[blockIndex] = 0xff; // NaN or Inf in the block: the whole block is NaN
      } else {
        const s = mxScaleExponent(amax, format, scaleRule === ScaleRuleId.ceil);
        scales[blockIndex] = s + E8M0_BIAS;
        for (let i = 0; i < count; i++) {
          const random = rounding === RoundingId.stochastic ? randomBits(seed, firstIndex + row * cols + col0 + i) : -1;
          codes[i] = quantizeScaledElement(bits[i], s, format, random);
        }
      }
      packCodesInto(codes, 0, blockSize, format.bits, data, blockIndex * blockBytes);
    }
  }
}

function dequantizeMx(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, formatId: ElementIdValue, out: Float32Array): void {
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

function absMax(src: Source, dtype: DtypeIdValue): number {
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

function quantizeNvfp4(
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
  const bits = new Uint32Array(blockSize);
  const codes = new Uint8Array(blockSize);
  for (let row = 0; row < rows; row++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const col0 = b * blockSize;
      const count = Math.min(blockSize, cols - col0);
      const amax = loadBlock(src, dtype, row * cols + col0, count, bits);
      const blockIndex = row * blocksPerRow + b;
      const scaled = nvfp4ScaledBlockScale(bitsToFloat(amax), tensorScale);
      const scaleCode = encodeElementBits(floatToBits(scaled), e4m3, -1);
      scales[blockIndex] = scaleCode;
      const total = Math.fround(tensorScale * e4m3Table[scaleCode]);
      codes.fill(0);
      for (let i = 0; i < count; i++) {
        let v = Math.fround(bitsToFloat(bits[i]) / total);
        if (v > E2M1_MAX) v = E2M1_MAX;
        else if (v < -E2M1_MAX) v = -E2M1_MAX;
        const random = rounding === RoundingId.stochastic ? randomBits(seed, firstIndex + row * cols + col0 + i) : -1;
        codes[i] = quantizeScaledElement(floatToBits(v), 0, e2m1, random);
      }
      packCodesInto(codes, 0, blockSize, 4, data, blockIndex * 8);
    }
  }
}

function dequantizeNvfp4(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, tensorScale: number, out: Float32Array): void {
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

export const jsKernels: Kernels = {
  name: 'js',
  simd: 'none',
  encodeElements,
  decodeElements,
  ...blockKernels({ quantizeMx, dequantizeMx, quantizeNvfp4, dequantizeNvfp4 }),
  absMax,
};
