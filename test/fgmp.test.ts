// FGMP: target fractions hit exactly, deterministic ties, linear-time selection, Fisher-weighted
// clipping that beats absmax, online activation precision, and the storage arithmetic.
import { describe, expect, it } from 'vitest';
import {
  calibrateFgmpActivations, dequantize, encode, decode, fgmpBitsPerElement, fgmpImpacts, quantize, quantizeAsync, quantizeFgmpActivations,
  selectThreshold, assignPrecision, forTensor, type FgmpTensor,
} from '../lib/index.js';
import { quickselect, selectAcross, selectNonNegative, isFp8Block, countFp8Blocks } from '../lib/fgmp/select.js';
import { packFgmpStream } from '../lib/fgmp/stream.js';
import { E4M3_VALUES } from '../lib/fgmp/blocks.js';
import { gaussian, rng, toBf16, toF16 } from './helpers/data.js';

function laplaceWeights(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = r() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.02 * (r() < 0.01 ? 20 : 1);
  });
}

function fisherLike(n: number, seed: number): Float32Array {
  const r = rng(seed);
  // Heavy-tailed positive sensitivities, as squared gradients are.
  return Float32Array.from({ length: n }, () => (-Math.log(Math.max(r(), 1e-9))) ** 3);
}

function weightedError(x: Float32Array, q: Float32Array, f: Float32Array): number {
  let e = 0;
  for (let i = 0; i < x.length; i++) e += f[i] * (x[i] - q[i]) ** 2;
  return e;
}

/** A 16-bit source's float32 values, widened here (not by the kernels' own code). */
function widenedHere(src: Uint16Array, dtype: 'bf16' | 'f16'): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    if (dtype === 'bf16') out[i] = new Float32Array(new Uint32Array([h << 16]).buffer)[0];
    else {
      const e = (h >> 10) & 31, m = h & 0x3ff, sign = h & 0x8000 ? -1 : 1;
      out[i] = sign * (e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15));
    }
  }
  return out;
}

