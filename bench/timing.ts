// How the benchmarks time a call: one warm-up, then repetitions for about `budget` seconds (at
// least 3, at most 50), and the median, so one slow repetition on a shared machine does not count.

/** Median seconds of `fn`. */
export function medianSeconds(fn: () => void, budget = 1.0): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < budget * 1000 && times.length < 50)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** medianSeconds for an async call (onnxruntime's session.run). */
export async function medianSecondsAsync(fn: () => Promise<void>, budget = 1.0): Promise<number> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < budget * 1000 && times.length < 50)) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
