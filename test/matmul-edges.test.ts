// Block matmul at the edges of its definition, on every backend, sync and async: an empty inner
// dimension (K = 0) and special values (NaN codes and scales, Inf multipliers) must give the
// documented result with identical bits everywhere (README.md, "Block matmul").
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { availableBackends, matmul, matmulAsync, prepareWeights, quantize, withBackend, type MatmulOperand } from '../lib/index.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { M, N, bitPatterns, specialCases } from './helpers/special-operands.js';


/** Float32 bit patterns (NaN payloads and −0 included). */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

describe.each(testedBackends())('K = 0 on %s', (backend) => {
  useBackend(backend);
  const formats = ['mxfp4', 'nvfp4', 'fgmp', 'mxfp8_e4m3', 'mxint8'] as const;

  it.each(formats)('%s weights [N, 0]: M×N zeros, plus the bias when given (sync and async)', async (format) => {
    const [m, n] = [3, 5];
    const b = quantize(new Float32Array(0), { format, shape: [n, 0] } as never) as MatmulOperand;
    const a = new Float32Array(0);
    const zeros = new Array(m * n).fill(0);
    expect(Array.from(matmul(a, b, { shape: [m, 0] }))).toEqual(zeros);
    expect(Array.from(await matmulAsync(a, b, { shape: [m, 0] }))).toEqual(zeros);
    // The reference order gives f32(+0 + bias[n]): a −0 bias becomes +0.
    const bias = Float32Array.from([1.5, -0, -2, 0, 3]);
    const want = bits(Float32Array.from({ length: m * n }, (_, i) => (i % n === 1 ? 0 : bias[i % n])));
    expect(bits(matmul(a, b, { shape: [m, 0], bias }))).toEqual(want);
    expect(bits(await matmulAsync(a, b, { shape: [m, 0], bias }))).toEqual(want);
    // Quantized activations [M, 0] too.
    const aq = quantize(new Float32Array(0), { format: 'mxint8', shape: [m, 0] });
    expect(bits(matmul(aq, b, { bias }))).toEqual(want);
    expect(bits(await matmulAsync(aq, b, { bias }))).toEqual(want);
    // Into the caller's out (holding old values): the same bits; a NaN bias is written as the quiet NaN 0x7fc00000.
    const out = new Float32Array(m * n).fill(7);
    expect(matmul(a, b, { shape: [m, 0], out })).toBe(out);
    expect(Array.from(out)).toEqual(zeros);
    const nanBias = Float32Array.from([1, 2, 3, 4, 5]);
    new Uint32Array(nanBias.buffer)[2] = 0xffc00001;
    const withNaN = matmul(a, b, { shape: [m, 0], bias: nanBias, out: out.fill(7) });
    expect(Array.from(new Uint32Array(withNaN.buffer)).filter((_w, i) => i % n === 2)).toEqual(new Array(m).fill(0x7fc00000));
    expect(bits(await matmulAsync(a, b, { shape: [m, 0], bias: nanBias }))).toEqual(bits(withNaN));
  });

  it('M = 0 or N = 0 give empty products', async () => {
    const b = quantize(new Float32Array(4 * 64).fill(1), { format: 'mxfp4', shape: [4, 64] });
    expect(matmul(new Float32Array(0), b, { shape: [0, 64] }).length).toBe(0);
    expect((await matmulAsync(new Float32Array(0), b, { shape: [0, 64] })).length).toBe(0);
    const none = quantize(new Float32Array(0), { format: 'nvfp4', shape: [0, 64] });
    expect(matmul(new Float32Array(2 * 64), none, { shape: [2, 64] }).length).toBe(0);
  });

  it.each(['nvfp4', 'fgmp', 'mxfp8_e4m3'] as const)('M = 0 or N = 0 cost nothing however large K is (%s, K = 2^40; float, quantized and prepared operands)', async (format) => {
    const K = 2 ** 40;
    const E = new Float32Array(0);
    const b = quantize(E, { format, shape: [0, K] } as never) as MatmulOperand;
    const aq = quantize(E, { format: 'mxfp8_e4m3', shape: [0, K] });
    expect(matmul(E, b, { shape: [0, K] }).length).toBe(0);
    expect((await matmulAsync(E, b, { shape: [0, K] })).length).toBe(0);
    expect(matmul(aq, b).length).toBe(0);
    expect((await matmulAsync(aq, b)).length).toBe(0);
    const prepared = prepareWeights(b);
    try {
      expect(matmul(aq, prepared).length).toBe(0);
      expect(matmul(E, prepared, { shape: [0, K] }).length).toBe(0);
    } finally {
      prepared.dispose();
    }
  });

  it('an empty product too large to hold is refused by name', () => {
    const b = quantize(new Float32Array(0), { format: 'nvfp4', shape: [2 ** 26, 0] });
    expect(() => matmul(new Float32Array(0), b, { shape: [2 ** 26, 0] })).toThrow(new RangeError(`matmul: cannot allocate the output [${2 ** 26}, ${2 ** 26}] (${2 ** 52} elements)`));
  });
});

