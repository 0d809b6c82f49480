// The binary transfer experiment's pieces, fast: both data sets load as 28×28 images in [0, 1]
// with labels 0–9, the model trains a few steps from the pretrained layout, and the variance
// measurement stays under its bound on a real layer gradient.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import '../lib/tfjs/index.js';
import { fashionMnist, mnist } from '../experiments/binary-transfer/data.js';
import { binaryCnn, VARIANTS } from '../experiments/binary-transfer/model.js';
import { accuracy, train } from '../experiments/binary-transfer/run.js';
import { measure, outputGradients, SETTINGS } from '../experiments/binary-transfer/variance.js';

beforeAll(async () => {
  await tf.setBackend('fp4kit');
  tf.env().set('FP4KIT_WEIGHTS', 'none');
});

describe('binary transfer experiment', () => {
  it('loads MNIST and Fashion-MNIST (Debian dataset-fashion-mnist) as images in [0, 1] with labels 0–9', () => {
    for (const d of [mnist(500, 100), fashionMnist(500, 100)]) {
      expect(d.train.n).toBe(500);
      expect(d.test.n).toBe(100);
      expect(d.train.x.length).toBe(500 * 784);
      expect(d.train.x.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(d.train.x.some((v) => v === 1) && d.train.x.some((v) => v === 0)).toBe(true);
      expect(new Set(d.train.y).size).toBe(10);
    }
  });

  it('every variant builds; a few QAT steps raise Fashion-MNIST accuracy above chance', async () => {
    for (const v of VARIANTS) expect(binaryCnn(v.gradients, 1).layers.filter((l) => l.getClassName() === 'BinaryConv2D').length).toBe(3);
    const model = binaryCnn(VARIANTS[0].gradients, 1);
    const data = fashionMnist(2000, 300);
    const curve: number[] = [];
    await train(model, data, 30, 30, 1, 3e-3, (p) => curve.push(p.testAccuracy));
    expect(curve[0]).toBeGreaterThan(0.3);
    expect(accuracy(model, data.test)).toBe(curve[0]);
  });

  it('measured quantizer variance on real layer gradients is under its bound, and 8-bit is far below 1-bit', () => {
    const model = binaryCnn({ gradients: 'fp32' }, 2);
    const data = fashionMnist(16, 10).train;
    const grads = outputGradients(model, tf.tensor4d(data.x, [16, 28, 28, 1]), tf.oneHot(tf.tensor1d(Array.from(data.y), 'int32'), 10) as tf.Tensor2D);
    expect(grads.map((g) => g.shape[0])).toEqual([16, 16, 16]);
    const rows = measure(grads[0].layer, grads[0].g, grads[0].shape, 20);
    expect(rows.map((r) => r.quantizer)).toEqual(SETTINGS.map((s) => s.name));
    for (const r of rows) expect(r.measured).toBeLessThan(r.bound * 1.5); // 20 seeds: the mean of ‖ĝ − g‖² is within 50 % of its expectation
    const byName = new Map(rows.map((r) => [r.quantizer, r]));
    expect(byName.get('8-bit PSQ')!.measured).toBeLessThan(byName.get('1-bit PSQ')!.measured / 1000);
    // AGP keeps about 1/b of the groups: about one bit per element
    expect(byName.get('AGP + SCQ b=4, ∇X path (per sample)')!.bitsPerElement).toBeGreaterThan(0.6);
    expect(byName.get('AGP + SCQ b=4, ∇X path (per sample)')!.bitsPerElement).toBeLessThan(1.4);
  });
});
