// quantize / dequantize for block formats: the public face of the MX and NVFP4 kernels.

import { getKernels } from './backend.js';
import { nvfp4TensorScale } from './block-scale.js';
import {
  BLOCK_FORMATS,
  DtypeId,
  RoundingId,
  ScaleRuleId,
  packedRowBytes,
  type BlockFormatName,
  type DtypeName,
  type RoundingName,
  type ScaleRuleName,
} from './formats.js';
import { dequantizeFgmp, quantizeFgmp, type FgmpOptions, type FgmpTensor } from './fgmp/quantize.js';
import { checkBlockFormat, checkBytes, checkRounding, checkScaleRule, checkShape, checkSource, checkTensorScale } from './validate.js';

export interface QuantizeOptions {
  format: BlockFormatName;
  /** Tensor shape; blocks run along the last axis. Defaults to [x.length]. */
  shape?: number[];
  /** Input dtype: 'f32' for a Float32Array; 'bf16' or 'f16' for a Uint16Array. */
  dtype?: DtypeName;
  rounding?: RoundingName;
  /** Seed for stochastic rounding (an integer in [0, 2^32)). */
  seed?: number;
  /** MX only: 'floor' (OCP default) or 'ceil' (round the scale up, never clip). */
  scaleRule?: ScaleRuleName;
  /** NVFP4 only: a calibrated float32 tensor scale (the decode scale); default amax/(448·6). */
  tensorScale?: number;
}

export interface QuantizedTensor {
  format: BlockFormatName;
  shape: number[];
  /** Packed elements, rows × (cols padded to whole blocks). */
  data: Uint8Array;
  /** One scale byte per block (E8M0 for MX, E4M3 for NVFP4), row-major. */
  scales: Uint8Array;
  /** NVFP4: the float32 decode scale above the block scales. */
  tensorScale?: number;
  blockSize: number;
  scaleRule?: ScaleRuleName;
}

export function quantize(x: Float32Array | Uint16Array, options: FgmpOptions & { format: 'fgmp' }): FgmpTensor;
export function quantize(x: Float32Array | Uint16Array, options: QuantizeOptions): QuantizedTensor;
export function quantize(x: Float32Array | Uint16Array, options: QuantizeOptions | (FgmpOptions & { format: 'fgmp' })): QuantizedTensor | FgmpTensor {
  const fn = 'quantize';
  if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options { format, shape } are required`);
  if (options.format === 'fgmp') return quantizeFgmp(x, options);
  const formatName = checkBlockFormat(fn, options.format);
  const format = BLOCK_FORMATS[formatName];
  const dtype = checkSource(fn, x, options.dtype);
  const { rows, cols, shape } = checkShape(fn, options.shape, x.length);
  const { rounding, seed } = checkRounding(fn, options.rounding, options.seed);
  const blocksPerRow = Math.ceil(cols / format.blockSize);
  const data = new Uint8Array(rows * packedRowBytes(format, cols));
  const scales = new Uint8Array(rows * blocksPerRow);
  const kernels = getKernels();
  if (formatName === 'nvfp4') {
    if (options.scaleRule !== undefined) throw new RangeError(`${fn}: scaleRule applies to MX formats, not nvfp4`);
    let tensorScale: number;
    if (options.tensorScale !== undefined) {
      tensorScale = checkTensorScale(fn, options.tensorScale);
      const amax = kernels.absMax(x, DtypeId[dtype]);
      if (!Number.isFinite(amax)) throw new RangeError(`${fn}: nvfp4 input holds NaN or Inf, which E2M1 cannot represent`);
    } else {
      const amax = kernels.absMax(x, DtypeId[dtype]);
      if (!Number.isFinite(amax)) throw new RangeError(`${fn}: nvfp4 input holds NaN or Inf, which E2M1 cannot represent`);
      tensorScale = nvfp4TensorScale(amax);
    }
    kernels.quantizeNvfp4(x, DtypeId[dtype], rows, cols, tensorScale, RoundingId[rounding], seed, data, scales);
    return { format: formatName, shape, data, scales, tensorScale, blockSize: format.blockSize };
  }
  if (options.tensorScale !== undefined) throw new RangeError(`${fn}: tensorScale applies to nvfp4 only`);
  const scaleRule = checkScaleRule(fn, options.scaleRule);
  kernels.quantizeMx(x, DtypeId[dtype], rows, cols, format.element.id, ScaleRuleId[scaleRule], RoundingId[rounding], seed, data, scales);
  return { format: formatName, shape, data, scales, blockSize: format.blockSize, scaleRule };
}

export interface DequantizeOptions {
  /** Write into this Float32Array (length = element count) instead of allocating one: a server
   *  dequantizing many tensors reuses one buffer and skips the page faults of a fresh one. */
  out?: Float32Array;
}

export function dequantize(q: QuantizedTensor | FgmpTensor, options: DequantizeOptions = {}): Float32Array {
  const fn = 'dequantize';
  if (q === null || typeof q !== 'object') throw new TypeError(`${fn}: expected a quantized tensor from quantize()`);
  if (q.format === 'fgmp') {
    const values = dequantizeFgmp(q);
    if (options.out === undefined) return values;
    checkOut(fn, options.out, values.length);
    options.out.set(values);
    return options.out;
  }
  const formatName = checkBlockFormat(fn, q.format);
  const format = BLOCK_FORMATS[formatName];
  if (!Array.isArray(q.shape)) throw new TypeError(`${fn}: quantized tensor has no shape`);
  const count = q.shape.reduce((a, b) => a * b, 1);
  const { rows, cols } = checkShape(fn, q.shape, count);
  checkBytes(fn, 'data', q.data, rows * packedRowBytes(format, cols));
  checkBytes(fn, 'scales', q.scales, rows * Math.ceil(cols / format.blockSize));
  const out = options.out === undefined ? new Float32Array(count) : checkOut(fn, options.out, count);
  const kernels = getKernels();
  if (formatName === 'nvfp4') {
    const t = checkTensorScale(fn, q.tensorScale);
    kernels.dequantizeNvfp4(q.data, q.scales, rows, cols, t, out);
  } else {
    kernels.dequantizeMx(q.data, q.scales, rows, cols, format.element.id, out);
  }
  return out;
}

function checkOut(fn: string, out: unknown, count: number): Float32Array {
  if (!(out instanceof Float32Array)) throw new TypeError(`${fn}: out must be a Float32Array`);
  if (out.length !== count) throw new RangeError(`${fn}: out must hold ${count} elements, got ${out.length}`);
  return out;
}
