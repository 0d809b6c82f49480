// The scalar reference for float32 → element code and back. Every backend implements exactly
// these integer steps (native/element_codec.h, assembly/element-codec.ts); keep them in step.
//
// Rounding works on the float32 bit pattern, never through a float log2 or a float division,
// so it is exact: value = m · 2^(e − 23) with m the 24-bit significand (leading 1 at bit 23). The target quantum is
// 2^q with q = max(e, emin) − mantissaBits, and the code magnitude is
//   ((max(e, emin) − emin) << mantissaBits) + round(m · 2^(e − 23 − q)),
// which also covers subnormal targets and the carry into the next binade.

import type { ElementFormat } from '../../core/formats.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function floatToBits(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function bitsToFloat(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/** floor(log2 |x|) of a finite, nonzero float32 given as bits, exact for subnormals too. */
export function floorLog2Bits(absBits: number): number {
  const biased = absBits >>> 23;
  if (biased !== 0) return biased - 127;
  return -149 + 31 - Math.clz32(absBits);
}

/** ceil(log2 |x|) of a finite, nonzero float32 given as bits. */
export function ceilLog2Bits(absBits: number): number {
  const floor = floorLog2Bits(absBits);
  const biased = absBits >>> 23;
  const exact = biased !== 0 ? (absBits & 0x7fffff) === 0 : (absBits & (absBits - 1)) === 0;
  return exact ? floor : floor + 1;
}

/**
 * Round |x|·2^(−scaleExponent) to a code magnitude of `format` (no sign), without overflow
 * handling: the caller compares against maxFiniteCode. `absBits` must be finite and nonzero.
 * `random` is a 32-bit uniform integer for stochastic rounding, or −1 for round-to-nearest-even.
 */
export function roundMagnitude(absBits: number, scaleExponent: number, format: ElementFormat, random: number): number {
  const biased = absBits >>> 23;
  // 24-bit significand with its leading 1 at bit 23 and the exponent of that bit; float32
  // subnormals are normalised first (the binade formula below needs the leading bit in place).
  let m: number;
  let e: number;
  if (biased !== 0) {
    m = (absBits & 0x7fffff) | 0x800000;
    e = biased - 127 - scaleExponent;
  } else {
    const lead = 31 - Math.clz32(absBits);
    m = absBits << (23 - lead);
    e = lead - 149 - scaleExponent;
  }
  const emin = format.minNormalExponent;
  const binade = e > emin ? e : emin;
  const shift = 23 + binade - format.mantissaBits - e; // ≥ 23 − mantissaBits > 0
  let r: number;
  if (random < 0) {
    if (shift >= 25) {
      r = 0; // m < 2^24, so the value is below half a quantum
    } else {
      r = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (r & 1) === 1)) r += 1;
    }
  } else {
    // Round up with probability frac/2^shift: compare the fraction, scaled to 32 bits, with `random`.
    let frac32: number;
    if (shift <= 32) {
      r = shift === 32 ? 0 : m >>> shift;
      const rem = shift === 32 ? m : m & ((1 << shift) - 1);
      frac32 = rem * 2 ** (32 - shift); // < 2^32, exact in a double
    } else {
      r = 0;
      frac32 = shift - 32 >= 32 ? 0 : m >>> (shift - 32);
    }
    if (random < frac32) r += 1;
  }
  return ((binade - emin) << format.mantissaBits) + r;
}

