// Block matmul: out[M,N] = a[M,K] · b[N,K]ᵀ (b in PyTorch Linear weight layout), with b block-
// quantized (any MX format, nvfp4 or fgmp) and a either float (quantized on the fly to MXINT8)
// or already quantized. This file is the readable reference for the accumulation order that every
// backend keeps, so results are bit-identical everywhere:
//
//   u = min(block size of a, block size of b)      (16 or 32); K is cut into units of u
//   for each unit j (in increasing order):
//     D  = ((a_0·b_0 + a_1·b_1) + a_2·b_2) + …    element values, float64, in element order
//                                                  (exact for every FP4/FP6/INT8 pairing)
//     S  = f32(scaleA_j · scaleB_j)               each block's float32 decode multiplier
//     acc = f32(acc + f32(f32(D) · S))             acc starts at +0
//   out = bias ? f32(acc + bias[n]) : acc
//
// With K = 0 there are no units: every output is +0 (or f32(+0 + bias[n])), M×N of them.
// NaN and Inf follow IEEE arithmetic in this order (a NaN code or multiplier anywhere in row m of a
// or row n of b makes out[m, n] NaN), and every NaN is written as 0x7fc00000 (README.md, "Block
// matmul").
//
// Element values are exact (E2M1 ±0.5…6, E4M3, INT8 k/64 …); a block's decode multiplier is
// 2^(e−127) for E8M0 scales, f32(tensorScale · e4m3) for NVFP4/FGMP FP4 blocks, fp8Scale for
// FGMP FP8 blocks.

import { E8M0_BIAS } from '../kernels/ref/block-scale.js';
import { decodeTable } from '../kernels/ref/element-codec.js';
import { BLOCK_FORMATS, type DtypeName } from './formats.js';
import { E2M1_VALUES, E4M3_VALUES, FGMP_BLOCK } from '../fgmp/blocks.js';
import { checkFgmpTensor, type CheckedFgmpTensor, type FgmpTensor } from '../fgmp/quantize.js';
import { forEachFgmpBlock } from '../fgmp/stream.js';
import { getKernels } from '../kernels/registry.js';
import { hasFastPath, matmulDecodedBatchOn, matmulDecodedOn, matmulFast, matmulFastAsync, repackWeights } from '../kernels/matmul-glue.js';
import type { DecodedOperand, MatmulKernels } from '../kernels/contract.js';
import { PreparedWeights, type MatmulOperand } from './prepared-weights.js';
import { TENSOR_KEYS, quantize, readQuantizedTensor, type CheckedTensor, type QuantizedTensor } from './quantize.js';
import { unpackCodesInto } from '../kernels/ref/pack.js';
import { scratch } from './scratch.js';
import { abortable, nextTurn, throwIfAborted } from './async-jobs.js';
import { plainView } from './typed-arrays.js';
import { checkArray, checkDisjoint, checkOptions, checkShape, checkSignal, checkSource, copyShape, describe, inputArray, isObjectArgument, newArray, readFields, readShape } from './validate.js';

export type { MatmulOperand } from './prepared-weights.js';
export { PreparedWeights } from './prepared-weights.js';

export interface MatmulOptions {
  /** Bias of length N, added after accumulation. */
  bias?: Float32Array;
  /** dtype of a float `a` given as a Uint16Array. */
  dtype?: DtypeName;
  /** Shape of a float `a`: [M, K] (default: K taken from b). */
  shape?: number[];
  /** Write the product into this Float32Array of M·N elements and return it, instead of a new
   *  array: a caller multiplying again and again reuses one buffer and skips the page faults of
   *  fresh memory (on this VM ~12 µs per 4 KiB page: more than the product itself at small K). */
  out?: Float32Array;
  /** matmulAsync only: rejects the Promise with the signal's reason when it aborts (work already
   *  on the addon's threads finishes in the background, its result dropped). */
  signal?: AbortSignal;
}

export type { DecodedOperand } from '../kernels/contract.js';

/** Decodes an operand checked by readOperand (lengths already match its shape). With `slot`, the
 *  values and multipliers live in that reused scratch slot (lib/core/scratch.ts): for a product
 *  that uses them and returns before anything else runs. */