const CANONICAL_NAN = 0x7fc00000;
const isNaNBits = (b: number) => (b & 0x7fffffff) > 0x7f800000;

describe('NaN and Inf in matmul operands', () => {
  const cases = specialCases();
  const reference = withBackend('js', () => new Map(cases.map((c) => [c.name, bitPatterns(matmul(c.a, c.b))])));

  it('the reference propagates NaN as IEEE does: NaN codes in FGMP FP8 blocks poison exactly their columns', () => {
    const c = cases.find((x) => x.nanColumns !== undefined)!;
    const want = reference.get(c.name)!;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) expect(isNaNBits(want[m * N + n]), `out[${m}, ${n}]`).toBe(c.nanColumns!.includes(n));
    }
  });

  it('every case makes some NaN, and every NaN is the quiet NaN 0x7fc00000', () => {
    for (const c of cases) {
      const nans = reference.get(c.name)!.filter(isNaNBits);
      expect(nans.length, c.name).toBeGreaterThan(0);
      expect(new Set(nans), c.name).toEqual(new Set([CANONICAL_NAN]));
    }
  });

  it.each(testedBackends())('%s gives the reference bits, NaN payloads included (sync and async)', async (backend) => {
    for (const c of cases) {
      expect(bitPatterns(withBackend(backend, () => matmul(c.a, c.b))), c.name).toEqual(reference.get(c.name));
      expect(bitPatterns(await withBackend(backend, () => matmulAsync(c.a, c.b))), `${c.name} (async)`).toEqual(reference.get(c.name));
    }
  });

  // The native kernel is chosen once per process (FP4KIT_SIMD forces a level), so each SIMD level
  // runs in a child process; a crash there fails this test instead of killing the runner.
  const native = availableBackends().find((b) => b.name === 'native');
  it.runIf(native?.available)('the native scalar, AVX2 and AVX-512 kernels give the reference bits', () => {
    const script = `
      import { getBackend, matmul, setBackend } from './lib/index.ts';
      import { bitPatterns, specialCases } from './test/helpers/special-operands.ts';
      setBackend('native');
      const out = {};
      for (const c of specialCases()) out[c.name] = bitPatterns(matmul(c.a, c.b));
      console.log(JSON.stringify({ kernel: getBackend().matmulSimd, out }));`;
    const kernels = new Set<string>();
    for (const level of ['scalar', 'avx2', 'avx512']) {
      const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, FP4KIT_SIMD: level }, encoding: 'utf8', maxBuffer: 64 << 20,
      });
      const { kernel, out } = JSON.parse(stdout) as { kernel: string; out: Record<string, number[]> };
      kernels.add(kernel);
      for (const c of cases) expect(out[c.name], `${kernel}: ${c.name}`).toEqual(reference.get(c.name));
    }
    expect([...kernels], 'FP4KIT_SIMD=scalar forces the scalar kernel').toContain('scalar');
  });
});

// The AVX2 kernel sums a unit's vpmaddubsw pairs in int16 before widening them (native/matmul_avx2.cc:
// each int16 ends as Σ 2w·a over 16 k, at most 16·12·128 = 24576 for a unit of 32); every weight
// ±6 against every activation code +127, −127 or −128 (the spec's −2, which quantize never makes
// but a caller's MXINT8 tensor may hold) meets that bound with both signs, and the +12 offset's
// start with it. Each SIMD level runs in a child process (the kernel is chosen once per process).
describe('dot products at the integer bounds', () => {
  const native = availableBackends().find((b) => b.name === 'native');
  it.runIf(native?.available)('every native kernel gives the js reference bits: weights ±6, activation codes ±127 and −128', () => {
    const script = `
      import { getBackend, matmul, quantize, withBackend } from './lib/index.ts';
      const [m, n, k] = [6, 20, 96];
      // Rows of codes: all 127, all −127, all −128, alternating −128/127, 127 then −128 by halves, −128 by pairs.
      const code = [() => 127, () => -127, () => -128, (i) => (i % 2 ? 127 : -128), (i) => (i % 32 < 16 ? 127 : -128), (i) => (i % 4 < 2 ? -128 : 127)];
      const a = quantize(new Float32Array(m * k).fill(1), { format: 'mxint8', shape: [m, k] });
      a.data = Uint8Array.from({ length: m * k }, (_, i) => code[Math.floor(i / k)](i % k) & 0xff);
      // Weight rows: all 6, all −6, alternating, by pairs, by halves of a unit, and mixtures with 0 and small values.
      const value = [() => 6, () => -6, (i) => (i % 2 ? 6 : -6), (i) => (i % 4 < 2 ? -6 : 6), (i) => (i % 32 < 16 ? 6 : -6), (i) => [6, -6, 0, 0.5][i % 4]];
      const w = Float32Array.from({ length: n * k }, (_, i) => value[Math.floor(i / k) % value.length](i % k) * (Math.floor(i / k) >= 12 ? 2 ** -20 : 1));
      const out = {};
      for (const format of ['mxfp4', 'nvfp4', 'fgmp']) {
        const b = format === 'fgmp' ? quantize(w, { format, shape: [n, k], fp4Fraction: 0.5 }) : quantize(w, { format, shape: [n, k] });
        for (const rows of [1, 2, 3, 4, 5, 6]) {
          const part = { ...a, shape: [rows, k], data: a.data.subarray(0, rows * k), scales: a.scales.subarray(0, rows * (k / 32)) };
          const bits = (x) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
          out[format + ' m=' + rows] = { got: bits(matmul(part, b)), want: bits(withBackend('js', () => matmul(part, b))) };
        }
      }
      console.log(JSON.stringify({ kernel: getBackend().matmulSimd, out }));`;
    const kernels = new Set<string>();
    for (const level of ['scalar', 'avx2', 'avx512']) {
      const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, FP4KIT_SIMD: level }, encoding: 'utf8', maxBuffer: 64 << 20,
      });
      const { kernel, out } = JSON.parse(stdout) as { kernel: string; out: Record<string, { got: number[]; want: number[] }> };
      kernels.add(kernel);
      for (const [name, { got, want }] of Object.entries(out)) {
        expect(want.some((x) => x !== 0), `${name}: a product that is not all zeros`).toBe(true);
        expect(got, `${kernel}: ${name}`).toEqual(want);
      }
    }
    expect([...kernels], 'FP4KIT_SIMD=scalar forces the scalar kernel').toContain('scalar');
  });
});

