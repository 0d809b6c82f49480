// Binary × b-bit products by bit planes (1-bit FQT, Gao et al., arXiv 2408.14267): the ±1 operand
// packed one bit per element, the b-bit codes of a quantized gradient split into b bit planes,
// each plane multiplied against the signs with AND + popcount, planes summed with weights 1, 2,
// 4, …; then each group's scale and zero point applied outside the reduction (SCQ's point: no
// dequantization before the product). Layouts, the exact integer identity and the float order:
// lib/kernels/ref/bitplane-gemm.ts. Every backend gives the same bits.

import { checkGradientBits, type QuantizedGradient } from './quantize-gradient.js';
import { getKernels } from '../kernels/registry.js';
import { MAX_BITPLANE_LENGTH, planesBytes, signsBytes } from '../kernels/ref/bitplane-gemm.js';
import { checkCount, checkDisjoint, checkName, checkOptions, checkShape, copyShape, describe, inputArray, isObjectArgument, newArray, notOneOf, readFields, readShape } from './validate.js';
import { byteOffsetOf } from './typed-arrays.js';

/** Rows of ±1 (or −1/0/+1) packed one bit per element (two bits when ternary). */
export interface PackedSigns {
  rows: number;
  /** Elements per row: the reduction length. */
  length: number;
  ternary: boolean;
  data: Uint8Array;
}

/** Rows of unsigned b-bit codes as b bit planes. */
export interface PackedBitPlanes {
  rows: number;
  length: number;
  bits: number;
  data: Uint8Array;
}

/** A quantized gradient packed for one product: its code rows as bit planes, and the affine
 *  decode of each group of `rowsPerGroup` consecutive rows (zeros[g] + code·scales[g]). */
export interface PackedGradient extends PackedBitPlanes {
  rowsPerGroup: number;
  scales: Float32Array;
  zeros: Float32Array;
  mask: Uint8Array;
}

export interface PackSignsOptions {
  /** [rows, cols] of x. */
  shape: [number, number] | number[];
  /** Pack each column of x as a row (for the product that reduces over x's rows). */
  transpose?: boolean;
  /** −1 / 0 / +1 (x > 0, x = ±0, x < 0 or NaN) instead of ±1 (x ≥ 0 is +1). */
  ternary?: boolean;
}

export interface PackBitPlanesOptions {
  shape: [number, number] | number[];
  bits: number;
  transpose?: boolean;
}

function read2d(fn: string, shape: unknown, length: number): [number, number] {
  const dims = readShape(fn, shape, 'options.shape');
  if (dims === undefined || dims.length !== 2) throw new TypeError(`${fn}: options.shape must be [rows, cols], got ${describe(shape)}`);
  checkShape(fn, dims, length, 'options.shape');
  return [dims[0], dims[1]];
}

function readFlag(fn: string, name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new TypeError(`${fn}: options.${name} must be a boolean, got ${describe(v)}`);
  return v;
}

function checkLength(fn: string, length: number): void {
  if (length > MAX_BITPLANE_LENGTH) throw new RangeError(`${fn}: the reduction length ${length} exceeds 2^22 (the integer products must fit int32)`);
}

/** Packs x [rows, cols] as signs: one row per row of x (or per column, with `transpose`). */
export function packSigns(x: Float32Array, options: PackSignsOptions): PackedSigns {
  const fn = 'packSigns';
  const o = checkOptions<PackSignsOptions>(fn, options, '{ shape, transpose?, ternary? }', false, ['shape', 'transpose', 'ternary']);
  const { shape: shapeOption, transpose: transposeOption, ternary: ternaryOption } = o;
  const transpose = readFlag(fn, 'transpose', transposeOption);
  const ternary = readFlag(fn, 'ternary', ternaryOption);
  const shape = copyShape(shapeOption); // read before the array is looked at (readFields)
  const src = inputArray(fn, 'x', x, 'Float32Array');
  const [rows, cols] = read2d(fn, shape, src.length);
  const outRows = transpose ? cols : rows;
  const length = transpose ? rows : cols;
  checkLength(fn, length);
  const data = newArray(fn, Uint8Array, signsBytes(outRows, length, ternary), 'packed signs');
  getKernels().packSigns({ src, rows, cols, transpose, ternary, out: data });
  return { rows: outRows, length, ternary, data };
}

