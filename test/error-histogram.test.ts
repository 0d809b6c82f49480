// The per-element error histogram (errorSums with its optional `histogram`; lib/kernels/ref/error-sums.ts
// defines the bins): every backend and every native SIMD level and thread count counts the same,
// the counts equal an independent computation (floor(log2 |x − y|) found by comparing with exact
// powers of two here, and numpy's frexp), any split of the rows over calls gives the same counts,
// the sums are the same with or without it, and bad arguments are refused on every backend (the
// addon in C++) without touching the sums or counts.
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { availableBackends, withBackend, type BackendName } from '../lib/index.js';
import { DtypeId } from '../lib/core/formats.js';
import { getKernels } from '../lib/kernels/registry.js';
import { ERROR_BIN_EXACT, ERROR_BIN_INFINITE, ERROR_BIN_NAN, ERROR_BINS, binadeBin } from '../lib/kernels/ref/error-sums.js';
import { testedBackends } from './helpers/backends.js';
import { errorHistogramCases, independentCounts, type HistogramCase } from './helpers/error-histogram-cases.js';

const backends = testedBackends();
const cases = errorHistogramCases();

/** The kernel's sums and counts for rows [r0, r1) of a case, added to `sums` and `histogram`. */
function run(backend: BackendName, c: HistogramCase, sums = new Float64Array(3), histogram = new Float64Array(ERROR_BINS), r0 = 0, r1 = c.rows) {
  const at = <T extends Float32Array | Uint16Array>(a: T) => a.subarray(r0 * c.cols, r1 * c.cols) as T;
  withBackend(backend, () => getKernels().errorSums(at(c.src), DtypeId[c.dtype], at(c.decoded), r1 - r0, c.cols, sums, histogram));
  return { sums, histogram };
}

/** The counts computed here for a case (independentCounts: no exponent fields). */
const independent = (c: HistogramCase) => independentCounts(c.values, c.decoded, c.rows * c.cols);

