// From the facade's operands to a backend's matmul kernels (MatmulKernels in ./contract.ts: the
// addon's AVX-512 VNNI / AVX2 / scalar kernels, or the wasm SIMD128 one). Against MXINT8 activations,
// E2M1 weights (mxfp4, nvfp4, fgmp) run the FP4 integer kernel and MX weights
// with integer element values (E4M3, FP6, INT8) the byte-plane kernel (native/matmul_planes.h), over
// weights repacked for them (per call, or once per prepared handle: lib/core/prepared-weights.ts);
// every other pairing runs the reference loop over decoded operands. All keep the order documented in
// lib/core/matmul.ts, so results equal the pure-TS reference bit for bit.

import { E8M0_BIAS } from './ref/block-scale.js';
import { decodeTable } from './ref/element-codec.js';
import { unpackCodesInto } from './ref/pack.js';
import { BLOCK_FORMATS, type BlockFormatName } from '../core/formats.js';
import { scratch } from '../core/scratch.js';
import { E2M1_VALUES, E4M3_VALUES, FGMP_BLOCK } from '../fgmp/blocks.js';
import type { FgmpTensor } from '../fgmp/quantize.js';
import { forEachFgmpBlock } from '../fgmp/stream.js';
import type { DecodedOperand, MatmulKernels } from './contract.js';
import type { MatmulOperand } from '../core/prepared-weights.js';
import type { QuantizedTensor } from '../core/quantize.js';


// E8M0 code → its multiplier (0xFF is NaN). A table and a plain loop: Float32Array.from with a
// mapping callback took ~7 ms for the 65 536 scales of a 512 × 4096 activation, 15 % of the product.
const E8M0_MULTIPLIERS = Float32Array.from({ length: 256 }, (_, c) => (c === 0xff ? NaN : 2 ** (c - E8M0_BIAS)));

export function e8m0Multipliers(scales: Uint8Array, out = new Float32Array(scales.length)): Float32Array {
  for (let i = 0; i < scales.length; i++) out[i] = E8M0_MULTIPLIERS[scales[i]];
  return out;
}

// The activations' multipliers are read by the kernel call that follows and not after it (the
// native Promise job copies them at the call), so they live in reused scratch (core/scratch.ts).
function activationMultipliers(scales: Uint8Array): Float32Array {
  return e8m0Multipliers(scales, scratch('matmul.activation-multipliers', Float32Array, scales.length));
}

/** f32(tensorScale · E4M3 value) per block scale code, as the reference decodes NVFP4 scales. */
function nvfp4Multipliers(scales: Uint8Array, tensorScale: number): Float32Array {
  const table = Float32Array.from(E4M3_VALUES, (v) => tensorScale * v);
  const out = new Float32Array(scales.length);
  for (let i = 0; i < scales.length; i++) out[i] = table[scales[i]];
  return out;
}

/** E2M1 code → the E4M3 code of the same value (every E2M1 value is an E4M3 value). */
const E2M1_AS_E4M3 = Uint8Array.from(E2M1_VALUES, (v) => E4M3_VALUES.findIndex((e) => Object.is(e, v)));

/** Weights the fast kernel takes, in the library's layouts (see repackFp4Weights in native/matmul.h).
 *  With `reuse`, FGMP's split arrays are reused scratch (lib/core/scratch.ts), for a caller that is
 *  done with them before it returns (repackWeights: every backend copies them into its own layout). */
