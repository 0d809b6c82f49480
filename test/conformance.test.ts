// Conformance: every backend against vectors from independent references (ml_dtypes for element
// casts, the OCP MX rule computed with numpy + ml_dtypes and microxcaling's own outputs for MX
// blocks, torchao's two-level recipe for NVFP4). See test/fixtures/README.md for provenance.
import { describe, expect, it } from 'vitest';
import { decode, dequantize, encode, quantize, unpack, type BlockFormatName, type ElementFormatName } from '../lib/index.js';
import { ELEMENT_FORMATS } from '../lib/core/formats.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { bitsOf, firstBitDifference, firstByteDifference, fixture } from './helpers/fixtures.js';

const ELEMENTS: ElementFormatName[] = ['e2m1', 'e2m3', 'e3m2', 'e4m3', 'e5m2', 'e8m0'];
const MX: Array<[BlockFormatName, number]> = [
  ['mxfp4', 4], ['mxfp6_e2m3', 6], ['mxfp6_e3m2', 6], ['mxfp8_e4m3', 8], ['mxfp8_e5m2', 8], ['mxint8', 8],
];
const MICROXCALING: Record<string, string> = {
  mxfp4: 'mx_fp4_dequantized_f32.bin', mxfp6_e2m3: 'mx_fp6_e2m3_dequantized_f32.bin', mxfp6_e3m2: 'mx_fp6_e3m2_dequantized_f32.bin',
  mxfp8_e4m3: 'mx_fp8_e4m3_dequantized_f32.bin', mxfp8_e5m2: 'mx_fp8_e5m2_dequantized_f32.bin', mxint8: 'mx_int8_dequantized_f32.bin',
};
const hasNaN = (f: ElementFormatName) => ELEMENT_FORMATS[f].nanCode >= 0;
const isNaNBits = (b: number) => (b & 0x7fffffff) > 0x7f800000;

function encodeBits(bits: Uint32Array, format: ElementFormatName): Uint8Array {
  const x = new Float32Array(bits.buffer, bits.byteOffset, bits.length);
  return encode(x, format, { nan: 'zero' });
}

