// The wasm backend's plane weights (lib/kernels/matmul-planes-repack.ts, the TypeScript twin of
// native repackPlaneWeights): the split v = h·2^s + l and which groups of 4 k carry low bits, from
// E4M3's decode table; and the wasm kernels' argument checks around them (the products themselves
// are checked bit for bit against the reference in matmul-cross-backend.test.ts).
import { describe, expect, it } from 'vitest';
import { decode } from '../lib/index.js';
import { PLANE_NAN_VALUE, isRepackedPlaneWeights, repackPlaneWeights } from '../lib/kernels/matmul-planes-repack.js';
import { loadWasmKernels } from '../lib/kernels/wasm.js';

/** E4M3 code → its value in units of 2^-9 (from fp4kit's conformance-tested decoder). */
function e4m3Table(): Int32Array {
  const values = decode(Uint8Array.from({ length: 256 }, (_, c) => c), 'e4m3');
  return Int32Array.from(values, (v) => (Number.isNaN(v) ? PLANE_NAN_VALUE : v * 512));
}

describe('plane weights for the wasm kernel', () => {
  it('splits E4M3 integers as h·8 + l (h within int16) and flags exactly the groups of 4 k with low bits', () => {
    const table = e4m3Table();
    const [n, k] = [20, 64];
    const codes = new Uint8Array(n * k).fill(0x50); // 2^(10−7)·1 = 8: 4096 units, no low bits
    codes[3 * k + 40] = 0x11; // 2^(2−7)·1.125 = 18 units: h = 2, l = 2; tile 0, unit 1
    codes[18 * k + 5] = 0x7f; // NaN: tile 1, unit 0
    const scales = new Float32Array(n * 2).fill(0.5);
    const p = repackPlaneWeights(codes, table, 9, scales, n, k);
    expect(isRepackedPlaneWeights(p)).toBe(true);
    expect(p.lowShift).toBe(3);
    expect(Array.from(p.lowQuads!)).toEqual([0, 1 << 2, 0, 0]); // [tile][unit]: k 40 = unit 1, group 2 (40 − 32 = 8 → 8 / 4)
    for (let c = 0; c < 256; c++) {
      if (table[c] === PLANE_NAN_VALUE) continue;
      expect((table[c] >> 3) * 8 + (table[c] & 7)).toBe(table[c]);
      expect(Math.abs(table[c] >> 3)).toBeLessThan(32768);
    }
    // element (row 3, k 40): tile 0, quad 10, lane 3, position 0
    const at = (0 * p.kQuads + 10) * 64 + 4 * 3 + 0;
    expect([p.h[at], p.low![at]]).toEqual([2, 2]);
    expect(Number.isNaN(p.scales[(1 * p.units + 0) * 16 + 2])).toBe(true); // row 18 = tile 1, lane 2
    expect(p.scales[(1 * p.units + 0) * 16 + 4]).toBe(0); // padding lane (row 20)
    // INT8 values fit int16 whole: no split, no low plane
    const int8 = Int32Array.from({ length: 256 }, (_, c) => (c < 128 ? c : c - 256));
    const q = repackPlaneWeights(new Uint8Array(16 * 32), int8, 6, new Float32Array(16), 16, 32);
    expect([q.lowShift, q.low, q.lowQuads]).toEqual([0, null, null]);
  });

  it('refuses bad tables, shapes and forged weights; `into` joins FGMP weights once', () => {
    const table = e4m3Table();
    expect(() => repackPlaneWeights(new Uint8Array(32), Int32Array.from({ length: 256 }, () => 2 ** 23), 9, new Float32Array(1), 1, 32)).toThrow(/\(-2\^19, 2\^19\) for blocks of 32/);
    // A unit's dot is an int32: 2^19 at blocks of 32 wrapped it (a wrong product on every backend); 2^19 − 1 fits.
    expect(() => repackPlaneWeights(new Uint8Array(32), Int32Array.from({ length: 256 }, () => 2 ** 19), 9, new Float32Array(1), 1, 32)).toThrow(/\(-2\^19, 2\^19\)/);
    expect(() => repackPlaneWeights(new Uint8Array(32), Int32Array.from({ length: 256 }, () => 2 ** 19 - 1), 9, new Float32Array(1), 1, 32)).not.toThrow();
    expect(() => repackPlaneWeights(new Uint8Array(32), table, 9, new Float32Array(1), 1, 32, 24)).toThrow(/blockSize/);
    expect(() => repackPlaneWeights(new Uint8Array(31), table, 9, new Float32Array(1), 1, 32)).toThrow(RangeError);
    const kernels = loadWasmKernels().matmul!;
    const forged = { h: new Int16Array(64), scales: new Float32Array(16), n: 1, k: 4, unit: 32, units: 1, tiles: 1, kQuads: 8, lowShift: 0, low: null, lowQuads: null, shift: 9 };
    expect(() => kernels.matmulFp4Int8(forged, new Uint8Array(32), new Float32Array(1), 1, null, new Float32Array(1))).toThrow(/repackFp4Weights or repackPlaneWeights/);
    const fp4 = kernels.repackFp4Weights(new Uint8Array(8 * 16), new Float32Array(2), null, null, 1, 32, 16);
    expect(kernels.repackPlaneWeights!(new Uint8Array(32), table, 9, new Float32Array(2), 1, 32, 16, fp4)).toBe(fp4);
    expect(() => kernels.repackPlaneWeights!(new Uint8Array(32), table, 9, new Float32Array(2), 1, 32, 16, fp4)).toThrow(/without planes/);
    const other = kernels.repackFp4Weights(new Uint8Array(8 * 16), new Float32Array(4), null, null, 2, 32, 16);
    expect(() => kernels.repackPlaneWeights!(new Uint8Array(32), table, 9, new Float32Array(2), 1, 32, 16, other)).toThrow(/another shape/);
    const alone = kernels.repackPlaneWeights!(new Uint8Array(32), table, 9, new Float32Array(1), 1, 32);
    kernels.releaseFp4Weights(alone);
    expect(() => kernels.matmulFp4Int8(alone, new Uint8Array(32), new Float32Array(1), 1, null, new Float32Array(1))).toThrow(/released/);
  });
});