describe('selection', () => {
  it('quickselect returns the k-th smallest on random data with many duplicates', () => {
    const r = rng(1);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(r() * 500);
      const v = Float64Array.from({ length: n }, () => Math.floor(r() * 20));
      const sorted = [...v].sort((a, b) => a - b);
      const k = Math.floor(r() * n);
      expect(quickselect(v.slice(), k)).toBe(sorted[k]);
    }
  });

  it('selectNonNegative returns the k-th smallest of non-negative values (the radix pass past 4096 values)', () => {
    const r = rng(2);
    const kinds: Array<[string, () => number]> = [
      ['Fisher-like impacts over 40 binades', () => r() * 2 ** Math.floor(r() * 40 - 30)],
      ['few distinct values', () => Math.floor(r() * 5)],
      ['all equal', () => 0.75],
      ['zeros and infinities among them', () => (r() < 0.2 ? 0 : r() < 0.1 ? Infinity : r())],
      ['one narrow range (one bucket)', () => 1 + r() * 2 ** -20],
    ];
    for (const [, draw] of kinds) {
      for (const n of [1, 4095, 4096, 20_000]) {
        const v = Float64Array.from({ length: n }, draw);
        const sorted = [...v].sort((a, b) => a - b);
        for (const k of [0, n >> 1, n - 1, Math.floor(r() * n)]) expect(selectNonNegative(v.slice(), k)).toBe(sorted[k]);
      }
    }
  });

  it('selectAcross without a copy (large models): more than 2^20 values sharing their top bits are split by further radix passes', () => {
    const n = (1 << 20) + 200_000;
    const families: Array<[string, (i: number) => number]> = [
      ['all equal (every bit decided by the passes)', () => 0.75],
      ['zeros with a few others', (i) => (i % 100_003 === 0 ? i : 0)],
      ['differ only in the lowest 16 bits', (i) => 1 + (i % 5000) * 2 ** -52],
      ['differ in bits 16–31', (i) => 1 + (i % 5000) * 2 ** -36],
      ['differ in bits 32–47', (i) => 1 + (i % 5000) * 2 ** -20],
    ];
    const r = rng(5);
    for (const [name, f] of families) {
      const v = Float64Array.from({ length: n }, (_x, i) => f(i));
      const sorted = v.slice().sort();
      // As three lists (one of them twice), copy limit 0: the radix passes over the lists themselves.
      const third = Math.floor(n / 3);
      const lists = [v.subarray(0, third), v.subarray(third, 2 * third), v.subarray(2 * third), v.subarray(0, third)];
      const all = [...v, ...v.subarray(0, third)].sort((x, y) => x - y);
      for (const k of [0, n >> 1, n - 1, Math.floor(r() * n)]) {
        expect(selectNonNegative(v.slice(), k), `${name}, k = ${k}`).toBe(sorted[k]);
        expect(selectAcross('test', lists, all.length, k, 0), `${name}, lists, k = ${k}`).toBe(all[k]);
      }
    }
  });

  it('selectThreshold over many lists (the same one passed many times) gives the selection of their concatenation', () => {
    const r = rng(6);
    const a = Float32Array.from({ length: 70_000 }, () => Math.floor(r() * 300) / 7);
    const b = Float64Array.from({ length: 5000 }, () => r());
    const lists = [a, b, a, a, b, a];
    const whole = new Float64Array(lists.reduce((n, t) => n + t.length, 0));
    let o = 0;
    for (const t of lists) for (let i = 0; i < t.length; i++) whole[o++] = t[i];
    for (const p of [0.01, 0.3, 0.7, 1]) {
      const sel = selectThreshold(lists, p);
      const ref = selectThreshold([whole], p);
      expect({ ...sel, ties: undefined }).toEqual({ ...ref, ties: undefined });
      expect(sel.ties.reduce((x, y) => x + y, 0)).toBe(ref.tiesTaken);
    }
  });

  it('hits the target FP4 fraction exactly, ties going to lower block indices', () => {
    const impacts = new Float64Array(100).fill(1); // all tied
    const sel = selectThreshold([impacts], 0.37);
    expect(sel.fp4Blocks).toBe(37);
    const [mask] = assignPrecision([impacts], sel);
    for (let b = 0; b < 100; b++) expect(isFp8Block(mask, b)).toBe(b >= 37);
  });

  it('a model-wide threshold over several tensors equals one selection over their concatenation', () => {
    const r = rng(2);
    const t1 = Float64Array.from({ length: 300 }, () => Math.floor(r() * 50));
    const t2 = Float64Array.from({ length: 200 }, () => Math.floor(r() * 50));
    const sel = selectThreshold([t1, t2], 0.6);
    const [m1, m2] = assignPrecision([t1, t2], sel);
    const joined = new Float64Array([...t1, ...t2]);
    const [mj] = assignPrecision([joined], selectThreshold([joined], 0.6));
    for (let b = 0; b < 500; b++) expect(b < 300 ? isFp8Block(m1, b) : isFp8Block(m2, b - 300)).toBe(isFp8Block(mj, b));
    expect(countFp8Blocks(m1, 300) + countFp8Blocks(m2, 200)).toBe(200);
  });

  it('rejects fractions outside [0, 1] and negative impacts', () => {
    expect(() => selectThreshold([new Float64Array(4)], 1.5)).toThrow(/fp4Fraction/);
    expect(() => selectThreshold([Float64Array.from([1, -1])], 0.5)).toThrow(/non-negative/);
  });
});

