// The one interface every backend implements: the table of kernels the facade dispatches to
// (like ggml's per-type function table). Arguments are already validated by lib/core/validate.ts;
// the native addon re-checks them in C++ so a bad call can never crash the process.
//
// Layouts, shared by every backend:
// - a tensor is `rows` × `cols`, blocks run along `cols` (the last axis); a row is padded with
//   zeros to whole blocks;
// - `data` holds rows × paddedCols packed elements: FP4 two per byte (element 2i in the low
//   nibble of byte i), FP6 four per three bytes (element j at bits 6j..6j+5 of the little-endian
//   24-bit group), FP8/INT8 one per byte;
// - `scales` holds one byte per block, row-major (E8M0 for MX, E4M3 for NVFP4);
// - stochastic rounding draws randomBits(seed, firstIndex + row·cols + col) (lib/kernels/ref/stochastic.ts);
//   `firstIndex` (default 0) is the global flat index of src[0], so a caller that splits a tensor
//   into row ranges (threads, chunks) gets the same bits as one call over the whole tensor.

import type { DtypeIdValue, ElementIdValue, RoundingIdValue, ScaleRuleIdValue } from '../core/formats.js';

export type BackendName = 'native' | 'wasm' | 'js';
export type Source = Float32Array | Uint16Array;

/** One block-kernel call (native/quantize.h BlockArgs): a rows × cols tensor in a block format. */
export interface BlockArgs {
  /** BlockFormat.id (lib/core/formats.ts): the MX formats and NVFP4. */
  format: number;
  rows: number;
  cols: number;
  data: Uint8Array;
  scales: Uint8Array;
  /** NVFP4: the float32 decode scale above the block scales (MX: unused, pass 0). */
  tensorScale: number;
}

export interface QuantizeBlocksArgs extends BlockArgs {
  src: Source;
  dtype: DtypeIdValue;
  /** MX: floor (OCP) or ceil (NVFP4: unused, pass 0). */
  scaleRule: ScaleRuleIdValue;
  rounding: RoundingIdValue;
  seed: number;
  firstIndex: number;
}

export interface DequantizeBlocksArgs extends BlockArgs {
  out: Float32Array;
}

/** Rows [rowBegin, rowEnd) of an FGMP tensor decoded (lib/kernels/ref/fgmp-dequantize.ts): the
 *  whole tensor's block stream (lib/fgmp/stream.ts), which must reach row rowEnd; row rowBegin
 *  lands at out[0]. */
export interface FgmpDequantizeArgs {
  mask: Uint8Array;
  data: Uint8Array;
  scales: Uint8Array;
  cols: number;
  rowBegin: number;
  rowEnd: number;
  tensorScale: number;
  fp8Scale: number;
  out: Float32Array;
}

/** The outputs of one gradient quantization: rows × cols codes (0 … 2^bits − 1, row-major) and,
 *  one per group, the decode scale, zero point (1/p folded in), kept flag and keep probability. */
export interface GradientBuffers {
  codes: Uint8Array;
  scales: Float32Array;
  zeros: Float32Array;
  mask: Uint8Array;
  keepProbability: Float32Array;
}

/** One gradient-quantizer call (lib/kernels/ref/gradient-quant.ts; native/gradient_quant.h
 *  GradientArgs): a rows × cols float32 gradient, one code per element, per-group outputs. */
export interface GradientQuantArgs extends GradientBuffers {
  src: Float32Array;
  rows: number;
  cols: number;
  /** 1 … 8. */
  bits: number;
  /** GradientGroupsId: 0 tensor, 1 sample (row), 2 channel (column). */
  groups: number;
  /** GradientPruneId: 0 none, 1 agp, 2 topk. */
  prune: number;
  seed: number;
}

export interface GradientDequantArgs {
  codes: Uint8Array;
  scales: Float32Array;
  zeros: Float32Array;
  mask: Uint8Array;
  rows: number;
  cols: number;
  groups: number;
  out: Float32Array;
}