export function fp4KernelInputs(b: QuantizedTensor | FgmpTensor, reuse = false) {
  const [n, k] = b.shape;
  const none = { scaleCodes: null, scaleCoding: 0, tensorScale: 0 };
  if (b.format === 'mxfp4') {
    return { n, k, blockSize: 32, nibbles: b.data, blockScales: e8m0Multipliers(b.scales), fp8Blocks: null, fp8Codes: null, scaleCodes: b.scales, scaleCoding: 1, tensorScale: 0 };
  }
  if (b.format === 'nvfp4') {
    const tensorScale = b.tensorScale!;
    return { n, k, blockSize: 16, nibbles: b.data, blockScales: nvfp4Multipliers(b.scales, tensorScale), fp8Blocks: null, fp8Codes: null, scaleCodes: b.scales, scaleCoding: 2, tensorScale };
  }
  // FGMP: split the interleaved block stream into dense FP4 nibbles (zero in FP8 blocks) and
  // dense E4M3 codes (zero in FP4 blocks), and every element as an E4M3 code (an E2M1 value is an
  // E4M3 value) for the byte planes. Every entry is written (scratch holds stale bytes).
  const q = b as FgmpTensor;
  const blocksPerRow = Math.ceil(k / FGMP_BLOCK);
  const paddedK = blocksPerRow * FGMP_BLOCK;
  const blocks = n * blocksPerRow;
  const array = <K extends Uint8ArrayConstructor | Float32ArrayConstructor>(slot: string, kind: K, length: number) =>
    (reuse ? scratch(`fgmp-inputs.${slot}`, kind, length) : new kind(length)) as InstanceType<K>;
  const nibbles = array('nibbles', Uint8Array, (n * paddedK) / 2);
  const fp8Codes = array('fp8-codes', Uint8Array, n * paddedK);
  const fp8Blocks = array('fp8-blocks', Uint8Array, blocks);
  const blockScales = array('block-scales', Float32Array, blocks);
  const allCodes = array('all-codes', Uint8Array, n * paddedK);
  // Locals for the per-block callback: module bindings read per element cost a lookup each.
  const data = q.data, scales = q.scales, fp8Scale = q.fp8Scale, tensorScale = q.tensorScale;
  const asE4m3 = E2M1_AS_E4M3, e4m3Values = E4M3_VALUES;
  forEachFgmpBlock(q.mask, blocks, (blk, fp8, o, s) => {
    const at = blk * 16; // FGMP_BLOCK
    if (fp8) {
      fp8Blocks[blk] = 1;
      for (let i = 0; i < 16; i++) {
        const c = data[o + i];
        fp8Codes[at + i] = c;
        allCodes[at + i] = c;
      }
      for (let i = 0; i < 8; i++) nibbles[blk * 8 + i] = 0;
      blockScales[blk] = fp8Scale;
    } else {
      fp8Blocks[blk] = 0;
      for (let i = 0; i < 8; i++) {
        const byte = data[o + i];
        nibbles[blk * 8 + i] = byte;
        allCodes[at + 2 * i] = asE4m3[byte & 15];
        allCodes[at + 2 * i + 1] = asE4m3[byte >> 4];
      }
      for (let i = 0; i < 16; i++) fp8Codes[at + i] = 0;
      blockScales[blk] = Math.fround(tensorScale * e4m3Values[scales[s]]);
    }
  });
  // Its two multipliers (FP4 blocks f32(tensorScale · E4M3 scale), FP8 blocks fp8Scale): the addon's
  // byte planes keep one byte per block multiplier with them (native/matmul_planes.h).
  const fgmpMultipliers = Float32Array.of(tensorScale, fp8Scale);
  return { n, k, blockSize: FGMP_BLOCK, nibbles, blockScales, fp8Blocks, fp8Codes, allCodes, fgmpMultipliers, ...none };
}

function isFp4Weights(b: MatmulOperand): boolean {
  return b.format === 'mxfp4' || b.format === 'nvfp4' || b.format === 'fgmp';
}

/**
 * The byte-plane form of an MX element format (native/matmul_planes.h): each code's value times
 * 2^shift as an integer (INT32_MIN for NaN), when every finite value is an integer multiple of the
 * smallest one and below 2^24 / blockSize in that unit (a unit's int32 dot cannot wrap) — E4M3, E3M2, E2M3 and INT8; not E5M2 (its range spans
 * 2^32 units) and not E2M1 (the FP4 path is faster). Derived from the decode table, so the rule
 * holds for whatever the table holds.
 */
const planeForms = new Map<string, { table: Int32Array; shift: number } | null>();
function planeForm(format: BlockFormatName): { table: Int32Array; shift: number } | null {
  let form = planeForms.get(format);
  if (form !== undefined) return form;
  form = null;
  const f = BLOCK_FORMATS[format];
  if (f.blockSize === 32 && f.element.bits >= 6) {
    const values = decodeTable(f.element);
    let smallest = Infinity;
    for (const v of values) if (v !== 0 && Number.isFinite(v)) smallest = Math.min(smallest, Math.abs(v));
    const shift = -Math.log2(smallest);
    const table = new Int32Array(256);
    let ok = Number.isInteger(shift) && shift >= 0 && shift <= 24 && values.length <= 256;
    for (let c = 0; c < values.length && ok; c++) {
      const v = values[c] * 2 ** shift;
      if (Number.isNaN(values[c])) table[c] = -0x80000000;
      else if (Number.isInteger(v) && Math.abs(v) < 2 ** 24 / f.blockSize) table[c] = v; // repackPlaneWeights' bound: a unit's dot fits int32
      else ok = false;
    }
    if (ok) form = { table, shift };
  }
  planeForms.set(format, form);
  return form;
}