describe('the block stream', () => {
  // The layout spelled out block by block (stream.ts's header): FP8 blocks' 16 codes, FP4 blocks'
  // 8 bytes of nibbles (element 2i low) with their scale byte in `scales`, in block order.
  function expectedStream(mask: Uint8Array, blocks: number, c4: Uint8Array, s4: Uint8Array, c8: Uint8Array) {
    const data: number[] = [];
    const scales: number[] = [];
    for (let b = 0; b < blocks; b++) {
      if ((mask[b >> 3] >> (b & 7)) & 1) for (let i = 0; i < 16; i++) data.push(c8[16 * b + i]);
      else {
        for (let i = 0; i < 16; i += 2) data.push(c4[16 * b + i] | (c4[16 * b + i + 1] << 4));
        scales.push(s4[b]);
      }
    }
    return { data: Uint8Array.from(data), scales: Uint8Array.from(scales) };
  }

  it.each([0, 1, 2, 3])('packFgmpStream writes that layout, arrays starting %i bytes past a word boundary', (shift) => {
    const random = rng(91 + shift);
    const blocks = 1037;  // not a multiple of 8: a partial mask byte
    const byte = (n: number, max: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * max));
    const at = (src: Uint8Array) => {  // the same bytes `shift` bytes into a larger buffer
      const view = new Uint8Array(new ArrayBuffer(src.length + 8), shift, src.length);
      view.set(src);
      return view;
    };
    const mask = byte(Math.ceil(blocks / 8), 256);
    const c4 = at(byte(blocks * 16, 16));
    const s4 = byte(blocks, 256);
    const c8 = at(byte(blocks * 16, 256));
    const want = expectedStream(mask, blocks, c4, s4, c8);
    const data = at(new Uint8Array(want.data.length));
    const scales = new Uint8Array(want.scales.length);
    packFgmpStream(mask, blocks, c4, s4, c8, data, scales);
    expect(Buffer.from(data).equals(Buffer.from(want.data))).toBe(true);
    expect(Buffer.from(scales).equals(Buffer.from(want.scales))).toBe(true);
    // In ranges of blocks (quantizeFgmpAsync's steps), each where the blocks before it end, cut
    // inside mask bytes too: the same bytes. Last range first: each writes its own bytes only.
    const cuts = [0, 1, 13, 16, 500, 1036, blocks];
    const inRanges = { data: at(new Uint8Array(want.data.length)), scales: new Uint8Array(want.scales.length) };
    for (let k = cuts.length - 2; k >= 0; k--) {
      const fp8Before = Array.from({ length: cuts[k] }, (_v, b) => (mask[b >> 3] >> (b & 7)) & 1).reduce((a, v) => a + v, 0);
      packFgmpStream(mask, cuts[k + 1], c4, s4, c8, inRanges.data, inRanges.scales, cuts[k], fp8Before);
      const fp4Before = cuts[k] - fp8Before;
      expect(inRanges.data.subarray(0, fp4Before * 8 + fp8Before * 16).every((v) => v === 0), `before block ${cuts[k]}`).toBe(true);
      expect(inRanges.scales.subarray(0, fp4Before).every((v) => v === 0), `before block ${cuts[k]}`).toBe(true);
    }
    expect(Buffer.from(inRanges.data).equals(Buffer.from(want.data))).toBe(true);
    expect(Buffer.from(inRanges.scales).equals(Buffer.from(want.scales))).toBe(true);
  });
});