/** Packing an operand of the bit-plane product (lib/kernels/ref/bitplane-gemm.ts has the layouts):
 *  x [rows, cols] float32 as ±1 (or −1/0/+1 when ternary) signs rows, transposed or not. */
export interface PackSignsArgs {
  src: Float32Array;
  rows: number;
  cols: number;
  transpose: boolean;
  ternary: boolean;
  out: Uint8Array;
}

/** b-bit codes [rows, cols], one per byte, as bit-plane rows, transposed or not. */
export interface PackBitPlanesArgs {
  codes: Uint8Array;
  rows: number;
  cols: number;
  bits: number;
  transpose: boolean;
  out: Uint8Array;
}

/** One bit-plane product (native/bitplane_gemm.h BitplaneMatmulArgs): planes [m rows] × signs
 *  [n rows], both of reduction length `length`; the integer form (outInt) or, with per-group
 *  scales and zero points, the float form (outFloat); the other output is null. */
export interface BitplaneMatmulArgs {
  planes: Uint8Array;
  m: number;
  bits: number;
  signs: Uint8Array;
  n: number;
  length: number;
  ternary: boolean;
  rowsPerGroup: number;
  mask: Uint8Array | null;
  scales: Float32Array | null;
  zeros: Float32Array | null;
  outInt: Int32Array | null;
  outFloat: Float32Array | null;
}

export interface Kernels {
  readonly name: BackendName;
  /** The SIMD level in use: 'avx512', 'avx2', 'neon', 'scalar', 'simd128', 'relaxed-simd' (lib/kernels/wasm-builds.ts), 'none'. */
  readonly simd: string;

  /** Element casts, one code per byte. Returns how many NaN inputs met a format without NaN (coded +0). */
  encodeElements(src: Source, dtype: DtypeIdValue, format: ElementIdValue, rounding: RoundingIdValue, seed: number, out: Uint8Array, firstIndex?: number): number;
  decodeElements(codes: Uint8Array, format: ElementIdValue, out: Float32Array): void;

  /** Every block format (BLOCK_FORMATS in lib/core/formats.ts, by id) through one pair of kernels. */
  quantizeBlocks(a: QuantizeBlocksArgs): void;
  dequantizeBlocks(a: DequantizeBlocksArgs): void;
  /** Off-thread variant (native): the work runs on the addon's threads. */
  quantizeBlocksAsync?(a: QuantizeBlocksArgs): Promise<void>;

  /** max |x| over the tensor; NaN if any element is NaN. */
  absMax(src: Source, dtype: DtypeIdValue): number;

  /** Adds rows × cols elements of a source (float32 or 16-bit floats) against its decoded copy to
   *  sums = [Σ(x − y)², Σx², max |x − y|] (float64), in the order lib/kernels/ref/error-sums.ts
   *  defines: the same bits on every backend however the rows are split over calls. With
   *  `histogram` (ERROR_BINS float64 counts there), also counts each element in the bin of its
   *  x − y (errorBin: exact, d = 0; the binade of |d|; Inf; NaN). */
  errorSums(src: Source, dtype: DtypeIdValue, decoded: Float32Array, rows: number, cols: number, sums: Float64Array, histogram?: Float64Array): void;

  /** FGMP: rows of a tensor decoded to float32 (see FgmpDequantizeArgs). */
  dequantizeFgmp(a: FgmpDequantizeArgs): void;

  /** FGMP: both encodings of every block and its impact (lib/fgmp/quantize.ts candidates()); `x`
   *  as float32, or bf16/f16 bits (widened exactly, as every kernel reads a source). */
  fgmpCandidates?(
    x: Source, dtype: DtypeIdValue, rows: number, cols: number, fisher: Float32Array | null, fisherPerElement: boolean,
    tensorScale: number, fp8Scale: number, clipping: boolean,
    impacts: Float64Array, fp4Codes: Uint8Array, fp4Scales: Uint8Array, fp8Codes: Uint8Array,
  ): void;

  fgmpCandidatesAsync?(...args: Parameters<NonNullable<Kernels['fgmpCandidates']>>): Promise<void>;