// ---- E4M3 weights at 1–3 activation rows (native/matmul_planes_avx512_vbmi.cc's register steps) ----
// Below 4 rows the AVX-512 VBMI kernel rebuilds the planes from the codes in registers: steps of
// 1 row × 4, 2 or 1 tiles, and 2–3 rows × 2 or 1 tiles, with the weights' signs moved onto the
// activations unless an activation code is −128 (then offset planes). 7 tiles (the last ragged)
// run every one of those steps; every E4M3 code appears (±0, subnormals, low bits, ±448, NaN).
describe.each(testedBackends())('E4M3 weights at 1–3 activation rows on %s', (backend) => {
  const [n, k] = [16 * 6 + 5, 320];
  const codes = (row: number, i: number) => (row * 11 + Math.floor(i / 32) * 13 + i * 29) % 256;
  // NaN codes (0x7f, 0xff) only in rows 0 and 50: elsewhere 0x7e (448) / 0xfe (−448) instead.
  const data = Uint8Array.from({ length: n * k }, (_, i) => {
    const row = Math.floor(i / k), c = codes(row, i % k);
    return (c & 0x7f) === 0x7f && row !== 0 && row !== 50 ? c - 1 : c;
  });
  const scales = Uint8Array.from({ length: n * (k / 32) }, (_, i) => 120 + (i % 9));
  const b = { format: 'mxfp8_e4m3' as const, blockSize: 32, shape: [n, k] as [number, number], data, scales };
  // Activation codes: ±127 and small values, and (withMin) −128 in every row.
  const activations = (m: number, withMin: boolean) => {
    const q = quantize(new Float32Array(m * k).fill(1), { format: 'mxint8', shape: [m, k] });
    const a = Uint8Array.from({ length: m * k }, (_, i) => [127, -127, 5, -3, 64, 0, -90, 1][(i * 7 + Math.floor(i / k)) % 8] & 0xff);
    if (withMin) for (let i = (m * 3) % 17; i < a.length; i += 41) a[i] = 0x80;
    return { ...q, data: a, scales: Uint8Array.from(q.scales, (_, i) => 125 + (i % 4)) };
  };

  it.each([1, 2, 3])('%i rows, every E4M3 code, activations without and with −128: the js reference bits', (m) => {
    for (const withMin of [false, true]) {
      const a = activations(m, withMin);
      const want = withBackend('js', () => matmul(a, b));
      expect(bits(withBackend(backend, () => matmul(a, b))), `m=${m} withMin=${withMin}`).toEqual(bits(want));
      // the NaN rows give NaN columns, and the rest is not all zeros
      expect(Array.from(want).filter(Number.isNaN).length).toBe(2 * m);
      expect(Array.from(want).some((v) => v !== 0 && !Number.isNaN(v))).toBe(true);
    }
  });

  it.each([1, 2, 3])('%i rows of FGMP weights (E4M3 blocks of 16 among FP4 ones), activations without and with −128: the js reference bits', (m) => {
    const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37) * (i % 13 === 0 ? 300 : i % 7 === 0 ? 1e-3 : 1));
    const fg = quantize(w, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.5 });
    for (const withMin of [false, true]) {
      const a = activations(m, withMin);
      expect(bits(withBackend(backend, () => matmul(a, fg))), `m=${m} withMin=${withMin}`).toEqual(bits(withBackend('js', () => matmul(a, fg))));
    }
  });
});