describe('fgmp weights', () => {
  const rows = 64, cols = 256;
  const w = laplaceWeights(rows * cols, 3);
  const fisher = fisherLike(rows * cols, 4);

  it('bf16 and f16 sources, several quantizeAsync calls at once and sync calls between them: each the bytes of its own float32 copy', async () => {
    // The widened copy of a 16-bit source is reused scratch: every call must have read it before the next takes it.
    const sources = [toBf16(gaussian(rows * cols, 30, 2)), toF16(gaussian(rows * cols, 31, 2)), toBf16(gaussian(rows * cols, 32, 5))];
    const dtypes = ['bf16', 'f16', 'bf16'] as const;
    const want = sources.map((src, i) => quantize(widenedHere(src, dtypes[i]), { format: 'fgmp', shape: [rows, cols], fisher }) as FgmpTensor);
    const pending = sources.map((src, i) => quantizeAsync(src, { format: 'fgmp', shape: [rows, cols], dtype: dtypes[i], fisher }));
    const between = quantize(sources[1], { format: 'fgmp', shape: [rows, cols], dtype: 'f16', fisher }) as FgmpTensor;
    const got = (await Promise.all(pending)) as FgmpTensor[];
    for (let i = 0; i < 3; i++) {
      expect(Buffer.compare(got[i].data, want[i].data), `source ${i}`).toBe(0);
      expect(Buffer.compare(got[i].mask, want[i].mask)).toBe(0);
      expect(Buffer.compare(got[i].scales, want[i].scales)).toBe(0);
    }
    expect(Buffer.compare(between.data, want[1].data)).toBe(0);
  });

  it.each([0, 0.5, 0.7, 0.9, 1])('stores exactly round(%f · blocks) FP4 blocks and every FP8 block has impact ≥ every FP4 block', (p) => {
    const q = quantize(w, { format: 'fgmp', shape: [rows, cols], fisher, fp4Fraction: p }) as FgmpTensor;
    const blocks = rows * cols / 16;
    const fp8 = countFp8Blocks(q.mask, blocks);
    expect(blocks - fp8).toBe(Math.round(p * blocks));
    expect(q.fp4Fraction).toBeCloseTo((blocks - fp8) / blocks, 12);
    const impacts = fgmpImpacts(w, { shape: [rows, cols], fisher });
    let maxFp4 = -Infinity, minFp8 = Infinity;
    for (let b = 0; b < blocks; b++) {
      if (isFp8Block(q.mask, b)) minFp8 = Math.min(minFp8, impacts[b]);
      else maxFp4 = Math.max(maxFp4, impacts[b]);
    }
    expect(maxFp4).toBeLessThanOrEqual(minFp8);
    expect(q.data.length).toBe((blocks - fp8) * 8 + fp8 * 16);
    expect(q.scales.length).toBe(blocks - fp8);
  });

  it('FP8 blocks hold E4M3 casts of x / fp8Scale (checked against the element cast)', () => {
    const q = quantize(w, { format: 'fgmp', shape: [rows, cols], fisher, fp4Fraction: 0 }) as FgmpTensor;
    const scaled = Float32Array.from(w, (v) => Math.fround(v / q.fp8Scale));
    expect(Buffer.compare(q.data, encode(scaled, 'e4m3'))).toBe(0);
    const back = dequantize(q);
    const want = Float32Array.from(decode(q.data, 'e4m3'), (v) => Math.fround(v * q.fp8Scale));
    expect(Buffer.compare(Buffer.from(back.buffer), Buffer.from(want.buffer))).toBe(0);
  });

  it('FP4 blocks without clipping are exactly NVFP4', () => {
    const q = quantize(w, { format: 'fgmp', shape: [rows, cols], fisher, fp4Fraction: 1, clipping: false }) as FgmpTensor;
    const n = quantize(w, { format: 'nvfp4', shape: [rows, cols] });
    expect(q.tensorScale).toBe(n.tensorScale);
    expect(Buffer.compare(q.data, n.data)).toBe(0);
    expect(Buffer.compare(q.scales, n.scales)).toBe(0);
  });

  it('sensitivity-weighted clipping lowers the Fisher-weighted error of FP4 blocks versus plain absmax', () => {
    const clipped = dequantize(quantize(w, { format: 'fgmp', shape: [rows, cols], fisher, fp4Fraction: 1 }));
    const absmax = dequantize(quantize(w, { format: 'fgmp', shape: [rows, cols], fisher, fp4Fraction: 1, clipping: false }));
    const eClip = weightedError(w, clipped, fisher);
    const eAbs = weightedError(w, absmax, fisher);
    expect(eClip).toBeLessThan(eAbs * 0.97);
    // And never worse block by block (the absmax scale is one of the candidates).
    for (let b = 0; b < rows * cols / 16; b++) {
      const s = b * 16;
      expect(weightedError(w.subarray(s, s + 16), clipped.subarray(s, s + 16), fisher.subarray(s, s + 16)))
        .toBeLessThanOrEqual(weightedError(w.subarray(s, s + 16), absmax.subarray(s, s + 16), fisher.subarray(s, s + 16)) * (1 + 1e-12));
    }
  });

  it('more FP8 blocks means less Fisher-weighted error, and Fisher-guided choice beats plain error at equal fraction', () => {
    const err = (p: number, f?: Float32Array) => weightedError(w, dequantize(quantize(w, { format: 'fgmp', shape: [rows, cols], fisher: f, fp4Fraction: p })), fisher);
    expect(err(0.5, fisher)).toBeLessThan(err(0.9, fisher));
    expect(err(0.9, fisher)).toBeLessThan(err(1, fisher));
    expect(err(0.7, fisher)).toBeLessThan(err(0.7));
  });

  it('accepts per-input-channel Fisher that broadcasts over rows', () => {
    const perChannel = fisherLike(cols, 5);
    const full = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) full.set(perChannel, r * cols);
    const a = quantize(w, { format: 'fgmp', shape: [rows, cols], fisher: perChannel, fp4Fraction: 0.7 }) as FgmpTensor;
    const b = quantize(w, { format: 'fgmp', shape: [rows, cols], fisher: full, fp4Fraction: 0.7 }) as FgmpTensor;
    expect(Buffer.compare(a.mask, b.mask)).toBe(0);
    expect(Buffer.compare(a.data, b.data)).toBe(0);
  });

  it('counts bits per element with scales and mask', () => {
    expect(fgmpBitsPerElement(1)).toBeCloseTo(4.5 + 1 / 16, 12);
    expect(fgmpBitsPerElement(0.7)).toBeCloseTo(0.7 * 4.5 + 0.3 * 8 + 1 / 16, 12);
    expect(fgmpBitsPerElement(0.7) / 8).toBeLessThan(0.71); // ≈30% below FP8
    expect(E4M3_VALUES[0x7e]).toBe(448);
  });

  it('rejects bad Fisher, NaN input and a wrong mask', () => {
    expect(() => quantize(w, { format: 'fgmp', shape: [rows, cols], fisher: new Float32Array(7) })).toThrow(/per input channel/);
    const badF = fisher.slice(); badF[3] = NaN;
    expect(() => quantize(w, { format: 'fgmp', shape: [rows, cols], fisher: badF })).toThrow(/fisher\[3\]/);
    const badX = w.slice(); badX[9] = Infinity;
    expect(() => quantize(badX, { format: 'fgmp', shape: [rows, cols] })).toThrow(/input\[9\]/);
    expect(() => quantize(w, { format: 'fgmp', shape: [rows, cols], mask: new Uint8Array(3) })).toThrow(/mask/);
  });
});

