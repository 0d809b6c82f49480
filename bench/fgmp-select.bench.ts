// FGMP's threshold selection (lib/fgmp/select.ts): the k-th lowest impact over one tensor's blocks
// or a whole model's. Two ways to the same value, timed in the same run on the same lists: a copy
// of every impact into one array then a 16-bit radix pass and quickselect (what selectThreshold
// does up to 2^24 impacts), and radix passes over the lists themselves with no copy (what it does
// beyond, where the copy would take 8 bytes a block: 3.5 GiB for a 7B model). The last column is
// the no-copy time over the copy time.
//
// Run: npm run bench:fgmp-select
//      npm run bench:fgmp-select -- --blocks=65536 --tensors=8 --tensor-blocks=16384 --budget=0.1   (a quick check)
// Settings (a flag or FP4KIT_BENCH_BLOCKS etc.; bench/settings.ts): --blocks=1048576 impacts of the
// one-tensor case (a 4096² weight), --tensors=64 × --tensor-blocks=262144 impacts of the model
// cases (2^24, the size up to which selectThreshold copies), --budget= seconds per figure (default
// 2; bench/timing.ts).
import { selectAcross } from '../lib/fgmp/select.js';
import { integerSetting } from './settings.js';
import { medianSeconds } from './timing.js';

const BLOCKS = integerSetting('blocks', 1 << 20);
const TENSORS = integerSetting('tensors', 64);
const TENSOR_BLOCKS = integerSetting('tensor-blocks', 1 << 18);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
const r = rng(1);
// Impacts of Fisher-weighted blocks span many binades; a share of exact zeros (all-zero blocks) is common.
const impact = () => (r() < 0.05 ? 0 : r() * 2 ** Math.floor(r() * 40 - 30));
const list64 = (n: number) => Float64Array.from({ length: n }, impact);

const cases: Array<[string, ArrayLike<number>[]]> = [
  [`one tensor of ${BLOCKS} blocks (Float64Array)`, [list64(BLOCKS)]],
  [`${TENSORS} tensors × ${TENSOR_BLOCKS} blocks (Float64Array)`, Array.from({ length: TENSORS }, () => list64(TENSOR_BLOCKS))],
  [`${TENSORS} tensors × ${TENSOR_BLOCKS} blocks (Float32Array)`, Array.from({ length: TENSORS }, () => Float32Array.from(list64(TENSOR_BLOCKS)))],
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
