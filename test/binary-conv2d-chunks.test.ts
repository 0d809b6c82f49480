// binaryConv2d's products go through the patch matrix in chunks of rows (output pixels of the
// batch), never whole (lib/tfjs/layers/binary-conv-products.ts). With the chunk size forced small,
// chunks end inside images and inside image rows and the last one is partial; the output and
// every gradient must keep the bits of the unchunked computation (the chunk size set huge), in
// every gradient mode, on every fp4kit backend: the forward and the input gradient per row, the
// weight gradient's reduction over all rows (integer sums on bit planes; float32 sums carried from
// chunk to chunk, or the whole product once a running sum is not finite).
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { layers } from '../lib/tfjs/index.js';
import { binaryConvChunking } from '../lib/tfjs/layers/binary-conv-products.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { gaussian } from './helpers/data.js';
import { onTfCpuForThisFile } from './helpers/tf-cpu-suite.js';

onTfCpuForThisFile();

const DEFAULT_VALUES = binaryConvChunking.values;
afterEach(() => {
  binaryConvChunking.values = DEFAULT_VALUES;
});

interface Case {
  name: string;
  /** The layer's input shape with the batch (NHWC, or NCHW with channelsFirst). */
  x: [number, number, number, number];
  kernel: [number, number];
  filters: number;
  strides: [number, number];
  padding: 'same' | 'valid';
  channelsFirst?: boolean;
  /** Rows per chunk of the forward, the input gradient and the bit-plane weight gradient. */
  chunkRows: number;
}

// rows = batch · h′ · w′; the float32 weight gradient's chunks are max(32, 8 · ⌈filters/32⌉·32) rows
// here (whole 32-row units, at least 8× the carried columns): 256, or 512 for 40 filters.
const CASES: Case[] = [
  // 330 rows of 110 per image, rows of 10: chunks of 13 end mid-row (13 = row 1, column 3), the
  // last holds 5; the float ∇W's second chunk starts at image 2, row 3, column 6.
  { name: "'same', stride 1, NHWC: 330 rows in chunks of 13", x: [3, 11, 10, 3], kernel: [3, 3], filters: 5, strides: [1, 1], padding: 'same', chunkRows: 13 },
  // 440 rows of 110 (11 × 10) per image: chunks of 7, the last holds 6; float ∇W at 256 = image 2, row 3, column 6.
  { name: "'valid', stride 2, NHWC: 440 rows in chunks of 7", x: [4, 23, 21, 2], kernel: [3, 3], filters: 6, strides: [2, 2], padding: 'valid', chunkRows: 7 },
  // NCHW [5, 2, 13, 11] → 7 × 11 = 77 rows per image, 385 rows: chunks of 20, the last 5.
  { name: "'same', strides [2, 1], 3 × 2 kernel, channelsFirst: 385 rows in chunks of 20", x: [5, 2, 13, 11], kernel: [3, 2], filters: 4, strides: [2, 1], padding: 'same', channelsFirst: true, chunkRows: 20 },
  // 40 filters: two carried units (64 leading columns), float ∇W chunks of 512 (image 1, row 10, column 2).
  { name: "40 filters, 'same': 680 rows in chunks of 50, float ∇W carrying two units", x: [2, 20, 17, 2], kernel: [3, 3], filters: 40, strides: [1, 1], padding: 'same', chunkRows: 50 },
  // No padding: the patches are binary, not ternary.
  { name: "1 × 1 'valid' (no padding): 324 rows in chunks of 16", x: [4, 9, 9, 5], kernel: [1, 1], filters: 3, strides: [1, 1], padding: 'valid', chunkRows: 16 },
  { name: "every row its own chunk, 'same', stride [1, 2]", x: [2, 5, 7, 3], kernel: [3, 3], filters: 2, strides: [1, 2], padding: 'same', chunkRows: 1 },
];

const MODES = [
  { gradients: 'fp32', prune: 'none' },
  { gradients: 'scq', prune: 'agp' },
  { gradients: 'scq', prune: 'none' },
  { gradients: 'psq', prune: 'agp' },
  { gradients: 'ptq', prune: 'agp' },
] as const;

function taps(c: Case): number {
  return c.kernel[0] * c.kernel[1] * (c.channelsFirst ? c.x[1] : c.x[3]);
}

/** Output rows (batch pixels) of a case. */
function rows(c: Case): number {
  const [h, w] = c.channelsFirst ? [c.x[2], c.x[3]] : [c.x[1], c.x[2]];
  const out = (n: number, k: number, s: number) => (c.padding === 'same' ? Math.ceil(n / s) : Math.ceil((n - k + 1) / s));
  return c.x[0] * out(h, c.kernel[0], c.strides[0]) * out(w, c.kernel[1], c.strides[1]);
}

/** x with exact ±0 and ±1 among its values (sign(±0) = +1; the STE passes |x| < 1 only). */
function inputValues(n: number, seed: number): Float32Array {
  const v = gaussian(n, seed, 1.1);
  for (let i = 0; i < n; i += 17) v[i] = [0, -0, 1, -1][(i / 17) % 4];
  return v;
}

