// How the benchmarks time a call: one warm-up, then repetitions for about `budget` seconds (at
// least 3, at most 50), and the median, so one slow repetition on a shared machine does not count.
// `--budget=` / FP4KIT_BENCH_BUDGET (bench/settings.ts) replaces every figure's budget: 0.1 makes
// a quick check of a bench (each figure then the median of 3 calls after the warm-up).
import { setting, numberSetting } from './settings.js';

const BUDGET = setting('budget') === undefined ? undefined : numberSetting('budget', 1);

/** Median seconds of `fn`. */
export function medianSeconds(fn: () => void, budget = 1.0): number {
  const seconds = BUDGET ?? budget;
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < seconds * 1000 && times.length < 50)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** medianSeconds for an async call (onnxruntime's session.run). */
export async function medianSecondsAsync(fn: () => Promise<void>, budget = 1.0): Promise<number> {
  const seconds = BUDGET ?? budget;
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < seconds * 1000 && times.length < 50)) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
