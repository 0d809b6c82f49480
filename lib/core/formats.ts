// The format table: every element format and block format fp4kit knows, as plain data.
// Kernels in every backend (lib/kernels/ref/index.ts, assembly/, native/) receive the numeric ids
// below, so this file, native/formats.h and the format constants of assembly/element-codec.ts must
// agree; test/conformance.test.ts checks every backend against ml_dtypes-generated vectors.

import { describe } from './describe.js';

/** Element formats that `encode`/`decode` accept. */
export type ElementFormatName = 'e2m1' | 'e2m3' | 'e3m2' | 'e4m3' | 'e5m2' | 'e8m0';

/** Numeric ids shared by every backend. `int8` exists only as an MX element format. */
export const ElementId = {
  e2m1: 0,
  e2m3: 1,
  e3m2: 2,
  e4m3: 3,
  e5m2: 4,
  e8m0: 5,
  int8: 6,
} as const;
export type ElementIdValue = (typeof ElementId)[keyof typeof ElementId];

/** What happens to a value beyond the largest finite magnitude in an element cast. */
export type OverflowRule = 'saturate' | 'nan' | 'inf';

export interface ElementFormat {
  readonly name: ElementFormatName | 'int8';
  readonly id: ElementIdValue;
  /** Bits per element when packed. */
  readonly bits: number;
  /** Explicit mantissa bits (for int8: the fixed-point fraction bits + 1, see element-codec.ts). */
  readonly mantissaBits: number;
  /** Exponent of the smallest normal value (1 − bias). */
  readonly minNormalExponent: number;
  /** floor(log2(largest finite value)): the `emax` of the OCP MX spec. */
  readonly maxExponent: number;
  /** Largest finite magnitude. */
  readonly maxFinite: number;
  /** Largest finite code without its sign bit. */
  readonly maxFiniteCode: number;
  /** The sign bit of a code (0 for unsigned e8m0; int8 uses two's complement). */
  readonly signBit: number;
  readonly overflow: OverflowRule;
  /** Code of +NaN, or −1 when the format has no NaN. */
  readonly nanCode: number;
}

function fp(
  name: ElementFormatName,
  bits: number,
  mantissaBits: number,
  bias: number,
  maxFiniteCode: number,
  overflow: OverflowRule,
  nanCode: number,
): ElementFormat {
  const minNormalExponent = 1 - bias;
  const exponentField = maxFiniteCode >> mantissaBits;
  const mantissa = maxFiniteCode & ((1 << mantissaBits) - 1);
  const maxExponent = exponentField - bias;
  const maxFinite = (1 + mantissa / (1 << mantissaBits)) * 2 ** maxExponent;
  return {
    name,
    id: ElementId[name],
    bits,
    mantissaBits,
    minNormalExponent,
    maxExponent,
    maxFinite,
    maxFiniteCode,
    signBit: 1 << (bits - 1),
    overflow,
    nanCode,
  };
}

export const ELEMENT_FORMATS: Readonly<Record<ElementFormatName | 'int8', ElementFormat>> = {
  // OCP MX v1.0 FP4: 1 sign, 2 exponent, 1 mantissa bit, bias 1, no Inf/NaN; ±6 max.
  e2m1: fp('e2m1', 4, 1, 1, 0x7, 'saturate', -1),
  // OCP MX v1.0 FP6 variants, no Inf/NaN.
  e2m3: fp('e2m3', 6, 3, 1, 0x1f, 'saturate', -1),
  e3m2: fp('e3m2', 6, 2, 3, 0x1f, 'saturate', -1),
  // FP8 E4M3 "fn": no Inf, NaN = S.1111.111; values past 448 (after rounding) become NaN.
  e4m3: fp('e4m3', 8, 3, 7, 0x7e, 'nan', 0x7f),
  // FP8 E5M2: IEEE-like, overflow becomes Inf (0x7c).
  e5m2: fp('e5m2', 8, 2, 15, 0x7b, 'inf', 0x7e),
  // E8M0: an unsigned power of two 2^(code−127), 0xff = NaN; no zero, no sign.
  e8m0: {
    name: 'e8m0',
    id: ElementId.e8m0,
    bits: 8,
    mantissaBits: 0,
    minNormalExponent: -127,
    maxExponent: 127,
    maxFinite: 2 ** 127,
    maxFiniteCode: 0xfe,
    signBit: 0,
    overflow: 'nan',
    nanCode: 0xff,
  },
  // MX INT8: two's-complement k with value k/64, symmetric range ±127/64 (the spec's −2 is not produced).
  int8: {
    name: 'int8',
    id: ElementId.int8,
    bits: 8,
    mantissaBits: 7,
    minNormalExponent: 1,
    maxExponent: 0,
    maxFinite: 127 / 64,
    maxFiniteCode: 127,
    signBit: 0x80,
    overflow: 'saturate',
    nanCode: -1,
  },
};

export function elementFormatById(id: number): ElementFormat {
  for (const f of Object.values(ELEMENT_FORMATS)) if (f.id === id) return f;
  throw new RangeError(`unknown element format id ${id}`);
}