export function decodeOperand(fn: string, q: MatmulOperand, slot?: string): DecodedOperand {
  if (q.format === 'fgmp') return decodeFgmp(fn, q);
  const format = BLOCK_FORMATS[q.format];
  const [rows, cols] = q.shape;
  const blockSize = format.blockSize;
  const blocksPerRow = Math.ceil(cols / blockSize);
  const paddedCols = blocksPerRow * blockSize;
  const rowBytes = (paddedCols * format.element.bits) / 8;
  const values = slot ? scratch(`${slot}.values`, Float32Array, rows * paddedCols) : new Float32Array(rows * paddedCols);
  let fp8: { codes: Uint8Array; codeElement: number } | undefined;
  if (format.element.bits === 8 && format.element.name !== 'int8') {
    // FP8 codes are one byte each: the backend's element decoder takes the whole tensor at once,
    // and the codes go along (the addon's aligned kernels read them faster than the values) — a
    // copy unless the product is done with them before returning (`slot`), like the values.
    const codes = q.data.subarray(0, rows * paddedCols);
    fp8 = { codes: slot ? codes : codes.slice(), codeElement: format.element.id };
    getKernels().decodeElements(fp8.codes, format.element.id, values);
  } else {
    const table = decodeTable(format.element);
    const codes = new Uint8Array(paddedCols);
    for (let r = 0; r < rows; r++) {
      unpackCodesInto(q.data, r * rowBytes, paddedCols, format.element.bits, codes, 0);
      for (let i = 0; i < paddedCols; i++) values[r * paddedCols + i] = table[codes[i]];
    }
  }
  const blockScales = slot ? scratch(`${slot}.scales`, Float32Array, rows * blocksPerRow) : new Float32Array(rows * blocksPerRow);
  const e4m3 = E4M3_VALUES;
  for (let b = 0; b < blockScales.length; b++) {
    const c = q.scales[b];
    if (format.hasTensorScale) blockScales[b] = Math.fround(q.tensorScale! * e4m3[c]);
    else blockScales[b] = c === 0xff ? NaN : 2 ** (c - E8M0_BIAS);
  }
  return { rows, cols, blockSize, values, paddedCols, blockScales, blocksPerRow, ...fp8 };
}

function decodeFgmp(fn: string, tensor: FgmpTensor): DecodedOperand {
  const q = checkFgmpTensor(fn, tensor);
  const { rows, cols, blocksPerRow } = q;
  const paddedCols = blocksPerRow * FGMP_BLOCK;
  const values = new Float32Array(rows * paddedCols);
  const blockScales = new Float32Array(rows * blocksPerRow);
  forEachFgmpBlock(q.mask, rows * blocksPerRow, (b, fp8, o, s) => {
    const base = b * FGMP_BLOCK; // rows are whole blocks, so block b starts at b·16
    if (fp8) {
      for (let i = 0; i < FGMP_BLOCK; i++) values[base + i] = E4M3_VALUES[q.data[o + i]];
      blockScales[b] = q.fp8Scale;
    } else {
      for (let i = 0; i < FGMP_BLOCK; i++) {
        const byte = q.data[o + (i >> 1)];
        values[base + i] = E2M1_VALUES[(i & 1) === 0 ? byte & 0xf : byte >> 4];
      }
      blockScales[b] = Math.fround(q.tensorScale * E4M3_VALUES[q.scales[s]]);
    }
  });
  return { rows, cols, blockSize: FGMP_BLOCK, values, paddedCols, blockScales, blocksPerRow };
}

/** The reference accumulation over decoded operands (see the header for the order). */
export function matmulDecoded(a: DecodedOperand, b: DecodedOperand, bias?: Float32Array): Float32Array {
  const unit = Math.min(a.blockSize, b.blockSize);
  const units = Math.ceil(a.cols / unit);
  const out = new Float32Array(a.rows * b.rows);
  for (let m = 0; m < a.rows; m++) {
    const aRow = m * a.paddedCols;
    for (let n = 0; n < b.rows; n++) {
      const bRow = n * b.paddedCols;
      let acc = 0;
      for (let j = 0; j < units; j++) {
        const k0 = j * unit;
        let d = 0;
        for (let i = 0; i < unit; i++) d += a.values[aRow + k0 + i] * b.values[bRow + k0 + i];
        const s = Math.fround(a.blockScales[m * a.blocksPerRow + Math.floor(k0 / a.blockSize)] * b.blockScales[n * b.blocksPerRow + Math.floor(k0 / b.blockSize)]);
        acc = Math.fround(acc + Math.fround(Math.fround(d) * s));
      }
      out[m * b.rows + n] = bias ? Math.fround(acc + bias[n]) : acc;
    }
  }
  return out;
}