describe('fgmp activations (online precision)', () => {
  const cols = 128;
  const channelFisher = fisherLike(cols, 8);
  const samples = [0, 1, 2, 3].map((s) => {
    const x = gaussian(32 * cols, 20 + s);
    for (let i = 0; i < x.length; i++) if (i % cols < 8) x[i] *= 10; // outlier channels
    return x;
  });

  it('a threshold calibrated for 70% FP4 gives about 70% FP4 online on similar data', () => {
    const { threshold } = calibrateFgmpActivations(samples, { cols, channelFisher, fp4Fraction: 0.7 });
    let fp4 = 0, blocks = 0;
    for (const x of samples) {
      const q = quantizeFgmpActivations(x, { shape: [32, cols], channelFisher, threshold });
      blocks += 32 * cols / 16;
      fp4 += q.fp4Fraction * 32 * cols / 16;
      // The online rule: FP4 exactly when the block's impact is ≤ the threshold.
      const impacts = fgmpImpacts(x, { shape: [32, cols], fisher: channelFisher, clipping: false });
      for (let b = 0; b < impacts.length; b++) expect(isFp8Block(q.mask, b)).toBe(impacts[b] > threshold);
    }
    expect(Math.abs(fp4 / blocks - 0.7)).toBeLessThan(0.05);
  });
});

describe('a model-wide selection applied tensor by tensor', () => {
  it('gives each tensor its own share of the ties, so the total FP4 count is exact', () => {
    // Many equal impacts across three tensors: per-tensor quantization must not take the ties twice.
    const tensors = [new Float64Array(100).fill(1), new Float64Array(50).fill(1), Float64Array.from({ length: 80 }, (_, i) => (i % 2 ? 1 : 0.5))];
    const sel = selectThreshold(tensors, 0.5);
    expect(sel.fp4Blocks).toBe(115);
    expect(sel.ties.reduce((a, b) => a + b, 0)).toBe(sel.tiesTaken);
    const perTensor = tensors.map((t, i) => assignPrecision([t], forTensor(sel, i))[0]);
    const joint = assignPrecision(tensors, sel);
    let fp4 = 0;
    tensors.forEach((t, i) => {
      expect(Array.from(perTensor[i])).toEqual(Array.from(joint[i]));
      fp4 += t.length - countFp8Blocks(perTensor[i], t.length);
    });
    expect(fp4).toBe(115);
    expect(() => forTensor(sel, 3)).toThrow(RangeError);
  });

  it('quantize(fgmp) with forTensor(selection, i) hits the model-wide FP4 count', () => {
    const w1 = gaussian(16 * 64, 1, 0.01), w2 = gaussian(16 * 64, 2, 0.01);
    const zeros = new Float32Array(16 * 64); // all-zero Fisher: every impact ties at 0
    const opts = (w: Float32Array) => ({ format: 'fgmp' as const, shape: [16, 64], fisher: zeros });
    const sel = selectThreshold([fgmpImpacts(w1, opts(w1)), fgmpImpacts(w2, opts(w2))], 0.3);
    const q1 = quantize(w1, { ...opts(w1), selection: forTensor(sel, 0) });
    const q2 = quantize(w2, { ...opts(w2), selection: forTensor(sel, 1) });
    expect(Math.round(q1.fp4Fraction * 64) + Math.round(q2.fp4Fraction * 64)).toBe(sel.fp4Blocks);
  });
});