/** y, ∂x and every weight's gradient for the loss Σ y ⊙ dy, with `values` patch values per chunk. */
function run(c: Case, mode: (typeof MODES)[number], values: number, dyScale?: (dy: Float32Array) => void): Float32Array[] {
  binaryConvChunking.values = values;
  const layer = layers.binaryConv2d({
    filters: c.filters, kernelSize: c.kernel, strides: c.strides, padding: c.padding, dataFormat: c.channelsFirst ? 'channelsFirst' : 'channelsLast',
    gradients: mode.gradients, prune: mode.prune, bits: 3, seed: 11, name: 'chunked',
  });
  layer.build([null, ...c.x.slice(1)]);
  const t = taps(c);
  const kernelValues = gaussian(t * c.filters, 2, 1.3);
  for (let i = 5; i < kernelValues.length; i += 13) kernelValues[i] = -0;
  layer.setWeights([tf.tensor4d(kernelValues, [c.kernel[0], c.kernel[1], t / (c.kernel[0] * c.kernel[1]), c.filters]),
    tf.tensor1d(gaussian(c.filters, 3)), tf.tensor1d(Float32Array.from({ length: c.filters }, (_, i) => 0.25 + i / 8))]);
  const x = tf.tensor4d(inputValues(c.x.reduce((a, b) => a * b), 4), c.x);
  const y = layer.apply(x) as tf.Tensor4D;
  const dyValues = gaussian(y.size, 5);
  dyScale?.(dyValues);
  const dy = tf.tensor4d(dyValues, y.shape);
  const vars = layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const out = [(y.dataSync() as Float32Array).slice()];
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar, vars);
    out.push(...vars.map((v) => (grads[v.name].dataSync() as Float32Array).slice()));
    value.dataSync();
  });
  tf.tidy(() => {
    const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))(x);
    out.push((dx.dataSync() as Float32Array).slice());
  });
  tf.dispose([x, y, dy, ...vars]);
  return out;
}

const NAMES = ['y', '∇kernel', '∇bias', '∇alpha', '∇x'];

/** Bit equality, ±0 and NaN payloads included: the first differing element named. */
function expectSameBits(got: Float32Array[], want: Float32Array[], what: string): void {
  expect(got.length).toBe(want.length);
  want.forEach((w, k) => {
    const a = new Uint32Array(got[k].buffer, got[k].byteOffset, got[k].length);
    const b = new Uint32Array(w.buffer, w.byteOffset, w.length);
    expect(a.length, `${what}: ${NAMES[k]} length`).toBe(b.length);
    const i = a.findIndex((v, j) => v !== b[j]);
    expect(i, `${what}: ${NAMES[k]}[${i}] is ${got[k][i]}, unchunked ${w[i]}`).toBe(-1);
  });
}

const HUGE = Number.MAX_SAFE_INTEGER;

describe.each(testedBackends())('binaryConv2d in chunks of patch rows (%s)', (backend) => {
  useBackend(backend);

  describe.each(CASES)('$name', (c) => {
    it('the geometry crosses chunk boundaries (forward and input gradient; float ∇W past 256 rows)', () => {
      expect(rows(c)).toBeGreaterThan(c.chunkRows);
      if (c.chunkRows > 1) expect(rows(c) % c.chunkRows, 'a last partial chunk').not.toBe(0);
    });

    it.each(MODES)('gradients $gradients, prune $prune: y and every gradient have the unchunked bits', (mode) => {
      const want = run(c, mode, HUGE);
      const got = run(c, mode, c.chunkRows * taps(c));
      expectSameBits(got, want, `${backend}, ${mode.gradients}/${mode.prune}`);
      // A chunk size that is not a whole number of patches: rows per chunk rounded down.
      expectSameBits(run(c, mode, c.chunkRows * taps(c) + taps(c) - 1), want, `${backend}, ${mode.gradients}/${mode.prune}, values not a multiple of taps`);
    });
  });

  // ∇Y so large that the float32 ∇W's running sums overflow to ±Inf in the first chunk: the product
  // is then taken whole (the identity's zeros would meet Inf), with the same bits as unchunked. A
  // non-finite ∇Y sends the quantized modes to the float32 products too.
  it.each(['fp32', 'scq'] as const)('gradients %s: running ∇W sums that overflow, and a NaN in ∇Y, keep the unchunked bits', (gradients) => {
    const c = CASES[0];
    const mode = { gradients, prune: 'agp' } as const;
    const overflow = (dy: Float32Array) => {
      for (let i = 0; i < 200; i++) dy[i] = (i % 3 === 0 ? -3 : 3) * 1e38;
    };
    const wantInf = run(c, mode, HUGE, overflow);
    expect(wantInf[1].some((v) => !Number.isFinite(v)), 'the case overflows ∇kernel').toBe(true);
    expectSameBits(run(c, mode, c.chunkRows * taps(c), overflow), wantInf, `${backend}, ${gradients}, overflow`);
    const nan = (dy: Float32Array) => {
      dy[300] = NaN;
    };
    expectSameBits(run(c, mode, c.chunkRows * taps(c), nan), run(c, mode, HUGE, nan), `${backend}, ${gradients}, NaN`);
  });
});
