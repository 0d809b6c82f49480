// Streaming, measured: generate a bf16 checkpoint of FP4KIT_BIG_GB gigabytes (default 0.5, to keep
// CI short; set e.g. FP4KIT_BIG_GB=4 for a multi-GB run) without holding it in memory, quantize it
// in a child process, and check the child's peak RSS stays within a bound proportional to the
// largest tensor, not to the model. Also reports the worst event-loop delay during the run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SafetensorsWriter } from '../lib/checkpoint/safetensors/write.js';
import { setBackend } from '../lib/index.js';
import { quantizeAsync } from '../lib/core/quantize-async.js';
import { testedBackends } from './helpers/backends.js';

const GB = Number(process.env.FP4KIT_BIG_GB ?? '0.5');
const ROWS = 2048;
const COLS = 4096;
const TENSOR_BYTES = ROWS * COLS * 2; // 16 MiB of bf16
const COUNT = Math.max(2, Math.round((GB * 1e9) / TENSOR_BYTES));
const repo = join(__dirname, '..');
const root = mkdtempSync(join(tmpdir(), 'fp4kit-mem-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Fill with bf16 values of a few binades around 2^-6, sign random (xorshift32). */
function fill(h: Uint16Array, seed: number): void {
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < h.length; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    h[i] = ((s & 0x8000) | (0x3c00 + ((s >>> 16) & 0x3ff))) & 0xffff; // exponent 120..123
  }
}

const child = (body: string) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], {
    cwd: repo, encoding: 'utf8', timeout: 3_600_000, maxBuffer: 16 << 20,
  });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
};

describe('streaming a large checkpoint', () => {
  const input = join(root, 'big');
  beforeAll(async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(input);
    const specs = [];
    for (let i = 0; i < COUNT; i++) specs.push({ name: `model.layers.${i}.mlp.up_proj.weight`, dtype: 'BF16', shape: [ROWS, COLS] });
    const w = await SafetensorsWriter.create(join(input, 'model.safetensors'), specs);
    const h = new Uint16Array(ROWS * COLS);
    for (let i = 0; i < COUNT; i++) {
      fill(h, i + 1);
      await w.write(specs[i].name, new Uint8Array(h.buffer));
    }
    await w.commit();
  }, 3_600_000);

  it(`quantizes ${COUNT} × 16 MiB bf16 (${((COUNT * TENSOR_BYTES) / 1e9).toFixed(2)} GB) with peak RSS bounded by the largest tensor`, () => {
    const common = `
      import { monitorEventLoopDelay } from 'node:perf_hooks';
      import { quantizeCheckpoint } from './lib/checkpoint/quantize-checkpoint.ts';
      import { getBackend } from './lib/index.ts';`;
    const baseline = child(`${common}
      getBackend();
      console.log(JSON.stringify({ maxRSS: process.resourceUsage().maxRSS * 1024 }));`);
    const run = child(`${common}
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      const t0 = performance.now();
      const s = await quantizeCheckpoint(${JSON.stringify(input)}, ${JSON.stringify(join(root, 'out'))}, { format: 'nvfp4', layout: 'compressed-tensors' });
      h.disable();
      console.log(JSON.stringify({
        maxRSS: process.resourceUsage().maxRSS * 1024, seconds: (performance.now() - t0) / 1000, backend: s.backend,
        inputBytes: s.inputBytes, outputBytes: s.outputBytes, quantized: s.quantized,
        worstRelRmse: Math.max(...s.tensors.map((t) => t.relRmse ?? 0)),
        loopDelayMaxMs: h.max / 1e6, loopDelayP99Ms: h.percentile(99) / 1e6,
      }));`);
    const growth = run.maxRSS - baseline.maxRSS;
    const bound = 10 * TENSOR_BYTES; // input buffers in flight (3), outputs, scratch, uncollected garbage
    console.log(
      `memory: ${(run.inputBytes / 1e9).toFixed(2)} GB bf16 → ${(run.outputBytes / 1e9).toFixed(2)} GB nvfp4 in ${run.seconds.toFixed(1)} s ` +
        `(${(run.inputBytes / 1e9 / run.seconds).toFixed(2)} GB/s, ${run.backend}); peak RSS ${(run.maxRSS / 2 ** 20).toFixed(0)} MiB, ` +
        `baseline ${(baseline.maxRSS / 2 ** 20).toFixed(0)} MiB, growth ${(growth / 2 ** 20).toFixed(0)} MiB = ${(growth / TENSOR_BYTES).toFixed(1)} × the largest tensor ` +
        `(bound ${bound / 2 ** 20} MiB); event-loop delay max ${run.loopDelayMaxMs.toFixed(1)} ms, p99 ${run.loopDelayP99Ms.toFixed(1)} ms`,
    );
    expect(run.quantized).toBe(COUNT);
    expect(run.worstRelRmse).toBeLessThan(0.2);
    expect(growth).toBeLessThan(bound);
  }, 3_600_000);
});

describe('event loop during quantizeAsync', () => {
  it.each(testedBackends())('%s: worst event-loop delay while quantizing 16M bf16 elements', async (backend) => {
    setBackend(backend);
    const x = new Uint16Array(4096 * 4096);
    fill(x, 77);
    for (const format of ['nvfp4', 'mxfp4'] as const) {
      const h = monitorEventLoopDelay({ resolution: 1 });
      // A timer that must keep firing while the work runs.
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      h.enable();
      const t0 = performance.now();
      await quantizeAsync(x, { format, shape: [4096, 4096], dtype: 'bf16' });
      const ms = performance.now() - t0;
      h.disable();
      clearInterval(timer);
      console.log(`event loop (${backend}, ${format}): quantizeAsync of 16M elements took ${ms.toFixed(0)} ms; worst delay ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, ${ticks} timer ticks`);
      expect(h.max / 1e6).toBeLessThan(250);
    }
  }, 600_000);
});
