// The char-GPT experiment's fast check (experiments/char-gpt): the corpus loads and splits, and a
// tiny model of every variant trains for a few dozen steps with falling loss on tfjs wasm.
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { mobyDick, windows, generator } from '../experiments/char-gpt/data.js';
import { VARIANTS, type Variant } from '../experiments/char-gpt/model.js';
import { train } from '../experiments/char-gpt/run.js';

const previous = tf.getBackend();
afterAll(async () => {
  if (previous) await tf.setBackend(previous);
});

describe('char-GPT experiment', () => {
  it('loads Moby-Dick as characters: vocabulary, a 95/5 split, windows with next-character targets', () => {
    const c = mobyDick();
    expect(c.vocab.length).toBeGreaterThan(40);
    expect(c.vocab).toContain('e');
    expect(c.train.length + c.valid.length).toBeGreaterThan(1_000_000);
    expect(c.valid.length / (c.train.length + c.valid.length)).toBeCloseTo(0.05, 2);
    const w = windows(c.train, 3, 16, generator(1));
    for (let b = 0; b < 3; b++) expect(Array.from(w.x.subarray(b * 16 + 1, (b + 1) * 16))).toEqual(Array.from(w.y.subarray(b * 16, (b + 1) * 16 - 1)));
  });

  it.each(Object.keys(VARIANTS) as Variant[])('%s: a tiny model trains (the loss falls)', async (variant) => {
    const log = await train(variant, 1, 40, { batch: 8, context: 16, width: 128, layers: 1, heads: 2, evalEvery: 20, learningRate: 1e-2, log: false });
    expect(log.diverged).toBe(false);
    expect(log.train.length).toBe(40);
    const start = log.train.slice(0, 3).reduce((a, b) => a + b, 0) / 3;
    const end = log.train.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(end).toBeLessThan(start - 0.5);
    expect(log.valid.map(([s]) => s)).toEqual([20, 40]);
    // At width 128, α = 0.99 clamps each row's smallest and largest value (sorted[1] and sorted[126]).
    if (VARIANTS[variant]?.occ) expect(log.clampedFraction).toBeGreaterThan(0.01);
  }, 120_000);
});
