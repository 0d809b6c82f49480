// From the facade's operands to a backend's matmul kernels (MatmulKernels in ./kernels.ts: the
// addon's AVX-512 VNNI / AVX2 / scalar kernels, or the wasm SIMD128 one). E2M1 weights (mxfp4,
// nvfp4, fgmp) against MXINT8 activations run the integer kernel over weights repacked for it (per
// call, or once per prepared handle: lib/core/prepared-weights.ts); every other pairing runs the addon's
// reference loop over decoded operands. Both keep the order documented in lib/core/matmul.ts, so results
// equal the pure-TS reference bit for bit.

import { E8M0_BIAS } from './ref/block-scale.js';
import { E4M3_VALUES, FGMP_BLOCK } from '../fgmp/blocks.js';
import type { FgmpTensor } from '../fgmp/quantize.js';
import { forEachFgmpBlock } from '../fgmp/stream.js';
import type { DecodedOperand, MatmulKernels } from './contract.js';
import type { MatmulOperand } from '../core/prepared-weights.js';
import type { QuantizedTensor } from '../core/quantize.js';


// E8M0 code → its multiplier (0xFF is NaN). A table and a plain loop: Float32Array.from with a
// mapping callback took ~7 ms for the 65 536 scales of a 512 × 4096 activation, 15 % of the product.
const E8M0_MULTIPLIERS = Float32Array.from({ length: 256 }, (_, c) => (c === 0xff ? NaN : 2 ** (c - E8M0_BIAS)));

function e8m0Multipliers(scales: Uint8Array): Float32Array {
  const out = new Float32Array(scales.length);
  for (let i = 0; i < scales.length; i++) out[i] = E8M0_MULTIPLIERS[scales[i]];
  return out;
}

/** f32(tensorScale · E4M3 value) per block scale code, as the reference decodes NVFP4 scales. */
function nvfp4Multipliers(scales: Uint8Array, tensorScale: number): Float32Array {
  const table = Float32Array.from(E4M3_VALUES, (v) => tensorScale * v);
  const out = new Float32Array(scales.length);
  for (let i = 0; i < scales.length; i++) out[i] = table[scales[i]];
  return out;
}

/** Weights the fast kernel takes, in the library's layouts (see repackFp4Weights in native/matmul.h). */
function fp4KernelInputs(b: QuantizedTensor | FgmpTensor) {
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
  // dense E4M3 codes (zero in FP4 blocks).
  const q = b as FgmpTensor;
  const blocksPerRow = Math.ceil(k / FGMP_BLOCK);
  const paddedK = blocksPerRow * FGMP_BLOCK;
  const blocks = n * blocksPerRow;
  const nibbles = new Uint8Array((n * paddedK) / 2);
  const fp8Codes = new Uint8Array(n * paddedK);
  const fp8Blocks = new Uint8Array(blocks);
  const blockScales = new Float32Array(blocks);
  forEachFgmpBlock(q.mask, blocks, (blk, fp8, o, s) => {
    if (fp8) {
      fp8Blocks[blk] = 1;
      fp8Codes.set(q.data.subarray(o, o + 16), blk * FGMP_BLOCK);
      blockScales[blk] = q.fp8Scale;
    } else {
      nibbles.set(q.data.subarray(o, o + 8), blk * 8);
      blockScales[blk] = Math.fround(q.tensorScale * E4M3_VALUES[q.scales[s]]);
    }
  });
  return { n, k, blockSize: FGMP_BLOCK, nibbles, blockScales, fp8Blocks, fp8Codes, ...none };
}

export function isFp4Weights(b: MatmulOperand): boolean {
  return b.format === 'mxfp4' || b.format === 'nvfp4' || b.format === 'fgmp';
}

/** The weights repacked for this backend's fast kernel (the caller releases them). */
export function repackWeights(addon: MatmulKernels, b: MatmulOperand): unknown {
  const w = fp4KernelInputs(b as QuantizedTensor | FgmpTensor);
  return addon.repackFp4Weights(w.nibbles, w.blockScales, w.fp8Blocks, w.fp8Codes, w.n, w.k, w.blockSize, w.scaleCodes, w.scaleCoding, w.tensorScale);
}

/** Fast path arguments for MXINT8 activations. */
function int8Activations(a: QuantizedTensor): { codes: Uint8Array; scales: Float32Array; m: number } {
  return { codes: a.data, scales: e8m0Multipliers(a.scales), m: a.shape[0] };
}

/** a · bᵀ on the fast kernel over repacked weights of n rows. */
export function matmulFast(addon: MatmulKernels, a: QuantizedTensor, packed: unknown, n: number, bias: Float32Array | undefined): Float32Array {
  const { codes, scales, m } = int8Activations(a);
  const out = new Float32Array(m * n);
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

export function matmulDecodedOn(addon: MatmulKernels, a: DecodedOperand, b: DecodedOperand, bias: Float32Array | undefined): Float32Array {
  const out = new Float32Array(a.rows * b.rows);
  addon.matmulDecoded!(a.values, a.blockScales, a.rows, a.blockSize, b.values, b.blockScales, b.rows, b.blockSize, a.cols, bias ?? null, out);
  return out;
}