function isQuantized(a: unknown): a is MatmulOperand {
  return isObjectArgument(a) && 'format' in a;
}

/**
 * A quantized operand with every field read once and checked against its shape (real lengths,
 * any realm): a fresh object over what was read, so nothing the caller's object does later (a
 * getter, a Proxy, an own `length`) reaches the kernels.
 */
function readOperand(fn: string, argument: 'a' | 'b', tensor: MatmulOperand): MatmulOperand {
  return checkOperand(fn, argument, readFields(tensor, TENSOR_KEYS) as MatmulOperand);
}

/** readOperand's checks, on fields already read (readFields): they run no caller code. */
function checkOperand(fn: string, argument: 'a' | 'b', q: MatmulOperand): MatmulOperand {
  if (q.format === 'fgmp') {
    const f: CheckedFgmpTensor = checkFgmpTensor(fn, q as FgmpTensor, `${argument}.`);
    check2d(fn, argument, f.shape);
    const src = q as FgmpTensor;
    return {
      format: 'fgmp', shape: f.shape, data: f.data, scales: f.scales, mask: f.mask, tensorScale: f.tensorScale, fp8Scale: f.fp8Scale,
      // Informational fields, carried as numbers (no Number(): an object's valueOf is caller code).
      blockSize: 16, threshold: numberOrNaN(src.threshold), tiesTaken: numberOrNaN(src.tiesTaken), fp4Fraction: numberOrNaN(src.fp4Fraction),
    };
  }
  const t: CheckedTensor = readQuantizedTensor(fn, q as QuantizedTensor, `${argument}.`, true);
  check2d(fn, argument, t.shape);
  return { format: t.format.name, shape: t.shape, data: t.data, scales: t.scales, tensorScale: t.tensorScale, blockSize: t.format.blockSize };
}

function numberOrNaN(v: unknown): number {
  return typeof v === 'number' ? v : NaN;
}

function check2d(fn: string, argument: 'a' | 'b', shape: number[]): void {
  if (shape.length !== 2) throw new RangeError(`${fn}: ${argument} must be 2-D [${argument === 'a' ? 'M' : 'N'}, K], got shape [${shape.join(', ')}]`);
}

interface PreparedMatmul {
  a: MatmulOperand;
  /** a is our own (quantized here from a float a), not a view of the caller's arrays. */
  ownA: boolean;
  b: MatmulOperand;
  /** The handle b came from, when matmul was given prepared weights. */
  prepared: PreparedWeights | undefined;
  bias: Float32Array | undefined;
  /** A plain view of the caller's output (checked: M·N elements), or undefined: the kernels write
   *  through it, so a subclass's own `set` or `length` is never called. */
  out: Float32Array | undefined;
  /** The caller's output itself, which matmul returns. */
  callerOut: Float32Array | undefined;
  /** matmulAsync's AbortSignal (checked), if any. */
  signal: AbortSignal | undefined;
  /** MXINT8 activations × weights the backend's integer kernels take (E2M1; native: also E4M3, FP6, INT8). */
  fast: boolean;
}

const MATMUL_OPTION_KEYS = ['bias', 'dtype', 'shape', 'out', 'signal'] as const;