/** Packs b-bit codes [rows, cols] (one per byte, each < 2^bits) as bit planes. */
export function packBitPlanes(codes: Uint8Array, options: PackBitPlanesOptions): PackedBitPlanes {
  const fn = 'packBitPlanes';
  const o = checkOptions<PackBitPlanesOptions>(fn, options, '{ shape, bits, transpose? }', false, ['shape', 'bits', 'transpose']);
  const { shape: shapeOption, bits: bitsOption, transpose: transposeOption } = o;
  const bits = checkGradientBits(fn, 'options.bits', bitsOption);
  const transpose = readFlag(fn, 'transpose', transposeOption);
  const shape = copyShape(shapeOption); // read before the array is looked at (readFields)
  const src = inputArray(fn, 'codes', codes, 'Uint8Array');
  const [rows, cols] = read2d(fn, shape, src.length);
  return packPlanes(fn, 'codes', src, rows, cols, bits, transpose);
}

/** packBitPlanes on checked arguments (`fn` and `codesName` name the call and its codes in messages). */
function packPlanes(fn: string, codesName: string, src: Uint8Array, rows: number, cols: number, bits: number, transpose: boolean): PackedBitPlanes {
  const outRows = transpose ? cols : rows;
  const length = transpose ? rows : cols;
  checkLength(fn, length);
  const data = newArray(fn, Uint8Array, planesBytes(outRows, length, bits), 'bit planes');
  const bad = getKernels().packBitPlanes({ codes: src, rows, cols, bits, transpose, out: data });
  if (bad >= 0) throw new RangeError(`${fn}: ${codesName}[${bad}] is ${src[bad]}, not below 2^${bits}`);
  return { rows: outRows, length, bits, data };
}

export interface PackGradientOptions {
  /** The product's reduction axis in q's [rows, cols]: 'columns' (∇X = Ĝ·Wᵀ, groups 'sample' or
   *  'tensor') or 'rows' (∇W = Xᵀ·Ĝ, groups 'channel' or 'tensor'). */
  reduce: 'columns' | 'rows';
  /** With reduce 'columns': the reduction length when each row of q holds several product rows
   *  (a conv layer's [samples, positions·channels] gradient: length = channels). Divides q's cols. */
  length?: number;
}

/**
 * A quantized gradient packed for a bit-plane product in which its groups' scales and zero points
 * factor out of the reduction. Per-sample groups cannot factor out of a reduction over samples
 * (and per-channel ones not out of one over channels): that is refused with a RangeError.
 */
export function packGradient(q: QuantizedGradient, options: PackGradientOptions): PackedGradient {
  const fn = 'packGradient';
  if (!isObjectArgument(q)) {
    throw new TypeError(`${fn}: q must be a quantized gradient from quantizeGradient, got ${describe(q)}`);
  }
  const o = checkOptions<PackGradientOptions>(fn, options, "{ reduce: 'columns' | 'rows', length? }", false, ['reduce', 'length']);
  const { reduce: reduceOption, length: lengthOption } = o;
  const reduce = checkName(fn, 'options.reduce', reduceOption, ['columns', 'rows'] as const);
  const { shape: shapeOption, groups, bits: bitsOption, codes, scales, zeros, mask } = readFields(q, ['shape', 'groups', 'bits', 'codes', 'scales', 'zeros', 'mask']);
  const dims = readShape(fn, shapeOption, 'q.shape');
  if (dims === undefined) throw new TypeError(`${fn}: q.shape must be [rows, cols], got undefined`);
  if (dims.length !== 2) throw new RangeError(`${fn}: q.shape must be [rows, cols], got [${dims.join(', ')}]`);
  const [rows, cols] = dims;
  const bits = checkGradientBits(fn, 'q.bits', bitsOption);
  const group = checkName(fn, 'q.groups', groups, ['sample', 'channel', 'tensor'] as const);
  const count = group === 'sample' ? rows : group === 'channel' ? cols : 1;
  const g = {
    scales: inputArray(fn, 'q.scales', scales, 'Float32Array', count),
    zeros: inputArray(fn, 'q.zeros', zeros, 'Float32Array', count),
    mask: inputArray(fn, 'q.mask', mask, 'Uint8Array', count),
  };
  if (reduce === 'columns') {
    if (group === 'channel') throw new RangeError(`${fn}: per-channel scales do not factor out of a reduction over channels (reduce 'columns'); quantize with groups 'sample' or 'tensor'`);
    const length = lengthOption === undefined ? cols : lengthOption;
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 1 || cols % length !== 0) {
      throw notOneOf('number', length, `${fn}: options.length must be a positive integer that divides q's ${cols} columns, got ${describe(lengthOption)}`);
    }
    const viewRows = (rows * cols) / length;
    const planes = packPlanes(fn, 'q.codes', inputArray(fn, 'q.codes', codes, 'Uint8Array', rows * cols), viewRows, length, bits, false);
    return { ...planes, ...g, rowsPerGroup: group === 'sample' ? cols / length : Math.max(1, viewRows) };
  }
  if (group === 'sample') throw new RangeError(`${fn}: per-sample scales do not factor out of a reduction over samples (reduce 'rows'); quantize with groups 'channel' or 'tensor' (SCQ)`);
  if (lengthOption !== undefined) throw new RangeError(`${fn}: options.length applies to reduce 'columns' only`);
  const planes = packPlanes(fn, 'q.codes', inputArray(fn, 'q.codes', codes, 'Uint8Array', rows * cols), rows, cols, bits, true);
  return { ...planes, ...g, rowsPerGroup: group === 'channel' ? 1 : Math.max(1, cols) };
}