/** Same float64 bits, or both NaN (a NaN sum's payload is unspecified). */
function sameSums(a: Float64Array, b: Float64Array): boolean {
  for (let i = 0; i < 3; i++) if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

describe('the cases', () => {
  it('reach every kind of bin: exact, the lowest and highest binades, Inf, NaN, and over a hundred binades', () => {
    const all = new Float64Array(ERROR_BINS);
    for (const c of cases) independent(c).forEach((n, i) => { all[i] += n; });
    for (const bin of [ERROR_BIN_EXACT, binadeBin(-149), binadeBin(-148), binadeBin(127), binadeBin(128), ERROR_BIN_INFINITE, ERROR_BIN_NAN]) {
      expect(all[bin], `bin ${bin}`).toBeGreaterThan(0);
    }
    expect(all.filter((n) => n > 0).length).toBeGreaterThan(100);
    expect(new Set(cases.map((c) => c.dtype))).toEqual(new Set(['f32', 'bf16', 'f16']));
  });
});

describe.each(backends)('errorSums with a histogram on %s', (backend) => {
  it('counts every element in the bin of its x − y, as computed here independently', () => {
    for (const c of cases) {
      const { histogram } = run(backend, c);
      expect(Array.from(histogram), c.name).toEqual(Array.from(independent(c)));
      expect(histogram.reduce((a, b) => a + b, 0), c.name).toBe(c.rows * c.cols);
    }
  });

  it('gives the sums it gives without one, bit for bit', () => {
    for (const c of cases) {
      const counted = run(backend, c).sums;
      const plain = new Float64Array(3);
      withBackend(backend, () => getKernels().errorSums(c.src, DtypeId[c.dtype], c.decoded, c.rows, c.cols, plain));
      expect(sameSums(counted, plain), c.name).toBe(true);
    }
  });

  it('adds to the histogram it is given, the same for any split of the rows over calls', () => {
    for (const c of cases.filter((k) => k.rows > 2)) {
      const start = Float64Array.from({ length: ERROR_BINS }, (_v, i) => (i % 3) * 0.5 + i);
      const whole = run(backend, c, new Float64Array(3), start.slice());
      const counts = independent(c);
      expect(Array.from(whole.histogram), c.name).toEqual(Array.from(start, (v, i) => v + counts[i]));
      // Row by row, then in three uneven calls: the sums' bits and the counts of one call.
      const byRow = { sums: new Float64Array(3), histogram: start.slice() };
      for (let r = 0; r < c.rows; r++) run(backend, c, byRow.sums, byRow.histogram, r, r + 1);
      const cuts = [0, 1, Math.floor(c.rows / 2) + 1, c.rows];
      const thirds = { sums: new Float64Array(3), histogram: start.slice() };
      for (let k = 0; k + 1 < cuts.length; k++) run(backend, c, thirds.sums, thirds.histogram, cuts[k], cuts[k + 1]);
      for (const split of [byRow, thirds]) {
        expect(Array.from(split.histogram), c.name).toEqual(Array.from(whole.histogram));
        expect(sameSums(split.sums, whole.sums), c.name).toBe(true);
      }
    }
  });

  it('an empty call adds nothing, however many rows of nothing', () => {
    const histogram = new Float64Array(ERROR_BINS).fill(-0);
    withBackend(backend, () => getKernels().errorSums(new Float32Array(0), DtypeId.f32, new Float32Array(0), 2 ** 40, 0, new Float64Array(3), histogram));
    expect(histogram.every((v) => Object.is(v, -0))).toBe(true);
  });

  it('refuses a histogram of the wrong kind, too short, or sharing memory with another array, touching nothing', () => {
    const k = () => withBackend(backend, () => getKernels());
    const x = new Float32Array(16).fill(1), y = new Float32Array(16);
    const sums = new Float64Array(3).fill(7);
    const histogram = new Float64Array(ERROR_BINS).fill(5);
    const refused = (h: unknown, kind: typeof TypeError | typeof RangeError, message?: RegExp) => {
      expect(() => k().errorSums(x, DtypeId.f32, y, 2, 8, sums, h as Float64Array)).toThrow(kind);
      if (message) expect(() => k().errorSums(x, DtypeId.f32, y, 2, 8, sums, h as Float64Array)).toThrow(message);
    };
    refused(new Float32Array(ERROR_BINS), TypeError);
    refused(new Float64Array(ERROR_BINS - 1), RangeError, /histogram/);
    refused(null, TypeError);
    refused(Array.from(histogram), TypeError);
    refused(new BigInt64Array(ERROR_BINS), TypeError);
    // Sharing memory: with sums, with the source, with the decoded copy (outputs must not overlap anything).
    const shared = new Float64Array(ERROR_BINS + 3);
    expect(() => k().errorSums(x, DtypeId.f32, y, 2, 8, shared.subarray(0, 3), shared.subarray(2))).toThrow(/share/);
    const bytes = new ArrayBuffer(ERROR_BINS * 8);
    expect(() => k().errorSums(new Float32Array(bytes, 0, 16), DtypeId.f32, y, 2, 8, sums, new Float64Array(bytes))).toThrow(/share/);
    expect(() => k().errorSums(x, DtypeId.f32, new Float32Array(bytes, 64, 16), 2, 8, sums, new Float64Array(bytes))).toThrow(/share/);
    expect(Array.from(sums)).toEqual([7, 7, 7]);
    expect(histogram.every((v) => v === 5)).toBe(true);
    // undefined is no histogram (the sums alone); a longer histogram's tail is left alone.
    k().errorSums(x, DtypeId.f32, y, 2, 8, sums, undefined);
    const longer = new Float64Array(ERROR_BINS + 2).fill(1);
    k().errorSums(x, DtypeId.f32, y, 2, 8, new Float64Array(3), longer);
    expect(longer[binadeBin(0)]).toBe(17);
    expect([longer[ERROR_BINS], longer[ERROR_BINS + 1]]).toEqual([1, 1]);
  });
});

// The native kernel table is chosen once per process (FP4KIT_SIMD caps the level) and rows go to
// the addon's threads (FP4KIT_THREADS), so each setting runs in a child process that prints every
// case's counts; a crash there fails this test instead of the runner.
const native = availableBackends().find((b) => b.name === 'native');
describe.runIf(native?.available)('native SIMD levels and thread counts', () => {
  it('scalar, AVX2, AVX-512 (where the CPU has it) and 1 or 3 threads count what js counts', () => {
    const script = `
      import { getBackend, setBackend } from './lib/index.ts';
      import { getKernels } from './lib/kernels/registry.ts';
      import { DtypeId } from './lib/core/formats.ts';
      import { ERROR_BINS } from './lib/kernels/ref/error-sums.ts';
      import { errorHistogramCases } from './test/helpers/error-histogram-cases.ts';
      setBackend('native');
      const out = {};
      for (const c of errorHistogramCases()) {
        const h = new Float64Array(ERROR_BINS);
        getKernels().errorSums(c.src, DtypeId[c.dtype], c.decoded, c.rows, c.cols, new Float64Array(3), h);
        out[c.name] = Array.from(h);
      }
      console.log(JSON.stringify({ simd: getBackend().simd, out }));`;
    const want = new Map(cases.map((c) => [c.name, Array.from(run('js', c).histogram)]));
    const levels = new Set<string>();
    for (const env of [{ FP4KIT_SIMD: 'scalar' }, { FP4KIT_SIMD: 'avx2' }, { FP4KIT_SIMD: 'avx512' }, { FP4KIT_THREADS: '1' }, { FP4KIT_THREADS: '3' }]) {
      const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20,
      });
      const { simd, out } = JSON.parse(stdout) as { simd: string; out: Record<string, number[]> };
      levels.add(simd);
      for (const c of cases) expect(out[c.name], `${JSON.stringify(env)} (${simd}): ${c.name}`).toEqual(want.get(c.name));
    }
    expect([...levels], 'FP4KIT_SIMD=scalar forces the scalar kernels').toContain('scalar');
    if (process.arch === 'x64') expect([...levels]).toContain('avx2');
  }, 180_000);
});