function prepare(fn: string, a: Float32Array | Uint16Array | MatmulOperand, weights: MatmulOperand | PreparedWeights, options: MatmulOptions, synchronous: boolean): PreparedMatmul {
  const { bias: biasOption, dtype: dtypeOption, shape: shapeOption, out: outOption, signal: signalOption } = readFields(
    checkOptions<MatmulOptions>(fn, options, synchronous ? '{ bias?, dtype?, shape?, out? }' : '{ bias?, dtype?, shape?, out?, signal? }', true, MATMUL_OPTION_KEYS),
    MATMUL_OPTION_KEYS,
  ) as MatmulOptions;
  if (synchronous && signalOption !== undefined) throw new TypeError(`${fn}: options.signal applies to matmulAsync (matmul returns when the product is done)`);
  const signal = checkSignal(fn, signalOption);
  if (PreparedWeights.is(a)) throw new TypeError(`${fn}: a is prepared weights; prepareWeights() makes the right-hand operand b`);
  const prepared = PreparedWeights.is(weights) ? weights : undefined;
  if (!prepared && !isQuantized(weights)) throw new TypeError(`${fn}: b must be a quantized tensor [N, K] (from quantize()), got ${describe(weights)}`);
  // Every caller object is read before any array is looked at: nothing the caller runs (a getter,
  // a Proxy) can resize an array between its check and the kernels.
  const bFields = prepared ? undefined : readFields(weights, TENSOR_KEYS) as MatmulOperand;
  const ownA = !isQuantized(a);
  const aFields = ownA ? undefined : readFields(a as MatmulOperand, TENSOR_KEYS) as MatmulOperand;
  const shapeCopy = ownA ? copyShape(shapeOption) : undefined;
  // A prepared handle's snapshot was checked by prepareWeights.
  const b = prepared ? prepared.operand(fn) : checkOperand(fn, 'b', bFields!);
  const [n, k] = b.shape;
  let aq: MatmulOperand;
  let source: ArrayBufferView | undefined; // a float `a`, as checked
  if (!ownA) {
    aq = checkOperand(fn, 'a', aFields!);
  } else {
    const dims = readShape(fn, shapeCopy);
    const { dtype, x } = checkSource(fn, a, dtypeOption, 'a');
    source = x;
    if (dims === undefined && k > 0 && x.length % k !== 0) {
      throw new RangeError(`${fn}: a holds ${x.length} values, not whole rows of K = ${k} (give options.shape [M, K])`);
    }
    const { leading, cols } = checkShape(fn, dims ?? [k > 0 ? x.length / k : 0, k], x.length);
    // A synchronous product is done with its activation codes before matmul returns: they live in
    // reused scratch (lib/core/scratch.ts); matmulAsync's must be its own.
    const blocks = leading * Math.ceil(cols / 32);
    const out = synchronous ? { data: scratch('matmul.activation-codes', Uint8Array, blocks * 32), scales: scratch('matmul.activation-scales', Uint8Array, blocks) } : undefined;
    aq = quantize(x, { format: 'mxint8', shape: [leading, cols], dtype, ...(out ? { out } : {}) });
  }
  if (aq.shape[1] !== k) throw new RangeError(`${fn}: a has K = ${aq.shape[1]} but b has K = ${k}`);
  const bias = biasOption === undefined ? undefined : inputArray(fn, 'bias', biasOption, 'Float32Array', n, `elements (N = ${n})`);
  const callerOut = outOption === undefined ? undefined : checkArray(fn, 'out', outOption, 'Float32Array', aq.shape[0] * n, `elements (M·N = ${aq.shape[0]}·${n})`);
  const out = callerOut && plainView('Float32Array', callerOut);
  if (out) {
    const inputs: Array<[string, ArrayBufferView | undefined]> = ownA ? [['a', source]] : [['a.data', aq.data], ['a.scales', aq.scales]];
    if (!prepared) inputs.push(['b.data', b.data], ['b.scales', b.scales], ['b.mask', (b as FgmpTensor).mask]);
    checkDisjoint(fn, [['out', out]], [...inputs, ['bias', bias]]);
  }
  const kernels = getKernels().matmul;
  const fast = aq.format === 'mxint8' && kernels !== undefined && hasFastPath(b);
  return { a: aq, ownA, b, prepared, bias, out, callerOut, signal, fast };
}

/**
 * Validates weights and prepares them for repeated products (lib/core/prepared-weights.ts): a snapshot
 * of the tensor, repacked for the fast kernels once per backend. dispose() frees it.
 */
export function prepareWeights(b: MatmulOperand): PreparedWeights {
  const fn = 'prepareWeights';
  if (PreparedWeights.is(b)) throw new TypeError(`${fn}: b is prepared weights already (use it as it is)`);
  if (!isQuantized(b)) throw new TypeError(`${fn}: b must be a quantized tensor [N, K] (from quantize()), got ${describe(b)}`);
  return new PreparedWeights(readOperand(fn, 'b', b));
}

/** The repacked weights for the fast kernel (the handle's own, or fresh ones); call done() after. */
function fastWeights(fn: string, kernels: MatmulKernels, p: PreparedMatmul): { packed: unknown; done: () => void } {
  if (p.prepared) return p.prepared.use(fn, kernels, repackWeights);
  const packed = repackWeights(kernels, p.b);
  return { packed, done: () => kernels.releaseFp4Weights(packed) };
}

