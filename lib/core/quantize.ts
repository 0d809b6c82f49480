// quantize / dequantize for block formats: the public face of the MX and NVFP4 kernels.

import { getKernels } from '../kernels/registry.js';
import { nvfp4TensorScale } from '../kernels/ref/block-scale.js';
import {
  BLOCK_FORMATS,
  DtypeId,
  type BlockFormat,
  RoundingId,
  ScaleRuleId,
  packedRowBytes,
  type BlockFormatName,
  type DtypeName,
  type RoundingName,
  type ScaleRuleName,
} from './formats.js';
import { checkFgmpTensor, decodeFgmpRows, dequantizeFgmp, FGMP_OPTION_KEYS, quantizeFgmp, type FgmpOptions, type FgmpTensor } from '../fgmp/quantize.js';
import { plainView } from './typed-arrays.js';
import type { QuantizeBlocksArgs, Source } from '../kernels/contract.js';
import {
  checkArray, checkBlockFormat, checkBytes, checkDisjoint, checkOptions, checkRounding, checkScaleRule, checkShape, checkSource, checkTensorScale, describe, isObjectArgument, newArray, notOneOf, readFields, readShape,
} from './validate.js';

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
  /** Write into these arrays (exact sizes: quantizedByteLengths) instead of allocating: a server
   *  quantizing many tensors reuses them and skips the page faults of fresh memory. The result's
   *  data and scales are these arrays. Not for fgmp, whose sizes depend on the data. */
  out?: { data: Uint8Array; scales: Uint8Array };
}

/** Bytes of a block-quantized tensor's data and scales, for preallocating `out`. */
export function quantizedByteLengths(format: BlockFormatName, shape: number[]): { data: number; scales: number } {
  const fn = 'quantizedByteLengths';
  const f = BLOCK_FORMATS[checkBlockFormat(fn, format)];
  const dims = readShape(fn, shape);
  if (dims === undefined) throw new TypeError(`${fn}: shape must be a non-empty array of integers, got undefined`);
  const { rows, cols } = checkShape(fn, dims, dims.reduce((a, b) => a * b, 1));
  const data = rows * packedRowBytes(f, cols);
  if (!Number.isSafeInteger(data)) throw new RangeError(`${fn}: shape [${dims.join(', ')}] needs ${data} bytes, more than 2^53`);
  return { data, scales: rows * Math.ceil(cols / f.blockSize) };
}

/** The caller's `out` object's two fields, each read once (before any array is looked at). */
export function readQuantizeOut(fn: string, out: unknown): { data: unknown; scales: unknown } | undefined {
  if (out === undefined) return undefined;
  if (!isObjectArgument(out)) throw new TypeError(`${fn}: options.out must be an object { data, scales }, got ${describe(out)}`);
  const { data, scales } = out as { data?: unknown; scales?: unknown };
  return { data, scales };
}

