// Cross-backend identity: on large random and adversarial tensors every backend gives the same
// bytes as the pure-TS reference, for every format, rounding mode, scale rule and input dtype.
import { describe, expect, it } from 'vitest';
import { decode, dequantize, encode, fgmpImpacts, quantize, quantizeAsync, withBackend, type BlockFormatName, type DtypeName, type ElementFormatName } from '../lib/index.js';
import type { QuantizeOptions } from '../lib/core/quantize.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { adversarial, toBf16, toF16, variedMagnitude } from './helpers/data.js';
import { firstBitDifference, firstByteDifference } from './helpers/fixtures.js';
import { kernelsFor } from '../lib/kernels/registry.js';

const MX: BlockFormatName[] = ['mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'];
const ELEMENTS: ElementFormatName[] = ['e2m1', 'e2m3', 'e3m2', 'e4m3', 'e5m2', 'e8m0'];
const SHAPES: number[][] = [[61, 200], [1, 4096], [256, 512]];
const ROUNDINGS = [{ rounding: 'nearest' as const }, { rounding: 'stochastic' as const, seed: 1 }, { rounding: 'stochastic' as const, seed: 0xdeadbeef }];

function inputs(n: number, seed: number, specials: boolean): Array<[DtypeName, Float32Array | Uint16Array]> {
  const x = seed % 2 === 0 ? variedMagnitude(n, seed) : adversarial(n, seed, specials);
  // Without specials the inputs must stay finite in every dtype: pull values past f16's range in.
  const x16 = specials ? x : x.map((v) => Math.max(-65504, Math.min(65504, v)));
  return [['f32', x], ['bf16', toBf16(x)], ['f16', toF16(x16)]];
}

const others = testedBackends().filter((b) => b !== 'js');
// Every unwrapped call (the "want" side) runs on the pure-TS reference; without this it ran on
// the default backend — the best one loaded, native — and compared native with itself.
useBackend('js');

describe.each(others)('%s gives the same bits as js', (backend) => {
  describe.each(MX)('%s', (format) => {
    it.each(SHAPES)('shape [%i, %i], every dtype, rounding and scale rule', (rows, cols) => {
      for (const seed of [2, 3]) {
        for (const [dtype, x] of inputs(rows * cols, seed * 7919 + cols, true)) {
          for (const r of ROUNDINGS) {
            for (const scaleRule of ['floor', 'ceil'] as const) {
              const opts: QuantizeOptions = { format, shape: [rows, cols], dtype, scaleRule, ...r };
              const want = quantize(x, opts);
              const got = withBackend(backend, () => quantize(x, opts));
              const where = `${format} ${dtype} ${r.rounding} ${scaleRule} seed ${seed}`;
              expect(firstByteDifference(got.scales, want.scales), where).toBe(-1);
              expect(firstByteDifference(got.data, want.data), where).toBe(-1);
              expect(firstBitDifference(withBackend(backend, () => dequantize(want)), dequantize(want)), where).toBe(-1);
            }
          }
        }
      }
    });
  });

  it.each(SHAPES)('nvfp4 shape [%i, %i], every dtype and rounding, default and calibrated tensor scale', (rows, cols) => {
    for (const seed of [4, 5]) {
      for (const [dtype, x] of inputs(rows * cols, seed * 104729 + cols, false)) {
        for (const r of ROUNDINGS) {
          for (const tensorScale of [undefined, 1e-3, 2 ** -126]) {
            const opts: QuantizeOptions = { format: 'nvfp4', shape: [rows, cols], dtype, tensorScale, ...r };
            const want = quantize(x, opts);
            const got = withBackend(backend, () => quantize(x, opts));
            const where = `nvfp4 ${dtype} ${r.rounding} t=${tensorScale} seed ${seed}`;
            expect(got.tensorScale, where).toBe(want.tensorScale);
            expect(firstByteDifference(got.scales, want.scales), where).toBe(-1);
            expect(firstByteDifference(got.data, want.data), where).toBe(-1);
            expect(firstBitDifference(withBackend(backend, () => dequantize(want)), dequantize(want)), where).toBe(-1);
          }
        }
      }
    }
  });

  // quantize() refuses NaN for nvfp4, so this is the kernel's own contract: a block holding a
  // NaN (of either sign, any payload) gets the NaN scale 0x7f and element codes 0 — before, js
  // and wasm wrote 0x7 (the quotient's sign lost), native scalar 0xF for −NaN, SIMD 0 or 0x8.
  it('nvfp4 kernel: a block holding a NaN has scale 0x7f and element codes 0, other blocks as js', () => {
    const [rows, cols] = [24, 16 * 37 + 5]; // whole groups of 16 blocks, groups of 4, and a short block
    const x = variedMagnitude(rows * cols, 77);
    const bits = new Uint32Array(x.buffer);
    const nans = [0x7fc00000, 0xffc00000, 0x7f810000, 0xff812345]; // NaN in bf16 too
    for (let i = 0; i < x.length; i += 1 + ((i * 2654435761) >>> 0) % 97) bits[i] = nans[i % 4];
    const nanBlocks = new Set<number>();
    for (let i = 0; i < x.length; i++) if (Number.isNaN(x[i])) nanBlocks.add(Math.floor(i / cols) * Math.ceil(cols / 16) + Math.floor((i % cols) / 16));
    const blocks = rows * Math.ceil(cols / 16);
    expect(nanBlocks.size).toBeGreaterThan(50);
    expect(nanBlocks.size).toBeLessThan(blocks - 50);
    for (const [dtype, src] of [[0, x], [1, toBf16(x)]] as const) {
      for (const rounding of [0, 1]) {
        const run = (b: typeof backend | 'js') => {
          const a = { format: 6, rows, cols, src, dtype, data: new Uint8Array(blocks * 8), scales: new Uint8Array(blocks), tensorScale: 0.75, scaleRule: 0, rounding, seed: 9, firstIndex: 0 };
          kernelsFor(b)!.quantizeBlocks(a);
          return a;
        };
        const want = run('js');
        const got = run(backend);
        const where = `dtype ${dtype} rounding ${rounding}`;
        for (const blk of nanBlocks) {
          expect(want.scales[blk], where).toBe(0x7f);
          expect(Array.from(want.data.subarray(blk * 8, blk * 8 + 8)), where).toEqual(new Array(8).fill(0));
        }
        expect(firstByteDifference(got.scales, want.scales), where).toBe(-1);
        expect(firstByteDifference(got.data, want.data), where).toBe(-1);
      }
    }
  });

  it.each(ELEMENTS)('element casts to %s, every dtype and rounding', (format) => {
    for (const [dtype, x] of [...inputs(20000, 11, true), ...inputs(20000, 12, true)]) {
      for (const r of ROUNDINGS) {
        const opts = { dtype, nan: 'zero' as const, ...r };
        const want = encode(x, format, opts);
        const got = withBackend(backend, () => encode(x, format, opts));
        expect(firstByteDifference(got, want), `${format} ${dtype} ${r.rounding}`).toBe(-1);
      }
    }
    const codes = Uint8Array.from({ length: 4096 }, (_, i) => i % (format === 'e2m1' ? 16 : format.startsWith('e2m3') || format === 'e3m2' ? 64 : 256));
    expect(firstBitDifference(withBackend(backend, () => decode(codes, format)), decode(codes, format))).toBe(-1);
  });
});