describe.each(testedBackends())('conformance on %s', (backend) => {
  useBackend(backend);

  describe.each(ELEMENTS)('element %s (ml_dtypes)', (format) => {
    it('matches ml_dtypes on every representable value, midpoint, ±1–2 ulp and special', () => {
      const inputs = fixture.u32(`elements/${format}_inputs_u32.bin`);
      const want = fixture.u8(`elements/${format}_codes_u8.bin`);
      const got = encodeBits(inputs, format);
      let checked = 0;
      for (let i = 0; i < inputs.length; i++) {
        if (!hasNaN(format) && isNaNBits(inputs[i])) continue; // our documented NaN rule, tested below
        checked++;
        if (got[i] !== want[i]) {
          throw new Error(`${format}: bits 0x${inputs[i].toString(16)} gave code 0x${got[i].toString(16)}, ml_dtypes 0x${want[i].toString(16)}`);
        }
      }
      expect(checked).toBeGreaterThan(1000);
    });

    it('matches ml_dtypes at every breakpoint of the float32 → code map, and one below it', () => {
      const bp = fixture.json<{ positive: number[][]; negative: number[][] }>(`elements/${format}_breakpoints.json`);
      for (const list of [bp.positive, bp.negative]) {
        const probe: number[] = [];
        const expected: number[] = [];
        for (let i = 0; i < list.length; i++) {
          const [start, code] = list[i];
          const prevCode = i > 0 ? list[i - 1][1] : -1;
          if (!hasNaN(format) && isNaNBits(start)) continue;
          probe.push(start); expected.push(code);
          if (i > 0 && !(!hasNaN(format) && isNaNBits(start - 1))) { probe.push(start - 1); expected.push(prevCode); }
          // The last pattern of the range, just before the next breakpoint.
          const end = i + 1 < list.length ? list[i + 1][0] - 1 : (start | 0x7fffffff) >>> 0;
          if (!(!hasNaN(format) && isNaNBits(end))) { probe.push(end); expected.push(code); }
        }
        const got = encodeBits(Uint32Array.from(probe), format);
        for (let i = 0; i < probe.length; i++) {
          if (got[i] !== expected[i]) {
            throw new Error(`${format}: bits 0x${probe[i].toString(16)} gave 0x${got[i].toString(16)}, ml_dtypes 0x${expected[i].toString(16)}`);
          }
        }
        expect(probe.length).toBeGreaterThan(0);
      }
      expect(bp.positive.length).toBeGreaterThan(4);
    });

    it('decodes every code exactly as ml_dtypes (sign of −0 kept)', () => {
      const want = fixture.f32(`elements/${format}_decode_f32.bin`);
      const codes = Uint8Array.from(want, (_v, i) => i);
      const got = decode(codes, format);
      expect(firstBitDifference(got, want)).toBe(-1);
      if (format !== 'e8m0') expect(Object.is(got[ELEMENT_FORMATS[format].signBit], -0)).toBe(true);
    });
  });

  it('NaN into a format without NaN throws by default and is +0 with { nan: "zero" }', () => {
    const x = new Float32Array([1, NaN, -2]);
    for (const f of ['e2m1', 'e2m3', 'e3m2'] as const) {
      expect(() => encode(x, f)).toThrow(/input\[1\] is NaN/);
      expect(encode(x, f, { nan: 'zero' })[1]).toBe(0);
    }
    expect(encode(x, 'e4m3')[1]).toBe(0x7f);
    expect(encode(new Float32Array([-NaN]), 'e4m3')[0] & 0x7f).toBe(0x7f);
  });

  describe.each(MX)('%s block quantization', (format, bits) => {
    it('gives the OCP MX scales, element codes and values (numpy + ml_dtypes reference)', () => {
      const blocks = fixture.f32('mx/blocks_f32.bin');
      const rows = blocks.length / 32;
      const q = quantize(blocks, { format, shape: [rows, 32] });
      expect(firstByteDifference(q.scales, fixture.u8(`mx/${format}_scales_u8.bin`))).toBe(-1);
      expect(firstByteDifference(unpack(q.data, bits as 4 | 6 | 8, rows * 32), fixture.u8(`mx/${format}_codes_u8.bin`))).toBe(-1);
      expect(firstBitDifference(dequantize(q), fixture.f32(`mx/${format}_dequant_f32.bin`))).toBe(-1);
    });

    it("equals microxcaling's own dequantized output (its −0 → +0 aside)", () => {
      const input = fixture.f32('mx/microxcaling/mx_in_f32.bin');
      const want = fixture.f32(`mx/microxcaling/${MICROXCALING[format]}`);
      const got = dequantize(quantize(input, { format, shape: [input.length / 32, 32] }));
      const inBits = bitsOf(input);
      let exact = 0;
      for (let i = 0; i < got.length; i++) {
        const same = Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]));
        const zeroSign = got[i] === 0 && want[i] === 0 && inBits[i] >>> 31 === 1;
        if (!same && !zeroSign) throw new Error(`${format}: element ${i} (${input[i]}) gave ${got[i]}, microxcaling ${want[i]}`);
        if (same) exact++;
      }
      expect(exact).toBeGreaterThan(got.length * 0.9);
    });
  });

  describe('nvfp4 (torchao two-level recipe)', () => {
    const manifest = fixture.json<{ nvfp4: Record<string, { rows: number; cols: number; tensorScale: number; calibrated: boolean; tensorScaleBits: number }> }>('manifest.json');
    it.each(Object.entries(manifest.nvfp4))('%s', (key, m) => {
      const x = fixture.f32(`nvfp4/${key}_input_f32.bin`);
      const opts = { format: 'nvfp4' as const, shape: [m.rows, m.cols], ...(m.calibrated ? { tensorScale: m.tensorScale } : {}) };
      const q = quantize(x, opts);
      expect(new Uint32Array(new Float32Array([q.tensorScale!]).buffer)[0]).toBe(m.tensorScaleBits);
      expect(firstByteDifference(q.scales, fixture.u8(`nvfp4/${key}_scales_u8.bin`))).toBe(-1);
      expect(firstByteDifference(q.data, fixture.u8(`nvfp4/${key}_data_u8.bin`))).toBe(-1);
      expect(firstBitDifference(dequantize(q), fixture.f32(`nvfp4/${key}_dequant_f32.bin`))).toBe(-1);
      if (key.startsWith('bf16')) {
        // The same tensor given as bf16 bits gives the same bytes: widening is exact.
        const bf16 = Uint16Array.from(bitsOf(x), (b) => b >>> 16);
        const qb = quantize(bf16, { ...opts, dtype: 'bf16' });
        expect(firstByteDifference(qb.data, q.data)).toBe(-1);
        expect(firstByteDifference(qb.scales, q.scales)).toBe(-1);
      }
    });
  });
});