/** a's fields, each read once, before any array is looked at (readFields). */
function readPlanes(fn: string, a: unknown): { [key in keyof PackedGradient]?: unknown } {
  if (!isObjectArgument(a)) throw new TypeError(`${fn}: a must be packed bit planes (packBitPlanes, packGradient), got ${describe(a)}`);
  return readFields(a, ['rows', 'length', 'bits', 'data', 'rowsPerGroup', 'scales', 'zeros', 'mask']);
}

function readSigns(fn: string, b: unknown): { [key in keyof PackedSigns]?: unknown } {
  if (!isObjectArgument(b)) throw new TypeError(`${fn}: b must be packed signs (packSigns), got ${describe(b)}`);
  return readFields(b, ['rows', 'length', 'ternary', 'data']);
}

function checkPlanes(fn: string, a: { [key in keyof PackedBitPlanes]?: unknown }): PackedBitPlanes {
  const { rows, length, bits, data } = a as PackedBitPlanes; // checked below
  checkCount(fn, 'a.rows', rows);
  checkCount(fn, 'a.length', length);
  checkLength(fn, length);
  const b = checkGradientBits(fn, 'a.bits', bits);
  return { rows, length, bits: b, data: wordArray(fn, 'a.data', data, planesBytes(rows, length, b)) };
}

function checkSigns(fn: string, s: { [key in keyof PackedSigns]?: unknown }): PackedSigns {
  const { rows, length, ternary, data } = s as PackedSigns; // checked below
  checkCount(fn, 'b.rows', rows);
  checkCount(fn, 'b.length', length);
  if (typeof ternary !== 'boolean') throw new TypeError(`${fn}: b.ternary must be a boolean, got ${describe(ternary)}`);
  return { rows, length, ternary, data: wordArray(fn, 'b.data', data, signsBytes(rows, length, ternary)) };
}

function wordArray(fn: string, name: string, v: unknown, bytes: number): Uint8Array {
  const view = inputArray(fn, name, v, 'Uint8Array', bytes, 'bytes');
  if (bytes > 0 && byteOffsetOf(view) % 8 !== 0) throw new RangeError(`${fn}: ${name} must start at a multiple of 8 bytes`);
  return view;
}

function checkPair(fn: string, a: PackedBitPlanes, b: PackedSigns): void {
  if (a.length !== b.length) throw new RangeError(`${fn}: a's rows have ${a.length} elements, b's ${b.length}; the reduction lengths must agree`);
}

function checkRowsPerGroup(fn: string, v: unknown, rows: number): number {
  const r = v ?? Math.max(1, rows);
  if (typeof r !== 'number') throw new TypeError(`${fn}: rowsPerGroup must be a positive integer (a Number), got ${describe(v)}`);
  if (!Number.isSafeInteger(r) || r < 1) throw new RangeError(`${fn}: rowsPerGroup must be a positive integer, got ${describe(v)}`);
  return r;
}

export interface BitplaneMatmulIntOptions {
  /** Keep mask per group of `rowsPerGroup` rows of a (0: the rows are skipped and output 0). */
  mask?: Uint8Array;
  rowsPerGroup?: number;
  out?: Int32Array;
}

/** The exact integer product I[i][j] = Σ_k code_a[i][k]·s_b[j][k]: Int32Array [a.rows, b.rows]. */
export function bitplaneMatmulInt(a: PackedBitPlanes, b: PackedSigns, options?: BitplaneMatmulIntOptions): Int32Array {
  const fn = 'bitplaneMatmulInt';
  const aFields = readPlanes(fn, a);
  const bFields = readSigns(fn, b);
  const { mask: maskOption, rowsPerGroup: rpgOption, out: outOption } = checkOptions<BitplaneMatmulIntOptions>(fn, options, '{ mask?, rowsPerGroup?, out? }', true, ['mask', 'rowsPerGroup', 'out']);
  const A = checkPlanes(fn, aFields);
  const B = checkSigns(fn, bFields);
  checkPair(fn, A, B);
  if (maskOption === undefined && rpgOption !== undefined) throw new RangeError(`${fn}: options.rowsPerGroup needs options.mask`);
  const rowsPerGroup = checkRowsPerGroup(fn, rpgOption ?? 1, A.rows);
  const groups = Math.ceil(A.rows / rowsPerGroup);
  const mask = maskOption === undefined ? null : inputArray(fn, 'options.mask', maskOption, 'Uint8Array', groups);
  const out = outOption === undefined ? newArray(fn, Int32Array, A.rows * B.rows, `output [${A.rows}, ${B.rows}]`) : inputArray(fn, 'options.out', outOption, 'Int32Array', A.rows * B.rows);
  checkDisjoint(fn, [['options.out', outOption === undefined ? undefined : out]], [['a.data', A.data], ['b.data', B.data], ['options.mask', mask]]);
  if (A.length === 0) {
    // Every sum is empty: zeros, without a kernel (whose working memory grows with B.rows).
    if (outOption !== undefined) out.fill(0);
    return outOption === undefined ? out : outOption;
  }
  getKernels().bitplaneMatmul({
    planes: A.data, m: A.rows, bits: A.bits, signs: B.data, n: B.rows, length: A.length, ternary: B.ternary,
    rowsPerGroup, mask, scales: null, zeros: null, outInt: out, outFloat: null,
  });
  return outOption === undefined ? out : outOption;
}