/**
 * a[M,K] · b[N,K]ᵀ → Float32Array [M,N]. A float `a` (Float32Array, or bf16/f16 in a Uint16Array)
 * is first quantized to MXINT8 (blocks of 32, E8M0 scales, round to nearest even). Every backend
 * gives the same bits; the native and wasm backends run E2M1 weights (mxfp4, nvfp4, fgmp)
 * against MXINT8 activations on integer SIMD kernels, over weights repacked for them: on every
 * call for a plain tensor, once for weights from prepareWeights().
 */
export function matmul(a: Float32Array | Uint16Array | MatmulOperand, b: MatmulOperand | PreparedWeights, options: MatmulOptions = {}): Float32Array {
  const p = prepare('matmul', a, b, options, true);
  const result = product('matmul', p);
  return p.callerOut ?? result;
}

/** b decoded for the reference order: kept by a prepared handle (decoded once), else made now
 *  (into `slot`'s scratch when given). */
function decodedWeights(fn: string, p: PreparedMatmul, slot?: string): DecodedOperand {
  return p.prepared ? p.prepared.decoded(fn, (q) => decodeOperand(`${fn} (b)`, q)) : decodeOperand(`${fn} (b)`, p.b, slot);
}

/** The product of checked operands on the calling thread, NaNs canonical. */
function product(fn: string, p: PreparedMatmul): Float32Array {
  if (isEmpty(p)) return emptyProduct(fn, p, p.out);
  const kernels = getKernels().matmul;
  if (p.fast && kernels) {
    const w = fastWeights(fn, kernels, p);
    try {
      const out = matmulFast(kernels, p.a as QuantizedTensor, w.packed, p.b.shape[0], p.bias, p.out);
      return kernels.nansCanonical ? out : canonicalNaNs(out);
    } finally {
      w.done();
    }
  }
  // Decoded into scratch: both are done with when this returns (a fresh 8 MiB array costs more in
  // page faults here than the product of 512 rows with it).
  const ad = decodeOperand(`${fn} (a)`, p.a, 'matmul.decoded-a');
  const bd = decodedWeights(fn, p, 'matmul.decoded-b');
  return decodedProduct(ad, bd, p.bias, p.out);
}

/** a · bᵀ (+ bias) of decoded operands on the active backend's kernel, else the reference, into
 *  `out` when given; every NaN written as 0x7fc00000. */
export function decodedProduct(a: DecodedOperand, b: DecodedOperand, bias: Float32Array | undefined, out?: Float32Array): Float32Array {
  const kernels = getKernels().matmul;
  if (kernels?.matmulDecoded) {
    const product = matmulDecodedOn(kernels, a, b, bias, out);
    return kernels.nansCanonical ? product : canonicalNaNs(product);
  }
  return canonicalNaNs(intoOut(matmulDecoded(a, b, bias), out));
}

/**
 * Many products of decoded operands at once, each as decodedProduct computes it (the same bits):
 * `a` holds matrices of `m` rows one after the other (a.rows = m · their count), `b` matrices of
 * `n` rows, and output matrix i ([m, n] at i·m·n of the result, `out` when given) is a's matrix
 * aIndex[i] times b's matrix bIndex[i] transposed (+ bias). One kernel call for a whole batch of
 * small products (the tfjs backend's attention matrices), which the addon spreads over its threads.
 */
export function decodedProducts(a: DecodedOperand, m: number, b: DecodedOperand, n: number, aIndex: Int32Array, bIndex: Int32Array,
  bias: Float32Array | undefined, out?: Float32Array): Float32Array {
  const batch = aIndex.length;
  if (bIndex.length !== batch) throw new RangeError(`decodedProducts: ${batch} a indices, ${bIndex.length} b indices`);
  if ((m === 0 ? a.rows !== 0 : a.rows % m !== 0) || (n === 0 ? b.rows !== 0 : b.rows % n !== 0)) {
    throw new RangeError(`decodedProducts: ${a.rows} and ${b.rows} rows are not whole matrices of ${m} and ${n} rows`);
  }
  const result = out ?? new Float32Array(batch * m * n);
  if (result.length < batch * m * n) throw new RangeError(`decodedProducts: out holds ${result.length} values, ${batch * m * n} needed`);
  const aMatrices = m === 0 ? 0 : a.rows / m, bMatrices = n === 0 ? 0 : b.rows / n;
  for (let i = 0; i < batch; i++) {
    if (!(aIndex[i] >= 0 && aIndex[i] < aMatrices && bIndex[i] >= 0 && bIndex[i] < bMatrices)) {
      throw new RangeError(`decodedProducts: pair ${i} (a's matrix ${aIndex[i]}, b's ${bIndex[i]}) is not among the ${aMatrices} and ${bMatrices} matrices`);
    }
  }
  const kernels = getKernels().matmul;
  if (kernels?.matmulDecodedBatch) {
    matmulDecodedBatchOn(kernels, a, aMatrices, m, b, bMatrices, n, aIndex, bIndex, bias, result);
    if (!kernels.nansCanonical) canonicalNaNs(result.subarray(0, batch * m * n));
    return result;
  }
  // Elsewhere (the wasm module, the reference) one decodedProduct per pair: the same order.
  for (let i = 0; i < batch; i++) {
    const ia = aIndex[i], ib = bIndex[i];
    decodedProduct(decodedRows(a, ia * m, (ia + 1) * m), decodedRows(b, ib * n, (ib + 1) * n), bias, result.subarray(i * m * n, (i + 1) * m * n));
  }
  return result;
}

