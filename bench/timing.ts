// How the benchmarks time a call: warm-up, then samples for about `budget` seconds (at least 3,
// at most 50), and the median sample, so one slow sample on a shared machine does not count.
// `--budget=` / FP4KIT_BENCH_BUDGET (bench/settings.ts) replaces every figure's budget: 0.1 makes
// a quick check of a bench (each figure then the median of 3 samples after the warm-up).
//
// A sample is a batch of calls lasting at least 1/50 of the budget (1 ms at least), and its
// figure is the batch's time ÷ its calls. A call of tens of µs timed alone, a handful of times,
// measures a cold call: the facade's JavaScript not yet compiled by V8, the thread pool's workers
// asleep. That was most of what the twenty-eighth note called the "fixed per-call cost" of a
// 64-row product. Calls longer than that are timed one per sample, as before.
import { setting, numberSetting } from './settings.js';

const BUDGET = setting('budget') === undefined ? undefined : numberSetting('budget', 1);
const MAX_SAMPLES = 50;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median seconds per call of `fn` (sync), after `warm` warm-up calls. */
export function medianSeconds(fn: () => void, budget = 1.0, warm = 1): number {
  const seconds = BUDGET ?? budget;
  for (let i = 0; i < warm; i++) fn();
  const batch = (calls: number) => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    return (performance.now() - t0) / 1000;
  };
  const calls = callsPerSample(batch(1), seconds);
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < seconds * 1000 && times.length < MAX_SAMPLES)) times.push(batch(calls) / calls);
  return median(times);
}

/** medianSeconds for a call that may return a promise (onnxruntime's session.run, matmulAsync). */
export async function medianSecondsAsync(fn: () => unknown, budget = 1.0, warm = 1): Promise<number> {
  const seconds = BUDGET ?? budget;
  for (let i = 0; i < warm; i++) await fn();
  const batch = async (calls: number) => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await fn();
    return (performance.now() - t0) / 1000;
  };
  const calls = callsPerSample(await batch(1), seconds);
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < seconds * 1000 && times.length < MAX_SAMPLES)) times.push((await batch(calls)) / calls);
  return median(times);
}

/** Calls per sample so that a sample lasts ≥ max(1 ms, budget / MAX_SAMPLES), from one call's time. */
function callsPerSample(oneCall: number, budget: number): number {
  const sample = Math.max(1e-3, budget / MAX_SAMPLES);
  return Math.max(1, Math.min(1 << 20, Math.ceil(sample / Math.max(oneCall, 1e-7))));
}
