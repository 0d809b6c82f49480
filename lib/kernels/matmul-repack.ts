// Weight repacking for the FP4×INT8 matmul kernels, in TypeScript (the wasm backend's twin of
// repackFp4Weights in native/matmul_scalar.cc; the layout is described in native/matmul.h).
// Tiles of 16 columns; per group of 8 k values 64 bytes, byte 4·l + t = code(k+t) | code(k+4+t) << 4.

import { guardBytes, guardDims, guardFloats } from './kernel-guards.js';

const TILE_COLUMNS = 16;

export interface RepackedFp4Weights {
  nibbles: Uint8Array; // [tiles][kGroups][64]
  scales: Float32Array; // [tiles][units][16]
  fp8Lanes: Uint16Array | null; // [tiles][units]
  fp8Codes: Uint8Array | null; // [tiles][units][unit][16]
  n: number;
  k: number;
  unit: number;
  units: number;
  tiles: number;
  kGroups: number;
}

/** Inputs as in the library's layouts: nibbles [n][paddedK/2], blockScales [n][blocks], FGMP extras or null. */
export function repackFp4Weights(
  nibbles: Uint8Array, blockScales: Float32Array, fp8Blocks: Uint8Array | null, fp8Codes: Uint8Array | null,
  n: number, k: number, blockSize: number,
): RepackedFp4Weights {
  guardDims('repackFp4Weights', n, k);
  if (blockSize !== 16 && blockSize !== 32) throw new RangeError(`repackFp4Weights: blockSize must be 16 or 32, got ${String(blockSize)}`);
  const units = Math.ceil(k / blockSize);
  nibbles = guardBytes('repackFp4Weights', 'nibbles', nibbles, (n * units * blockSize) / 2);
  blockScales = guardFloats('repackFp4Weights', 'blockScales', blockScales, n * units);
  if ((fp8Blocks == null) !== (fp8Codes == null)) throw new TypeError('repackFp4Weights: give both FGMP arrays or neither');
  if (fp8Blocks != null) {
    fp8Blocks = guardBytes('repackFp4Weights', 'fp8Blocks', fp8Blocks, n * units);
    fp8Codes = guardBytes('repackFp4Weights', 'fp8Codes', fp8Codes, n * units * blockSize);
  } else {
    fp8Blocks = null;
    fp8Codes = null;
  }
  const paddedK = units * blockSize;
  const tiles = Math.ceil(n / TILE_COLUMNS);
  const kGroups = paddedK / 8;
  const out: RepackedFp4Weights = {
    nibbles: new Uint8Array(tiles * kGroups * 64),
    scales: new Float32Array(tiles * units * TILE_COLUMNS),
    fp8Lanes: fp8Blocks ? new Uint16Array(tiles * units) : null,
    fp8Codes: fp8Blocks ? new Uint8Array(tiles * units * blockSize * TILE_COLUMNS) : null,
    n, k, unit: blockSize, units, tiles, kGroups,
  };
  const rowBytes = paddedK / 2;
  const code = (row: number, col: number) => {
    const byte = nibbles[row * rowBytes + (col >> 1)];
    return (col & 1) === 1 ? byte >> 4 : byte & 0x0f;
  };
  for (let tile = 0; tile < tiles; tile++) {
    for (let lane = 0; lane < TILE_COLUMNS; lane++) {
      const row = tile * TILE_COLUMNS + lane;
      if (row >= n) break;
      for (let g = 0; g < kGroups; g++) {
        const dst = (tile * kGroups + g) * 64 + 4 * lane;
        for (let t = 0; t < 4; t++) out.nibbles[dst + t] = code(row, 8 * g + t) | (code(row, 8 * g + 4 + t) << 4);
      }
      for (let j = 0; j < units; j++) {
        out.scales[(tile * units + j) * TILE_COLUMNS + lane] = blockScales[row * units + j];
        if (fp8Blocks && fp8Blocks[row * units + j]) {
          // An E4M3 NaN code makes the reference's dot product NaN; the integer lanes have no
          // NaN, so the lane's multiplier carries it instead (README.md, "Block matmul": NaN and Inf).
          if (holdsE4m3Nan(fp8Codes!, row * paddedK + j * blockSize, blockSize)) out.scales[(tile * units + j) * TILE_COLUMNS + lane] = NaN;
          out.fp8Lanes![tile * units + j] |= 1 << lane;
          for (let i = 0; i < blockSize; i++) {
            out.fp8Codes![((tile * units + j) * blockSize + i) * TILE_COLUMNS + lane] = fp8Codes![row * paddedK + j * blockSize + i];
          }
        }
      }
    }
  }
  made.add(out);
  return Object.freeze(out);
}

function holdsE4m3Nan(codes: Uint8Array, start: number, count: number): boolean {
  for (let i = start; i < start + count; i++) if ((codes[i] & 0x7f) === 0x7f) return true;
  return false;
}

// Repacked weights this module made: the wasm kernel takes no other object, so a forged
// { nibbles, scales, n, k } cannot make it read past the data it copies into its memory.
const made = new WeakSet<object>();

export function isRepackedFp4Weights(w: unknown): w is RepackedFp4Weights {
  return typeof w === 'object' && w !== null && made.has(w);
}