// So the file always runs something, even where only the js backend loads.
it('the reference backend is always available', () => {
  expect(testedBackends()).toContain('js');
});

describe.each(others)('%s FGMP candidates equal the js reference', (backend) => {
  it.each([[37, 200], [64, 512], [1, 16]] as const)('shape [%i, %i]: impacts, mask, codes and scales, with and without clipping', (rows, cols) => {
    const x = variedMagnitude(rows * cols, rows + cols).map((v) => v * 1e-6);
    const perElement = variedMagnitude(rows * cols, 3).map((v) => Math.abs(v) * 1e-3);
    const perChannel = variedMagnitude(cols, 4).map((v) => Math.abs(v));
    for (const fisher of [undefined, perElement, perChannel]) {
      for (const clipping of [true, false]) {
        const opts = { format: 'fgmp' as const, shape: [rows, cols], fisher, clipping, fp4Fraction: 0.6 };
        const want = quantize(x, opts);
        const got = withBackend(backend, () => quantize(x, opts));
        const where = `fisher ${fisher === undefined ? 'none' : fisher.length} clipping ${clipping}`;
        expect(firstByteDifference(got.mask, want.mask), where).toBe(-1);
        expect(firstByteDifference(got.data, want.data), where).toBe(-1);
        expect(firstByteDifference(got.scales, want.scales), where).toBe(-1);
        expect(got.threshold, where).toBe(want.threshold);
        const wantImpacts = fgmpImpacts(x, opts);
        const gotImpacts = withBackend(backend, () => fgmpImpacts(x, opts));
        expect(Array.from(gotImpacts), where).toEqual(Array.from(wantImpacts));
      }
    }
  });

  // The kernels read bf16/f16 themselves (the reference widens first): every finite pattern class,
  // f16 subnormals included, sync and async (the addon's job reads a shared source in place).
  it.each(['bf16', 'f16'] as const)('%s sources: the bytes of the js reference, sync, async and from a SharedArrayBuffer', async (dtype) => {
    const [rows, cols] = [29, 300];
    const f = variedMagnitude(rows * cols, 7);
    const bits = dtype === 'bf16' ? toBf16(f) : toF16(f.map((v) => Math.max(-6e4, Math.min(6e4, v))));
    for (let i = 0; i < bits.length; i += 97) bits[i] = dtype === 'f16' ? 1 + (i % 1023) : bits[i] & 0x807f; // subnormals
    const shared = new Uint16Array(new SharedArrayBuffer(bits.byteLength));
    shared.set(bits);
    const opts = { format: 'fgmp' as const, shape: [rows, cols], dtype, fp4Fraction: 0.6 };
    const want = quantize(bits, opts);
    for (const [how, got] of [
      ['sync', withBackend(backend, () => quantize(bits, opts))],
      ['async', await withBackend(backend, () => quantizeAsync(bits, opts))],
      ['async, shared', await withBackend(backend, () => quantizeAsync(shared, opts))],
    ] as const) {
      expect(firstByteDifference(got.mask, want.mask), how).toBe(-1);
      expect(firstByteDifference(got.data, want.data), how).toBe(-1);
      expect(firstByteDifference(got.scales, want.scales), how).toBe(-1);
    }
  });
});