  /** Gradient quantizer (1-bit FQT): returns −1, or the flat index of the first non-finite
   *  element of `src` (the outputs are then unspecified). */
  quantizeGradient(a: GradientQuantArgs): number;
  dequantizeGradient(a: GradientDequantArgs): void;

  /** Bit-plane products (1-bit FQT): packing returns −1 or the first code ≥ 2^bits. */
  packSigns(a: PackSignsArgs): void;
  packBitPlanes(a: PackBitPlanesArgs): number;
  bitplaneMatmul(a: BitplaneMatmulArgs): void;

  /** `count` matrices of 4-byte elements, [rows, cols] one after the other from srcOffset, transposed
   *  into [cols, dstStride] at cols·dstStride apart from dstOffset (lib/core/transpose.ts
   *  transposeInto, whose loop is the reference). The addon only: the wasm module would have to copy
   *  both sides into its memory and back, which costs more than the JavaScript loop. */
  transposeMatrices?(src: Float32Array | Uint32Array | Int32Array, srcOffset: number, rows: number, cols: number, count: number,
    dst: Float32Array | Uint32Array | Int32Array, dstOffset: number, dstStride: number): void;

  /** src [a, b, c, d] → dst [a, c, b, d], elements moved as bits (lib/core/transpose.ts
   *  swapMiddleAxesInto holds the reference loop). The addon only, as transposeMatrices. */
  swapMiddleAxes?(src: Float32Array | Uint32Array | Int32Array, a: number, b: number, c: number, d: number,
    dst: Float32Array | Uint32Array | Int32Array): void;

  /** Column sums of x [rows][n] into out[0, n): float32 adds, rows in increasing order
   *  (lib/tfjs/kernels/sum.ts sumLeadingRows, whose loop is the reference). The addon only, for the
   *  same reason as transposeMatrices. */
  sumLeadingRows?(x: Float32Array, rows: number, n: number, out: Float32Array): void;

  /** out[0, n) = tanhf(x[0, n)) with the bits of tfjs's wasm backend (musl's tanhf: lib/tfjs/tanh.ts
   *  is the reference); out may be x itself. The addon only: elsewhere the wasm base's own kernel
   *  gives the same bits faster than the reference's float32-emulating loop. */
  tanhFloat32?(x: Float32Array, n: number, out: Float32Array): void;

  /** out[0, n) = x[0, n)² or ³: f32(x·x), f32(x·x·x) with the products in float64 (lib/tfjs/kernels/pow.ts
   *  squareOrCube is the reference); out may be x itself. The addon only. */
  powerFloat32?(x: Float32Array, exponent: 2 | 3, n: number, out: Float32Array): void;

  /** The fast FP4-weight × INT8-activation matmul kernels (native, wasm); absent: the reference. */
  readonly matmul?: MatmulKernels;
}

/** The matmul functions a backend provides: the native addon (native/matmul_binding.cc) or the
 *  wasm module (assembly/matmul.ts, matmul-planes.ts, matmul-decoded.ts). */