/** The product in the caller's `out` when there is one. */
function intoOut(product: Float32Array, out: Float32Array | undefined): Float32Array {
  if (out === undefined) return product;
  out.set(product);
  return out;
}

/**
 * Every NaN of a product is written as the quiet NaN 0x7fc00000. Which NaN an operation makes
 * differs between CPUs and code paths (x86 makes 0xffc00000 for Inf − Inf and keeps an operand
 * NaN's sign and payload), so without this the backends would agree on NaN but not on its bits.
 */
export function canonicalNaNs(out: Float32Array): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7fffffff) > 0x7f800000) bits[i] = 0x7fc00000;
  return out;
}

/** A product with no work: K = 0 (every dot product empty), or no output (M = 0 or N = 0) however
 *  large K is — no kernel is called, so nothing is sized by K. */
function isEmpty(p: PreparedMatmul): boolean {
  return p.b.shape[1] === 0 || p.a.shape[0] === 0 || p.b.shape[0] === 0;
}

/** An empty product's output: the documented order gives acc = +0 and out = f32(+0 + bias[n]) —
 *  M×N of them (a −0 bias gives +0), on every backend, without calling a kernel. */
function emptyProduct(fn: string, p: PreparedMatmul, target?: Float32Array): Float32Array {
  const m = p.a.shape[0];
  const n = p.b.shape[0];
  // Written into the caller's out when there is one (no second M×N array); a fresh output without
  // a bias is the zeros it was allocated with, never walked.
  const out = target ?? newArray(fn, Float32Array, m * n, `output [${m}, ${n}]`);
  if (p.bias) {
    const row = new Float32Array(n);
    for (let j = 0; j < n; j++) row[j] = Math.fround(0 + p.bias[j]);
    canonicalNaNs(row);
    for (let i = 0; i < m; i++) out.set(row, i * n);
  } else if (target) {
    target.fill(0);
  }
  return out;
}

const SMALL_PRODUCT_FLOP = 2 ** 26;
/** Multiply-adds per slice when a product runs on this thread in slices, a few ms each: the
 *  wasm integer kernel (~12 G/s), the addon's reference loop, the pure-TS reference loop. */
const SLICE_MACS = { fast: 2 ** 26, nativeDecoded: 2 ** 22, decoded: 2 ** 20 };

const turn = nextTurn;

/** Rows [r0, r1) of an MXINT8 activation operand (rows are whole blocks of 32). */
function int8Rows(a: QuantizedTensor, r0: number, r1: number): QuantizedTensor {
  const k = a.shape[1];
  const rowBytes = Math.ceil(k / 32) * 32;
  const blocks = rowBytes / 32;
  return { ...a, shape: [r1 - r0, k], data: a.data.subarray(r0 * rowBytes, r1 * rowBytes), scales: a.scales.subarray(r0 * blocks, r1 * blocks) };
}

/** Rows [r0, r1) of a decoded operand. */
function decodedRows(d: DecodedOperand, r0: number, r1: number): DecodedOperand {
  return {
    ...d, rows: r1 - r0, values: d.values.subarray(r0 * d.paddedCols, r1 * d.paddedCols), blockScales: d.blockScales.subarray(r0 * d.blocksPerRow, r1 * d.blocksPerRow),
    ...(d.codes ? { codes: d.codes.subarray(r0 * d.paddedCols, r1 * d.paddedCols) } : {}),
  };
}