// numpy's frexp splits d into m · 2^e with 0.5 ≤ |m| < 1, so floor(log2 |d|) = e − 1: a third way
// to the binades, from outside JavaScript.
const python = process.env.PYTHON ?? 'python3';
const haveNumpy = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
describe('numpy', () => {
  it('counts the same binades (np.frexp of x − y in float64)', () => {
    if (!haveNumpy) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${python} cannot import numpy`);
      return;
    }
    const program = `
import sys, json, numpy as np
data = np.frombuffer(sys.stdin.buffer.read(), dtype='<f8')
x, y = data[: data.size // 2], data[data.size // 2 :]
with np.errstate(invalid='ignore'):
    d = x - y
counts = {'exact': int(np.sum(d == 0)), 'inf': int(np.sum(np.isinf(d))), 'nan': int(np.sum(np.isnan(d)))}
finite = d[np.isfinite(d) & (d != 0)]
e = np.frexp(finite)[1] - 1
counts['binades'] = {int(k): int(v) for k, v in zip(*np.unique(e, return_counts=True))}
print(json.dumps(counts))`;
    for (const c of cases) {
      const n = c.rows * c.cols;
      const both = new Float64Array(2 * n);
      both.set(c.values.subarray(0, n));
      both.set(c.decoded.subarray(0, n), n);
      const r = spawnSync(python, ['-c', program], { input: Buffer.from(both.buffer), encoding: 'utf8', maxBuffer: 16 << 20 });
      expect(r.status, r.stderr).toBe(0);
      const np = JSON.parse(r.stdout) as { exact: number; inf: number; nan: number; binades: Record<string, number> };
      const want = new Float64Array(ERROR_BINS);
      want[ERROR_BIN_EXACT] = np.exact;
      want[ERROR_BIN_INFINITE] = np.inf;
      want[ERROR_BIN_NAN] = np.nan;
      for (const [k, v] of Object.entries(np.binades)) want[binadeBin(Number(k))] = v;
      expect(Array.from(run(backends[0], c).histogram), c.name).toEqual(Array.from(want));
    }
  }, 60_000);
});
