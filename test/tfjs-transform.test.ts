// Transform (tf.image.transform) on both fp4kit backends (lib/tfjs/kernels/transform.ts): every image
// of a batch warped by its own or a shared projective transform, in each fill mode and
// interpolation, against a reference written from TensorFlow's definition
// (tensorflow/core/kernels/image/image_ops.h: ProjectedGenerator, map_coord by fill mode,
// nearest_interpolation, bilinear_interpolation), and batch 0 against tfjs cpu's bits. Stock tfjs
// 4.22 gets this wrong both ways: cpu computes batch 0 only (the rest is the fill value), the wasm
// base's 'reflect' maps outside points by another rule. tfjs-core's own transform specs run on both
// backends in test/tfjs-backend.test.ts.

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND } from '../lib/tfjs/index.js';

type FillMode = 'constant' | 'reflect' | 'wrap' | 'nearest';
type Interpolation = 'nearest' | 'bilinear';

/** TensorFlow's map_coord for one axis of length `len`. */
function tfMapCoord(c: number, len: number, mode: FillMode): number {
  if (mode === 'constant') return c;
  if (mode === 'nearest') return Math.min(Math.max(c, 0), len - 1);
  if (mode === 'reflect') {
    if (c < 0) {
      if (len <= 1) c = 0;
      else {
        const sz2 = 2 * len;
        if (c < -sz2) c += sz2 * Math.trunc(-c / sz2);
        c = c < -len ? c + sz2 : -c - 1;
      }
    } else if (c > len - 1) {
      if (len <= 1) c = 0;
      else {
        const sz2 = 2 * len;
        c -= sz2 * Math.trunc(c / sz2);
        if (c >= len) c = sz2 - c - 1;
      }
    }
  } else if (c < 0) {
    c = len <= 1 ? 0 : c + len * (Math.trunc(-c / (len - 1)) + 1); // wrap
  } else if (c > len - 1) {
    c = len <= 1 ? 0 : c - len * Math.trunc(c / (len - 1));
  }
  return Math.min(Math.max(c, 0), len - 1);
}

/** ImageProjectiveTransformV3 on NHWC float images; transforms [1 or batch, 8]. */
function tfTransform(image: Float32Array, [b, h, w, ch]: number[], transforms: number[][], interpolation: Interpolation, mode: FillMode,
  fill: number, [oh, ow]: number[]): Float32Array {
  const out = new Float32Array(b * oh * ow * ch);
  for (let n = 0; n < b; n++) {
    // The kernel reads the transforms as float32, as a tensor holds them.
    const [a0, a1, a2, b0, b1, b2, c0, c1] = transforms[transforms.length === 1 ? 0 : n].map(Math.fround);
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const k = c0 * x + c1 * y + 1;
        for (let c = 0; c < ch; c++) {
          const at = ((n * oh + y) * ow + x) * ch + c;
          if (k === 0) {
            out[at] = fill;
            continue;
          }
          const inX = tfMapCoord((a0 * x + a1 * y + a2) / k, w, mode), inY = tfMapCoord((b0 * x + b1 * y + b2) / k, h, mode);
          const read = (yy: number, xx: number) => (yy >= 0 && yy < h && xx >= 0 && xx < w ? image[((n * h + yy) * w + xx) * ch + c] : fill);
          if (interpolation === 'nearest') {
            out[at] = read(Math.round(inY), Math.round(inX)); // no coordinate here is a tie of .5
          } else {
            const y0 = Math.floor(inY), x0 = Math.floor(inX);
            const top = (x0 + 1 - inX) * read(y0, x0) + (inX - x0) * read(y0, x0 + 1);
            const bottom = (x0 + 1 - inX) * read(y0 + 1, x0) + (inX - x0) * read(y0 + 1, x0 + 1);
            out[at] = (y0 + 1 - inY) * top + (inY - y0) * bottom;
          }
        }
      }
    }
  }
  return out;
}

// Shifts, shears, scales and perspective that reach far outside the image (several periods of
// 'reflect' and 'wrap'), with no coordinate landing on a .5 tie (TensorFlow rounds ties away from
// zero, tfjs cpu up).
const TRANSFORMS = [
  [1.07, 0.03, -17.3, -0.02, 0.96, 13.6, 0, 0],
  [1, 0.21, -2.37, 0.13, 1, -1.71, 0, 0],
  [0.93, -0.31, 1.43, 0.22, 1.12, 0.83, 0, 0],
  [1.3, 0.07, -3.9, -0.11, 1.2, 2.3, 0.013, -0.021],
];
const SHAPE = [4, 5, 6, 2];
const IMAGE = Float32Array.from({ length: 4 * 5 * 6 * 2 }, (_, i) => ((i * 7) % 13) - 3 + i / 97);

describe.each([FP4KIT_BACKEND, FP4KIT_CPU_BACKEND])('tf.image.transform on %s', (backendName) => {
  beforeAll(async () => {
    expect(await tf.setBackend(backendName)).toBe(true);
  });

  const cases: [FillMode, Interpolation][] = (['constant', 'reflect', 'wrap', 'nearest'] as const).flatMap((m) => (['nearest', 'bilinear'] as const).map((i) => [m, i] as [FillMode, Interpolation]));

  it.each(cases)("fill mode '%s', %s interpolation: every image of the batch as TensorFlow defines it, one transform per image and one shared", async (mode, interpolation) => {
    for (const transforms of [TRANSFORMS, [TRANSFORMS[3]]]) {
      for (const outputShape of [undefined, [4, 9]]) {
        const [oh, ow] = outputShape ?? [SHAPE[1], SHAPE[2]];
        const got = await tf.tidy(() => tf.image.transform(tf.tensor4d(IMAGE, SHAPE as [number, number, number, number]), tf.tensor2d(transforms), interpolation, mode, 0.75, outputShape as [number, number] | undefined)).data();
        const want = tfTransform(IMAGE, SHAPE, transforms, interpolation, mode, 0.75, [oh, ow]);
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        expect(got.length).toBe(want.length);
        // float32 inputs and output, float64 or float32 arithmetic: a few ulps of values below 20
        expect(worst, `${transforms.length} transforms, output ${oh}×${ow}`).toBeLessThan(1e-5);
        // the last image is not the fill value (tfjs cpu's fault)
        const last = got.subarray(got.length / SHAPE[0] * (SHAPE[0] - 1));
        expect(last.some((v) => v !== 0.75)).toBe(true);
      }
    }
  });

  it("batch 0 gives tfjs cpu's bits where fp4kit runs the warp ('reflect' on fp4kit, every mode on fp4kit-cpu)", async () => {
    const modes: FillMode[] = backendName === FP4KIT_BACKEND ? ['reflect'] : ['constant', 'reflect', 'wrap', 'nearest'];
    for (const mode of modes) {
      for (const interpolation of ['nearest', 'bilinear'] as const) {
        const run = () => tf.tidy(() => tf.image.transform(tf.tensor4d(IMAGE.subarray(0, 60), [1, 5, 6, 2]), tf.tensor2d([TRANSFORMS[0]]), interpolation, mode, 0.75)).dataSync();
        const here = run();
        await tf.setBackend('cpu');
        const cpu = run();
        await tf.setBackend(backendName);
        expect(Array.from(here), `${mode} ${interpolation}`).toEqual(Array.from(cpu));
      }
    }
  });
});