/** The caller's `out` arrays (read by readQuantizeOut) checked against the sizes this call writes. */
export function checkQuantizeOut(fn: string, out: { data: unknown; scales: unknown } | undefined, dataBytes: number, scaleBytes: number): { data: Uint8Array; scales: Uint8Array } | undefined {
  if (out === undefined) return undefined;
  const { data, scales } = out;
  return {
    data: checkArray(fn, 'out.data', data, 'Uint8Array', dataBytes, 'bytes for this shape'),
    scales: checkArray(fn, 'out.scales', scales, 'Uint8Array', scaleBytes, 'bytes for this shape'),
  };
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

/**
 * One block-format quantize call, decided once for quantize() and quantizeAsync(): options read
 * once (a getter cannot change them later) and checked, the input viewed, the outputs chosen.
 * `call` builds the kernel arguments for rows [r0, r1) of a source; `result` the tensor.
 */
export interface QuantizePlan {
  format: BlockFormat;
  shape: number[];
  rows: number;
  cols: number;
  dtype: DtypeName;
  src: Source;
  /** NVFP4: the caller's calibrated decode scale, if any. */
  givenTensorScale: number | undefined;
  call(tensorScale: number, src: Source, r0: number, r1: number): QuantizeBlocksArgs;
  result(tensorScale: number): QuantizedTensor;
}

/** `staged`: the kernels write arrays of the plan's own and result() copies them into the caller's
 *  `out` at the end (quantizeAsync: the caller may detach or resize `out` while the job runs). */
export function planQuantize(fn: string, x: unknown, opts: QuantizeOptions, staged = false): QuantizePlan {
  const { format: formatOption, shape: shapeOption, dtype: dtypeOption, rounding: roundingOption, seed: seedOption, scaleRule: scaleRuleOption, tensorScale: tensorScaleOption, out: outOption } = opts;
  const formatName = checkBlockFormat(fn, formatOption);
  const format = BLOCK_FORMATS[formatName];
  refuseFgmpOptions(fn, opts, formatName);
  const dims = readShape(fn, shapeOption);
  const { rounding, seed } = checkRounding(fn, roundingOption, seedOption);
  let givenTensorScale: number | undefined;
  let scaleRule: ScaleRuleName | undefined;
  if (format.hasTensorScale) {
    if (scaleRuleOption !== undefined) throw new RangeError(`${fn}: scaleRule applies to MX formats, not ${formatName}`);
    givenTensorScale = tensorScaleOption !== undefined ? checkTensorScale(fn, tensorScaleOption) : undefined;
  } else {
    if (tensorScaleOption !== undefined) throw new RangeError(`${fn}: tensorScale applies to nvfp4 only`);
    scaleRule = checkScaleRule(fn, scaleRuleOption);
  }
  // Every caller object is read before any array is looked at: nothing the caller runs (a getter,
  // a Proxy) can resize an array between its check and the kernel.
  const outFields = readQuantizeOut(fn, outOption);
  const { dtype, x: src } = checkSource(fn, x, dtypeOption);
  const { rows, cols, shape } = checkShape(fn, dims, src.length);
  const rowBytes = packedRowBytes(format, cols);
  const blocksPerRow = Math.ceil(cols / format.blockSize);
  const out = checkQuantizeOut(fn, outFields, rows * rowBytes, rows * blocksPerRow);
  // The kernels write through plain views (or staging arrays); the result hands back the caller's own arrays.
  const outViews = out && { data: plainView('Uint8Array', out.data), scales: plainView('Uint8Array', out.scales) };
  if (outViews) checkDisjoint(fn, [['out.data', outViews.data], ['out.scales', outViews.scales]], [['input', src]]);
  // Made on first use: an async call on this thread quantizes its first chunk a turn after it
  // returns, and they are made there. Made in the call's synchronous part, their external memory
  // (8.5 MiB for a 64 MiB mxfp4 input) set off V8 collections right there ("external memory
  // pressure": 1–4 scavenges and mark-compacts per call, `node --trace-gc`), whose page faults the
  // caller's turn paid: 4–485 per call with a young generation in use, 2,051 in a loaded CI run of
  // test/async-jobs.test.ts; made on first use, none ran there and a call faulted 1–5 pages.
  let arrays: { data: Uint8Array; scales: Uint8Array } | undefined;
  const outputs = () => (arrays ??= {
    data: outViews && !staged ? outViews.data : newArray(fn, Uint8Array, rows * rowBytes, 'codes'),
    scales: outViews && !staged ? outViews.scales : newArray(fn, Uint8Array, rows * blocksPerRow, 'scales'),
  });
  const result = () => {
    const { data, scales } = outputs();
    if (!out) return { data, scales };
    if (staged) {
      const [d, sc] = [plainView('Uint8Array', out.data), plainView('Uint8Array', out.scales)];
      if (d.length !== data.length || sc.length !== scales.length) {
        throw new TypeError(`${fn}: options.out was detached or resized while the job ran; nothing was written`);
      }
      d.set(data);
      sc.set(scales);
    }
    return out;
  };
  return {
    format, shape, rows, cols, dtype, src, givenTensorScale,
    call: (tensorScale, from, r0, r1) => ({
      format: format.id, rows: r1 - r0, cols, src: from, dtype: DtypeId[dtype],
      data: outputs().data.subarray(r0 * rowBytes, r1 * rowBytes), scales: outputs().scales.subarray(r0 * blocksPerRow, r1 * blocksPerRow),
      tensorScale, scaleRule: ScaleRuleId[scaleRule ?? 'floor'], rounding: RoundingId[rounding], seed, firstIndex: r0 * cols,
    }),
    result: (tensorScale) => {
      const arrays = result();
      return format.hasTensorScale
        ? { format: formatName, shape, data: arrays.data, scales: arrays.scales, tensorScale, blockSize: format.blockSize }
        : { format: formatName, shape, data: arrays.data, scales: arrays.scales, blockSize: format.blockSize, scaleRule };
    },
  };
}

/** The decode scale of a format with a tensor scale, from the input's max |x| (NaN/Inf refused). */
export function planTensorScale(fn: string, p: QuantizePlan, amax: number): number {
  if (!Number.isFinite(amax)) throw new RangeError(`${fn}: ${p.format.name} input holds NaN or Inf, which E2M1 cannot represent`);
  return p.givenTensorScale ?? nvfp4TensorScale(amax);
}

/** Every option quantize, quantizeAsync and FGMP read (block formats and fgmp), read once by readFields. */
export const QUANTIZE_OPTION_KEYS = [
  'format', 'shape', 'dtype', 'rounding', 'seed', 'scaleRule', 'tensorScale', 'out',
  'fisher', 'fp4Fraction', 'selection', 'mask', 'clipping', 'fp8Scale', 'signal',
] as const;

/** The options only fgmp reads. Given with a block format, one is refused: fp4Fraction with nvfp4
 *  would silently give plain NVFP4. */
const FGMP_ONLY_KEYS = ['fisher', 'fp4Fraction', 'selection', 'mask', 'clipping', 'fp8Scale'] as const;

function refuseFgmpOptions(fn: string, opts: object, formatName: string): void {
  const o = opts as Record<string, unknown>; // readFields' copy: plain values
  for (const key of FGMP_ONLY_KEYS) if (o[key] !== undefined) throw new RangeError(`${fn}: ${key} applies to fgmp, not ${formatName}`);
}

/** The options of the block formats fgmp has no use for: stochastic rounding (fgmp rounds to
 *  nearest) and an MX scale rule are refused rather than ignored; `out` (fgmp's size depends on the
 *  data). A seed is read with stochastic rounding only, for every format. */
export function refuseBlockOptions(fn: string, opts: object): void {
  const o = opts as Record<string, unknown>;
  if (o.out !== undefined) throw new TypeError(`${fn}: options.out is not available for fgmp (its data size depends on the data)`);
  if (o.rounding !== undefined && o.rounding !== 'nearest') throw notOneOf('string', o.rounding, `${fn}: rounding ${describe(o.rounding)} is not available for fgmp (it rounds to nearest)`);
  if (o.scaleRule !== undefined) throw new RangeError(`${fn}: scaleRule applies to MX formats, not fgmp`);
}

/** Every field of a quantized tensor (block format or fgmp) a function reads, read once by readFields. */
export const TENSOR_KEYS = ['format', 'shape', 'data', 'scales', 'tensorScale', 'mask', 'fp8Scale', 'threshold', 'tiesTaken', 'fp4Fraction'] as const;

export function quantize(x: Float32Array | Uint16Array, options: FgmpOptions & { format: 'fgmp' }): FgmpTensor;
export function quantize(x: Float32Array | Uint16Array, options: QuantizeOptions): QuantizedTensor;
export function quantize(x: Float32Array | Uint16Array, options: QuantizeOptions | (FgmpOptions & { format: 'fgmp' })): QuantizedTensor | FgmpTensor {
  const fn = 'quantize';
  const opts = readFields(checkOptions<object>(fn, options, '{ format, shape? }', false, QUANTIZE_OPTION_KEYS), QUANTIZE_OPTION_KEYS) as QuantizeOptions | (FgmpOptions & { format: 'fgmp' });
  if (opts.format === 'fgmp') {
    refuseBlockOptions(fn, opts);
    return quantizeFgmp(x, readFields(opts, FGMP_OPTION_KEYS) as FgmpOptions);
  }
  const p = planQuantize(fn, x, opts as QuantizeOptions);
  const kernels = getKernels();
  const tensorScale = p.format.hasTensorScale ? planTensorScale(fn, p, kernels.absMax(p.src, DtypeId[p.dtype])) : 0;
  if (p.rows > 0) kernels.quantizeBlocks(p.call(tensorScale, p.src, 0, p.rows)); // no rows: nothing sized by cols
  return p.result(tensorScale);
}

export interface DequantizeOptions {
  /** Write into this Float32Array (length = element count) instead of allocating one: a server
   *  dequantizing many tensors reuses one buffer and skips the page faults of a fresh one. */
  out?: Float32Array;
}

export function dequantize(tensor: QuantizedTensor | FgmpTensor, options: DequantizeOptions = {}): Float32Array {
  const fn = 'dequantize';
  const { out: outOption } = checkOptions<DequantizeOptions>(fn, options, '{ out? }', true, ['out']);
  if (!isObjectArgument(tensor)) throw new TypeError(`${fn}: q must be a quantized tensor from quantize(), got ${describe(tensor)}`);
  const q = readFields(tensor, TENSOR_KEYS) as QuantizedTensor | FgmpTensor;
  if (q.format === 'fgmp') {
    if (outOption === undefined) return dequantizeFgmp(q);
    const checked = checkFgmpTensor('dequantize(fgmp)', q); // read once: out is sized from it
    const out = checkOut(fn, outOption, checked.rows * checked.cols);
    checkDisjoint(fn, [['out', out.view]], [['data', checked.data], ['scales', checked.scales], ['mask', checked.mask]]);
    decodeFgmpRows(checked, out.view, 0, checked.rows);
    return out.finish();
  }
  const t = readQuantizedTensor(fn, q);
  const out = outOption === undefined ? undefined : checkOut(fn, outOption, t.rows * t.cols);
  if (out) checkDisjoint(fn, [['out', out.view]], [['data', t.data], ['scales', t.scales]]);
  const values = out?.view ?? newArray(fn, Float32Array, t.rows * t.cols, 'output');
  const kernels = getKernels();
  if (t.rows > 0) kernels.dequantizeBlocks({ format: t.format.id, rows: t.rows, cols: t.cols, data: t.data, scales: t.scales, tensorScale: t.tensorScale ?? 0, out: values });
  return out ? out.finish() : values;
}

/** A block-quantized tensor (not FGMP), every field read once and checked against its shape. */
export interface CheckedTensor {
  format: BlockFormat;
  shape: number[];
  rows: number;
  cols: number;
  data: Uint8Array;
  scales: Uint8Array;
  tensorScale?: number;
}

/** `anyFiniteScale`: matmul takes any finite NVFP4 tensorScale (used as given, as the reference
 *  decodes it); dequantize wants the float32 ≥ 2^-126 that quantize makes. */
export function readQuantizedTensor(fn: string, q: QuantizedTensor, argument = '', anyFiniteScale = false): CheckedTensor {
  const { format: formatField, shape: shapeField, data: dataField, scales: scalesField, tensorScale: tensorScaleField } = q;
  const formatName = checkBlockFormat(fn, formatField, `${argument}format`);
  const format = BLOCK_FORMATS[formatName];
  if (shapeField === undefined) throw new TypeError(`${fn}: ${argument}shape is missing (a quantized tensor has one)`);
  const dims = readShape(fn, shapeField, `${argument}shape`)!;
  const count = dims.reduce((a, b) => a * b, 1);
  const { rows, cols, shape } = checkShape(fn, dims, count, `${argument}shape`);
  const data = checkBytes(fn, `${argument}data`, dataField, rows * packedRowBytes(format, cols));
  const scales = checkBytes(fn, `${argument}scales`, scalesField, rows * Math.ceil(cols / format.blockSize));
  let tensorScale: number | undefined;
  if (format.hasTensorScale) {
    if (!anyFiniteScale) tensorScale = checkTensorScale(fn, tensorScaleField, `${argument}tensorScale`);
    else if (typeof tensorScaleField === 'number' && Number.isFinite(tensorScaleField)) tensorScale = tensorScaleField;
    else throw new RangeError(`${fn}: ${argument}tensorScale must be a finite number (an ${formatName} operand needs one), got ${describe(tensorScaleField)}`);
  }
  return { format, shape, rows, cols, data, scales, tensorScale };
}

/** The caller's `out`: a plain view of its memory to write, and the caller's array to return. */
function checkOut(fn: string, out: unknown, count: number): { view: Float32Array; finish(): Float32Array } {
  const caller = checkArray(fn, 'out', out, 'Float32Array', count);
  const view = plainView('Float32Array', caller);
  return { view, finish: () => caller };
}