/** Block formats that `quantize`/`dequantize` accept. */
export type BlockFormatName =
  | 'mxfp4'
  | 'mxfp6_e2m3'
  | 'mxfp6_e3m2'
  | 'mxfp8_e4m3'
  | 'mxfp8_e5m2'
  | 'mxint8'
  | 'nvfp4';

export interface BlockFormat {
  /** The id the block kernels take (quantizeBlocks / dequantizeBlocks; native/formats.h kBlockFormats). */
  readonly id: number;
  readonly name: BlockFormatName;
  readonly element: ElementFormat;
  readonly blockSize: number;
  /** Scale element format: E8M0 for MX, E4M3 for NVFP4. */
  readonly scale: ElementFormat;
  /** NVFP4 carries a float32 tensor scale above the block scales. */
  readonly hasTensorScale: boolean;
}

function mx(id: number, name: BlockFormatName, element: ElementFormatName | 'int8'): BlockFormat {
  return { id, name, element: ELEMENT_FORMATS[element], blockSize: 32, scale: ELEMENT_FORMATS.e8m0, hasTensorScale: false };
}

/** The block formats, one entry each: the single place the MX / NVFP4 difference is written down
 *  (block size, scale format, tensor scale). Every layer's block kernels take the entry's id. */
export const BLOCK_FORMATS: Readonly<Record<BlockFormatName, BlockFormat>> = {
  mxfp4: mx(0, 'mxfp4', 'e2m1'),
  mxfp6_e2m3: mx(1, 'mxfp6_e2m3', 'e2m3'),
  mxfp6_e3m2: mx(2, 'mxfp6_e3m2', 'e3m2'),
  mxfp8_e4m3: mx(3, 'mxfp8_e4m3', 'e4m3'),
  mxfp8_e5m2: mx(4, 'mxfp8_e5m2', 'e5m2'),
  mxint8: mx(5, 'mxint8', 'int8'),
  nvfp4: { id: 6, name: 'nvfp4', element: ELEMENT_FORMATS.e2m1, blockSize: 16, scale: ELEMENT_FORMATS.e4m3, hasTensorScale: true },
};

const BLOCK_FORMATS_BY_ID: readonly BlockFormat[] = Object.values(BLOCK_FORMATS).sort((a, b) => a.id - b.id);

/** The table entry of a block-kernel format id, or undefined. */
export function blockFormatById(id: unknown): BlockFormat | undefined {
  return typeof id === 'number' && Number.isInteger(id) ? BLOCK_FORMATS_BY_ID[id] : undefined;
}

/** Every format quantize() takes: the block formats above, then FGMP (mixed NVFP4/FP8 blocks). */
export const QUANT_FORMAT_NAMES: readonly (BlockFormatName | 'fgmp')[] = [...(Object.keys(BLOCK_FORMATS) as BlockFormatName[]), 'fgmp'];

/** Input dtypes: float32, and 16-bit floats carried in a Uint16Array. */
export type DtypeName = 'f32' | 'bf16' | 'f16';
export const DtypeId = { f32: 0, bf16: 1, f16: 2 } as const;
export type DtypeIdValue = (typeof DtypeId)[DtypeName];

export type RoundingName = 'nearest' | 'stochastic';
export const RoundingId = { nearest: 0, stochastic: 1 } as const;
export type RoundingIdValue = (typeof RoundingId)[RoundingName];

/** MX shared-exponent rules: OCP floor(log2 amax) − emax, or the round-up rule (no clipping). */
export type ScaleRuleName = 'floor' | 'ceil';
export const ScaleRuleId = { floor: 0, ceil: 1 } as const;
export type ScaleRuleIdValue = (typeof ScaleRuleId)[ScaleRuleName];

/** Bytes one row of `cols` elements takes once padded to whole blocks and packed. */
export function packedRowBytes(format: BlockFormat, cols: number): number {
  const blocks = Math.ceil(cols / format.blockSize);
  return (blocks * format.blockSize * format.element.bits) / 8;
}

/** Storage cost in bits per element, scales included (tensor scale amortised away), of a block
 *  format given by name or as an entry of BLOCK_FORMATS. */
export function bitsPerElement(format: BlockFormat | BlockFormatName): number {
  const f = typeof format === 'string'
    ? (Object.hasOwn(BLOCK_FORMATS, format) ? BLOCK_FORMATS[format] : undefined)
    : Object.values(BLOCK_FORMATS).find((entry) => entry === format);
  if (f === undefined) {
    // A name or an object of the wrong value is a RangeError; anything else is the wrong kind.
    const Kind = typeof format === 'string' || (typeof format === 'object' && format !== null) ? RangeError : TypeError;
    throw new Kind(`bitsPerElement: format must be a block format name (${Object.keys(BLOCK_FORMATS).join(', ')}) or an entry of BLOCK_FORMATS, got ${describe(format)}`);
  }
  return f.element.bits + f.scale.bits / f.blockSize;
}