/** The backend runs these weights on an integer kernel against MXINT8 activations. */
export function hasFastPath(b: MatmulOperand): boolean {
  if (isFp4Weights(b)) return true;
  return b.format !== 'fgmp' && planeForm(b.format) !== null;
}

/** The weights repacked for this backend's fast kernel (the caller releases them). */
export function repackWeights(addon: MatmulKernels, b: MatmulOperand): unknown {
  if (!isFp4Weights(b)) return repackPlanes(addon, b as QuantizedTensor);
  const w = fp4KernelInputs(b as QuantizedTensor | FgmpTensor, true);
  const packed = addon.repackFp4Weights(w.nibbles, w.blockScales, w.fp8Blocks, w.fp8Codes, w.n, w.k, w.blockSize, w.scaleCodes, w.scaleCoding, w.tensorScale);
  // FGMP: byte planes as well, for products of many rows (its sparse FP8 slots are slower there).
  if ('allCodes' in w && w.allCodes) {
    const e4m3 = planeForm('mxfp8_e4m3')!;
    addon.repackPlaneWeights(w.allCodes, e4m3.table, e4m3.shift, w.blockScales, w.n, w.k, FGMP_BLOCK, packed, w.fgmpMultipliers);
  }
  return packed;
}

/** MX weights with integer element values as byte planes: one code byte per element (FP6 unpacked). */
function repackPlanes(addon: MatmulKernels, b: QuantizedTensor): unknown {
  const form = planeForm(b.format as BlockFormatName)!;
  const [n, k] = b.shape;
  const paddedK = Math.ceil(k / 32) * 32;
  const bits = BLOCK_FORMATS[b.format as BlockFormatName].element.bits;
  let codes = b.data;
  if (bits !== 8) {
    codes = new Uint8Array(n * paddedK);
    for (let r = 0; r < n; r++) unpackCodesInto(b.data, (r * paddedK * bits) / 8, paddedK, bits, codes, r * paddedK);
  }
  return addon.repackPlaneWeights(codes, form.table, form.shift, e8m0Multipliers(b.scales), n, k);
}

/** Fast path arguments for MXINT8 activations. */
function int8Activations(a: QuantizedTensor): { codes: Uint8Array; scales: Float32Array; m: number } {
  return { codes: a.data, scales: activationMultipliers(a.scales), m: a.shape[0] };
}

/** a · bᵀ on the fast kernel over repacked weights of n rows. */
export function matmulFast(addon: MatmulKernels, a: QuantizedTensor, packed: unknown, n: number, bias: Float32Array | undefined, into?: Float32Array): Float32Array {
  const { codes, scales, m } = int8Activations(a);
  const out = into ?? new Float32Array(m * n);
  addon.matmulFp4Int8(packed, codes, scales, m, bias ?? null, out);
  return out;
}

/** The same off the JavaScript thread (native); the job holds the weights until it ends. */
export async function matmulFastAsync(addon: MatmulKernels, a: QuantizedTensor, packed: unknown, n: number, bias: Float32Array | undefined): Promise<Float32Array> {
  const { codes, scales, m } = int8Activations(a);
  const out = new Float32Array(m * n);
  await addon.matmulFp4Int8Async!(packed, codes, scales, m, bias ?? null, out);
  return out;
}

/** decodedProducts (lib/core/matmul.ts) on a backend's batch kernel, into `out`: `a` holds `aMatrices`
 *  matrices of `m` rows one after the other, `b` `bMatrices` of `n` rows. */
export function matmulDecodedBatchOn(addon: MatmulKernels, a: DecodedOperand, aMatrices: number, m: number, b: DecodedOperand, bMatrices: number, n: number,
  aIndex: Int32Array, bIndex: Int32Array, bias: Float32Array | undefined, out: Float32Array): void {
  addon.matmulDecodedBatch!(a.values, a.blockScales, m, a.blockSize, aMatrices, b.values, b.blockScales, n, b.blockSize, bMatrices, a.cols, bias ?? null, out, aIndex, bIndex);
}

export function matmulDecodedOn(addon: MatmulKernels, a: DecodedOperand, b: DecodedOperand, bias: Float32Array | undefined, into?: Float32Array): Float32Array {
  const out = into ?? new Float32Array(a.rows * b.rows);
  addon.matmulDecoded!(a.values, a.blockScales, a.rows, a.blockSize, b.values, b.blockScales, b.rows, b.blockSize, a.cols, bias ?? null, out,
    a.codes ?? null, a.codeElement ?? -1, b.codes ?? null, b.codeElement ?? -1);
  return out;
}