/** A caller's quantized operand copied (its arrays may change after the call returns). */
function ownOperand(q: MatmulOperand): MatmulOperand {
  return q.format === 'fgmp'
    ? { ...q, data: q.data.slice(), scales: q.scales.slice(), mask: (q as FgmpTensor).mask.slice() } as FgmpTensor
    : { ...q, data: q.data.slice(), scales: q.scales.slice() };
}

/**
 * matmul() without blocking the event loop; same bits as matmul(). With the native addon the
 * product runs on its threads as a job that owns its inputs (taken at the call); elsewhere the
 * operands are decoded or repacked now, into memory of our own, and the product runs in row
 * slices on this thread with a turn of the event loop between slices. Either way the caller may
 * change, transfer or detach its arrays once this returns. Products under 2^26 flops run inline.
 */
export async function matmulAsync(a: Float32Array | Uint16Array | MatmulOperand, b: MatmulOperand | PreparedWeights, options: MatmulOptions = {}): Promise<Float32Array> {
  // No await before the operands are ours: the caller runs on as soon as we return.
  const fn = 'matmulAsync';
  const p = prepare(fn, a, b, options, false);
  throwIfAborted(p.signal); // after the argument checks, before any work starts
  // The product goes to an array of our own and into `out` at the end, checked again then (the
  // caller may have detached or resized it meanwhile).
  const out = p.callerOut;
  p.out = p.callerOut = undefined;
  return finishAsync(fn, await abortable(productAsync(fn, p), p.signal), out);
}

/** The product into the caller's `out` (a plain view of it taken now: it may have been detached
 *  or resized meanwhile), or the product itself. */
function finishAsync(fn: string, product: Float32Array, out: Float32Array | undefined): Float32Array {
  if (out === undefined) return product;
  const view = plainView('Float32Array', out);
  if (view.length !== product.length) throw new TypeError(`${fn}: options.out was detached or resized while the product ran; nothing was written`);
  view.set(product);
  return out;
}

/** matmulAsync's product into an array of its own, NaNs canonical. */
async function productAsync(fn: string, p: PreparedMatmul): Promise<Float32Array> {
  if (isEmpty(p)) return emptyProduct(fn, p);
  const kernels = getKernels().matmul;
  const [m, k] = p.a.shape;
  const n = p.b.shape[0];
  if (2 * m * n * k < SMALL_PRODUCT_FLOP && (p.fast || kernels?.matmulDecoded)) return product(fn, p);
  const rowsPerSlice = (macs: number) => Math.max(1, Math.floor(macs / Math.max(1, n * k)));
  if (p.fast && kernels) {
    const w = fastWeights(fn, kernels, p);
    try {
      if (kernels.matmulFp4Int8Async) {
        const out = await matmulFastAsync(kernels, p.a as QuantizedTensor, w.packed, n, p.bias);
        return kernels.nansCanonical ? out : canonicalNaNs(out);
      }
      const act = p.ownA ? p.a as QuantizedTensor : ownOperand(p.a) as QuantizedTensor;
      const bias = p.bias?.slice();
      const out = new Float32Array(m * n);
      const per = rowsPerSlice(SLICE_MACS.fast);
      for (let r0 = 0; r0 < m; r0 += per) {
        await turn();
        throwIfAborted(p.signal); // stop slicing once aborted
        const r1 = Math.min(m, r0 + per);
        out.set(matmulFast(kernels, int8Rows(act, r0, r1), w.packed, n, bias), r0 * n);
      }
      return canonicalNaNs(out);
    } finally {
      w.done();
    }
  }
  // Decoding copies both operands into arrays of our own.
  const ad = decodeOperand(`${fn} (a)`, p.a);
  const bd = decodedWeights(fn, p);
  const bias = p.bias?.slice();
  const out = new Float32Array(m * n);
  const per = rowsPerSlice(kernels?.matmulDecoded ? SLICE_MACS.nativeDecoded : SLICE_MACS.decoded);
  for (let r0 = 0; r0 < m; r0 += per) {
    await turn();
    throwIfAborted(p.signal); // stop slicing once aborted
    const r1 = Math.min(m, r0 + per);
    const rows = decodedRows(ad, r0, r1);
    out.set(kernels?.matmulDecoded ? matmulDecodedOn(kernels, rows, bd, bias) : matmulDecoded(rows, bd, bias), r0 * n);
  }
  return canonicalNaNs(out);
}
