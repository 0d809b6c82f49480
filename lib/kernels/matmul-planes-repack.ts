// Plane weights for the wasm byte-plane kernel (assembly/matmul-planes.ts), in TypeScript: the
// twin of repackPlaneWeights in native/matmul_planes.cc, with 16-bit planes (SIMD128's integer dot
// takes int16). Each code's integer v = h·2^s + l (s = lowShift: the fewest low bits that leave h
// within 16 signed bits, 3 for E4M3, 0 for the rest; 0 ≤ l < 2^s). Tiles of 16 columns; per tile
// and group of 4 k, 64 int16: columns 2i and 2i+1 in vector i (8 int16), 4 k each.

import { guardBytes, guardDims, guardFloats } from './kernel-guards.js';

const TILE_COLUMNS = 16;
/** A value-table entry that marks a NaN code (native kPlaneNanValue). */
export const PLANE_NAN_VALUE = -0x80000000;

export interface RepackedPlaneWeights {
  h: Int16Array; // [tiles][kQuads][64]
  low: Int16Array | null; // [tiles][kQuads][64], lowShift > 0 only
  lowQuads: Uint8Array | null; // [tiles][units]: bit q set where the unit's group q of 4 k has a non-zero l
  lowShift: number;
  scales: Float32Array; // [tiles][units][16], NaN in a lane-unit holding a NaN code, 0 in padding
  /** Values are v · 2^-shift. */
  shift: number;
  n: number;
  k: number;
  unit: number;
  units: number;
  tiles: number;
  kQuads: number;
}

/** codes [n][paddedK] (one byte per element), valueTable[256] (PLANE_NAN_VALUE for NaN, |v| < 2^24 / blockSize), blockScales [n][units]. */
export function repackPlaneWeights(codes: Uint8Array, valueTable: Int32Array, shift: number, blockScales: Float32Array, n: number, k: number, blockSize = 32): RepackedPlaneWeights {
  const fn = 'repackPlaneWeights';
  guardDims(fn, n, k);
  if (blockSize !== 16 && blockSize !== 32) throw new RangeError(`${fn}: blockSize must be 16 or 32, got ${String(blockSize)}`);
  if (!Number.isInteger(shift) || shift < 0 || shift > 24) throw new RangeError(`${fn}: shift must be an integer in [0, 24], got ${String(shift)}`);
  if (!(valueTable instanceof Int32Array) || valueTable.length < 256) throw new TypeError(`${fn}: valueTable must be an Int32Array of 256 entries`);
  const units = Math.ceil(k / blockSize);
  const paddedK = units * blockSize;
  codes = guardBytes(fn, 'codes', codes, n * paddedK);
  blockScales = guardFloats(fn, 'blockScales', blockScales, n * units);
  let lo = 0;
  let hi = 0;
  for (let c = 0; c < 256; c++) {
    const v = valueTable[c];
    if (v === PLANE_NAN_VALUE) continue;
    // A unit's dot (blockSize activations |a| ≤ 128 times v) is taken in int32: |v| < 2^31 / (128 · blockSize).
    const bound = 2 ** 24 / blockSize;
    if (v <= -bound || v >= bound) throw new RangeError(`${fn}: valueTable entries must lie in (-2^${24 - Math.log2(blockSize)}, 2^${24 - Math.log2(blockSize)}) for blocks of ${blockSize} (a unit's dot is an int32)`);
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  let lowShift = 0;
  while (lo >> lowShift < -32768 || hi >> lowShift > 32767) lowShift++;
  const hOfCode = new Int16Array(256);
  const lowOfCode = new Int16Array(256);
  for (let c = 0; c < 256; c++) {
    const v = valueTable[c] === PLANE_NAN_VALUE ? 0 : valueTable[c];
    hOfCode[c] = v >> lowShift;
    lowOfCode[c] = v & ((1 << lowShift) - 1);
  }
  const tiles = Math.ceil(n / TILE_COLUMNS);
  const kQuads = paddedK / 4;
  const split = lowShift > 0;
  const out: RepackedPlaneWeights = {
    h: new Int16Array(tiles * kQuads * 64),
    low: split ? new Int16Array(tiles * kQuads * 64) : null,
    lowQuads: split ? new Uint8Array(tiles * units) : null,
    lowShift,
    scales: new Float32Array(tiles * units * TILE_COLUMNS),
    shift, n, k, unit: blockSize, units, tiles, kQuads,
  };
  for (let row = 0; row < n; row++) {
    const tile = Math.floor(row / TILE_COLUMNS);
    const lane = row % TILE_COLUMNS;
    for (let j = 0; j < units; j++) {
      let nan = false;
      let lowQuads = 0;
      for (let i = 0; i < blockSize; i++) {
        const kk = j * blockSize + i;
        const code = codes[row * paddedK + kk];
        nan ||= valueTable[code] === PLANE_NAN_VALUE;
        const at = (tile * kQuads + (kk >> 2)) * 64 + 4 * lane + (kk & 3);
        out.h[at] = hOfCode[code];
        if (split) {
          out.low![at] = lowOfCode[code];
          if (lowOfCode[code] !== 0) lowQuads |= 1 << (i >> 2);
        }
      }
      if (split) out.lowQuads![tile * units + j] |= lowQuads;
      out.scales[(tile * units + j) * TILE_COLUMNS + lane] = nan ? NaN : blockScales[row * units + j];
    }
  }
  made.add(out);
  return Object.freeze(out);
}

// Plane weights this module made: the wasm kernel takes no other object (as matmul-repack.ts).
const made = new WeakSet<object>();

export function isRepackedPlaneWeights(w: unknown): w is RepackedPlaneWeights {
  return typeof w === 'object' && w !== null && made.has(w);
}