/** Element cast of one float32 (as bits) with the format's own overflow and NaN rules. */
export function encodeElementBits(bits: number, format: ElementFormat, random: number): number {
  if (format.name === 'e8m0') return encodeE8m0Bits(bits, random);
  const sign = (bits >>> 31) !== 0 ? format.signBit : 0;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return format.nanCode >= 0 ? format.nanCode | sign : 0; // NaN; see nanCount
  if (abs === 0x7f800000) {
    if (format.overflow === 'saturate') return format.maxFiniteCode | sign;
    if (format.overflow === 'inf') return (format.maxFiniteCode + 1) | sign;
    return format.nanCode | sign;
  }
  if (abs === 0) return sign;
  let mag = roundMagnitude(abs, 0, format, random);
  if (mag > format.maxFiniteCode && random >= 0) {
    // Stochastic rounding past the largest finite value: behave as round-to-nearest does.
    mag = roundMagnitude(abs, 0, format, -1);
  }
  if (mag > format.maxFiniteCode) {
    if (format.overflow === 'saturate') mag = format.maxFiniteCode;
    else if (format.overflow === 'inf') mag = format.maxFiniteCode + 1;
    else return format.nanCode | sign;
  }
  return mag | sign;
}

/**
 * E8M0 as ml_dtypes casts it: ties and above round up in value, every non-positive, NaN or
 * infinite input is NaN (0xff), and float32 subnormals up to 2^−127 give 2^−127 (code 0).
 * Stochastic: round up with probability (x − 2^k)/2^k; rounding up past 2^127 (NaN: E8M0 has no
 * 2^128) behaves as round-to-nearest does, as for the other formats.
 */
export function encodeE8m0Bits(bits: number, random: number): number {
  if (bits === 0 || bits >= 0x7f800000) return 0xff; // zero, negatives, ±Inf, NaN
  if (random < 0) {
    if (bits <= 0x400000) return 0;
    return (bits + 0x400000) >>> 23;
  }
  if (bits <= 0x400000) return 0;
  if (bits < 0x800000) return random < (bits - 0x400000) * 1024 ? 1 : 0; // between 2^−127 and 2^−126
  const code = (bits + (random >>> 9)) >>> 23; // at most 0xff: bits < 0x7f800000, random >>> 9 < 2^23
  return code === 0xff ? (bits + 0x400000) >>> 23 : code;
}

/** Code → float32 value (as a JS number holding a float32). */
export function decodeElement(code: number, format: ElementFormat): number {
  if (format.name === 'e8m0') return code === 0xff ? NaN : 2 ** (code - 127);
  if (format.name === 'int8') return ((code << 24) >> 24) / 64;
  const negative = (code & format.signBit) !== 0;
  const mag = code & (format.signBit - 1);
  let value: number;
  if (format.overflow === 'inf' && mag > format.maxFiniteCode) value = mag === format.maxFiniteCode + 1 ? Infinity : NaN;
  else if (format.nanCode >= 0 && mag === format.nanCode) value = NaN;
  else {
    const mbits = format.mantissaBits;
    const field = mag >> mbits;
    const mant = mag & ((1 << mbits) - 1);
    value = field === 0
      ? mant * 2 ** (format.minNormalExponent - mbits)
      : (1 + mant / (1 << mbits)) * 2 ** (field - 1 + format.minNormalExponent);
  }
  return negative ? -value : value;
}

const decodeTables = new Map<string, Float32Array>();

/** The decode table over every code of a format, sign of −0 kept (index by the whole code). Made
 *  once per format and shared by every caller (the reference kernels, matmul, FGMP): read only. */
export function decodeTable(format: ElementFormat): Float32Array {
  let table = decodeTables.get(format.name);
  if (table === undefined) {
    table = new Float32Array(1 << format.bits);
    for (let c = 0; c < table.length; c++) table[c] = decodeElement(c, format);
    decodeTables.set(format.name, table);
  }
  return table;
}

/** Code of one block element |x|·2^−s, saturated to the largest finite value (block formats). */
export function quantizeScaledElement(bits: number, scaleExponent: number, format: ElementFormat, random: number): number {
  const negative = (bits >>> 31) !== 0;
  const abs = bits & 0x7fffffff;
  let mag = abs === 0 ? 0 : roundMagnitude(abs, scaleExponent, format, random);
  if (mag > format.maxFiniteCode) mag = format.maxFiniteCode;
  if (format.name === 'int8') return negative ? -mag & 0xff : mag;
  return negative ? mag | format.signBit : mag;
}