export interface BitplaneMatmulOptions {
  out?: Float32Array;
}

/**
 * The float product of a packed gradient with signs: out[i][j] = Σ_k (zeros[g] + code[i][k]·scales[g])·s[j][k]
 * for row i of group g, computed as scales[g]·I + zeros[g]·Σ_k s[j][k] (float32, in that order);
 * rows of pruned groups are 0 and cost nothing. Float32Array [a.rows, b.rows].
 */
export function bitplaneMatmul(a: PackedGradient, b: PackedSigns, options?: BitplaneMatmulOptions): Float32Array {
  const fn = 'bitplaneMatmul';
  const aFields = readPlanes(fn, a);
  const bFields = readSigns(fn, b);
  const { out: outOption } = checkOptions<BitplaneMatmulOptions>(fn, options, '{ out? }', true, ['out']);
  const A = checkPlanes(fn, aFields);
  const B = checkSigns(fn, bFields);
  checkPair(fn, A, B);
  const rowsPerGroup = checkRowsPerGroup(fn, aFields.rowsPerGroup, A.rows);
  // An empty gradient still has its one tensor-wide group: any count is accepted for 0 rows.
  const groups = A.rows === 0 ? undefined : Math.ceil(A.rows / rowsPerGroup);
  const scales = inputArray(fn, 'a.scales', aFields.scales, 'Float32Array', groups);
  const zeros = inputArray(fn, 'a.zeros', aFields.zeros, 'Float32Array', groups);
  const mask = inputArray(fn, 'a.mask', aFields.mask, 'Uint8Array', groups);
  // A quantized gradient's ranges are finite (quantizeGradient refuses the rest): a NaN or ±Inf
  // would make NaNs whose bits differ between backends.
  for (let g = 0; g < (groups ?? 0); g++) {
    if (!Number.isFinite(scales[g]) || !Number.isFinite(zeros[g])) throw new RangeError(`${fn}: a.scales[${g}] and a.zeros[${g}] must be finite, got ${scales[g]} and ${zeros[g]}`);
  }
  const out = outOption === undefined ? newArray(fn, Float32Array, A.rows * B.rows, `output [${A.rows}, ${B.rows}]`) : inputArray(fn, 'options.out', outOption, 'Float32Array', A.rows * B.rows);
  checkDisjoint(fn, [['options.out', outOption === undefined ? undefined : out]], [['a.data', A.data], ['b.data', B.data], ['a.scales', scales], ['a.zeros', zeros], ['a.mask', mask]]);
  if (A.length === 0 && A.rows > 0 && B.rows > 1) {
    // Every sum is empty, so each row's value is the same in every column: the kernel computes one
    // column (its order, its NaNs), copied bit for bit across the row — no working memory sized by
    // B.rows, which an empty reduction can claim freely.
    const column = new Float32Array(A.rows);
    getKernels().bitplaneMatmul({
      planes: A.data, m: A.rows, bits: A.bits, signs: B.data, n: 1, length: 0, ternary: B.ternary,
      rowsPerGroup, mask, scales, zeros, outInt: null, outFloat: column,
    });
    const words = new Uint32Array(out.buffer, out.byteOffset, out.length);
    const columnWords = new Uint32Array(column.buffer);
    for (let i = 0; i < A.rows; i++) words.fill(columnWords[i], i * B.rows, (i + 1) * B.rows);
    return outOption === undefined ? out : outOption;
  }
  getKernels().bitplaneMatmul({
    planes: A.data, m: A.rows, bits: A.bits, signs: B.data, n: B.rows, length: A.length, ternary: B.ternary,
    rowsPerGroup, mask, scales, zeros, outInt: null, outFloat: out,
  });
  return outOption === undefined ? out : outOption;
}