export interface MatmulKernels {
  /** scaleCodes/scaleCoding/tensorScale (1 = E8M0 codes, 2 = E4M3 codes × tensorScale) let the
   *  native kernels keep the scales compactly; blockScales stay the authority. */
  repackFp4Weights(nibbles: Uint8Array, blockScales: Float32Array, fp8Blocks: Uint8Array | null, fp8Codes: Uint8Array | null, n: number, k: number, blockSize: number,
    scaleCodes?: Uint8Array | null, scaleCoding?: number, tensorScale?: number): unknown;
  /** MX weights whose element values are integers in one unit (E4M3, E3M2, E2M3, INT8) as byte
   *  planes (native/matmul_planes.h): codes [n][paddedK], valueTable[256] (code → integer, INT32_MIN
   *  for NaN), values = integer · 2^-shift, blockScales [n][paddedK/32]. The addon (byte planes with
   *  AVX-512 VNNI, int16 planes with AVX2, the scalar kernel elsewhere) and the wasm module (int16
   *  planes, assembly/matmul-planes.ts); matmulFp4Int8 takes the result like FP4 weights. With
   *  `into` (FGMP weights from repackFp4Weights, blockSize 16) the planes join that handle, which
   *  then runs products of many rows on them (32 or more with AVX-512, 2 or more on int16 planes).
   *  `fgmpMultipliers` ([tensorScale, fp8Scale] of those FGMP weights) lets the addon keep one byte
   *  per block multiplier; backends that keep floats ignore it. */
  repackPlaneWeights(codes: Uint8Array, valueTable: Int32Array, shift: number, blockScales: Float32Array, n: number, k: number, blockSize?: number, into?: unknown, fgmpMultipliers?: Float32Array): unknown;
  /** Frees repacked weights now (or when the last job on them ends); later use throws. */
  releaseFp4Weights(packed: unknown): void;
  matmulFp4Int8(packed: unknown, aCodes: Uint8Array, aScales: Float32Array, m: number, bias: Float32Array | null, out: Float32Array): void;
  /** Off the JavaScript thread (the addon only). */
  matmulFp4Int8Async?(packed: unknown, aCodes: Uint8Array, aScales: Float32Array, m: number, bias: Float32Array | null, out: Float32Array): Promise<void>;
  /** The reference order over decoded operands (the addon, the wasm module); returns the path that
   *  ran, same bits either way: 'aligned' (short-float operands as int16 integers,
   *  native/matmul_aligned.h) or 'float64' (the vectorized reference loop). An operand's FP8 codes
   *  (DecodedOperand.codes), where given, must be those its values were decoded from: the addon
   *  reads its integer forms from them where it can (VBMI), the wasm module ignores them. */
  matmulDecoded?(aValues: Float32Array, aScales: Float32Array, m: number, aBlock: number, bValues: Float32Array, bScales: Float32Array, n: number, bBlock: number, k: number, bias: Float32Array | null, out: Float32Array,
    aCodes?: Uint8Array | null, aElement?: number, bCodes?: Uint8Array | null, bElement?: number): 'aligned' | 'float64';
  /** Many decoded products in one call: a holds aMatrices matrices of m rows, b bMatrices of n rows;
   *  output matrix i (m × n, at i·m·n) is a's matrix aIndex[i] · (b's matrix bIndex[i])ᵀ (+ bias),
   *  each with matmulDecoded's bits (lib/core/matmul.ts decodedProducts). */
  matmulDecodedBatch?(aValues: Float32Array, aScales: Float32Array, m: number, aBlock: number, aMatrices: number, bValues: Float32Array, bScales: Float32Array,
    n: number, bBlock: number, bMatrices: number, k: number, bias: Float32Array | null, out: Float32Array, aIndex: Int32Array, bIndex: Int32Array): 'aligned' | 'float64';
  matmulSimd: string;
  /** matmulFp4Int8 and matmulDecoded write every NaN as 0x7fc00000 themselves (native), so the facade skips its pass. */
  readonly nansCanonical?: boolean;
}

/** An operand decoded to exact element values (rows × paddedCols) and one float32 decode
 *  multiplier per block (matmulDecoded's arguments; lib/core/matmul.ts builds it). */
export interface DecodedOperand {
  rows: number;
  cols: number;
  blockSize: number;
  values: Float32Array;
  paddedCols: number;
  /** Decode multiplier of block j of row r at [r * blocksPerRow + j]. */
  blockScales: Float32Array;
  blocksPerRow: number;
  /** FP8 operands (E4M3, E5M2): the one-byte codes the values were decoded from (rows ×
   *  paddedCols) and their element id (lib/core/formats.ts). A shortcut for kernels: they must be
   *  the values' codes (every fp4kit caller passes those), since the addon's AVX-512 VBMI aligned
   *  path reads them instead of the values. The addon compares a sample (the first 16 codes of up to
   *  64 rows) and refuses a mismatch there; checking all would read what the codes let it skip. */
  codes?: Uint8Array;
  codeElement?: number;
}
