// FGMP's threshold selection (lib/fgmp/select.ts): the k-th lowest impact over one tensor's blocks
// or a whole model's. Two ways to the same value, timed in the same run on the same lists: a copy
// of every impact into one array then a 16-bit radix pass and quickselect (what selectThreshold
// does up to 2^24 impacts), and radix passes over the lists themselves with no copy (what it does
// beyond, where the copy would take 8 bytes a block: 3.5 GiB for a 7B model). The last column is
// the no-copy time over the copy time.
//
// Run: npm run bench:fgmp-select
import { selectAcross } from '../lib/fgmp/select.js';
import { medianSeconds } from './timing.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
const r = rng(1);
// Impacts of Fisher-weighted blocks span many binades; a share of exact zeros (all-zero blocks) is common.
const impact = () => (r() < 0.05 ? 0 : r() * 2 ** Math.floor(r() * 40 - 30));
const list64 = (n: number) => Float64Array.from({ length: n }, impact);

const cases: Array<[string, ArrayLike<number>[]]> = [
  ['one 4096² weight (1 M blocks, Float64Array)', [list64(1 << 20)]],
  ['64 tensors × 256 K blocks (Float64Array)', Array.from({ length: 64 }, () => list64(1 << 18))],
  ['64 tensors × 256 K blocks (Float32Array)', Array.from({ length: 64 }, () => Float32Array.from(list64(1 << 18)))],
];

console.log('| impacts | with the copy (ms) | radix over the lists, no copy (ms) | no copy / copy |');
console.log('|---|---|---|---|');
for (const [name, lists] of cases) {
  const total = lists.reduce((n, t) => n + t.length, 0);
  const k = Math.floor(total * 0.7);
  let a = NaN;
  let b = NaN;
  const copy = medianSeconds(() => { a = selectAcross('bench', lists, total, k, Infinity); }, 2);
  const lists_ = medianSeconds(() => { b = selectAcross('bench', lists, total, k, 0); }, 2);
  if (!Object.is(a, b)) throw new Error(`${name}: the two ways disagree (${a} vs ${b})`);
  console.log(`| ${name} | ${(copy * 1e3).toFixed(1)} | ${(lists_ * 1e3).toFixed(1)} | ${(lists_ / copy).toFixed(2)}× |`);
}
