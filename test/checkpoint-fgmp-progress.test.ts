// Progress inside an FGMP tensor after its per-block candidates: the threshold and mask, then the
// block stream written in steps of rows (FgmpStepProgress.assembly), which a checkpoint run counts
// as FGMP_ASSEMBLY_SHARE of the tensor's bytes. The bar moves there, never back and never past the
// tensor; the tensor is the bits of quantize() on every backend, whichever way its blocks are split
// (a target fraction, a model-wide selection, an explicit mask); an abort during a report stops it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantize } from '../lib/index.js';
import { quantizeAsyncInSteps } from '../lib/core/quantize-async.js';
import { fgmpImpacts, type FgmpStepProgress, type FgmpTensor } from '../lib/fgmp/quantize.js';
import { forTensor, selectThreshold } from '../lib/fgmp/select.js';
import { quantizeCheckpoint, type CheckpointProgress } from '../lib/checkpoint/quantize-checkpoint.js';
import { FGMP_ASSEMBLY_SHARE, QUANTIZE_STEP_BYTES } from '../lib/checkpoint/quantize-tensor.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { gaussian, rng, toBf16 } from './helpers/data.js';
import { testedBackends, useBackend } from './helpers/backends.js';

describe.each(testedBackends())('FGMP\'s stream in steps on %s', (backend) => {
  useBackend(backend);
  const rows = 300;
  const cols = 520; // not a multiple of 16: a padded block ends each row
  const x = toBf16(gaussian(rows * cols, 61, 3));
  for (let i = 200 * cols; i < x.length; i++) x[i] += 0x0200; // later rows × 16: a selection per step would differ
  const fisher = gaussian(rows * cols, 62).map(Math.abs);
  const base = { format: 'fgmp', shape: [rows, cols], dtype: 'bf16', fisher } as const;
  const random = rng(63);
  const blocks = rows * Math.ceil(cols / 16);
  const cases = [
    ['a target fraction', { ...base, fp4Fraction: 0.6 }],
    ['a model-wide selection', { ...base, selection: forTensor(selectThreshold([fgmpImpacts(toBf16(gaussian(rows * cols, 64)), base), fgmpImpacts(x, base)], 0.5), 1) }],
    ['an explicit mask', { ...base, mask: Uint8Array.from({ length: Math.ceil(blocks / 8) }, () => Math.floor(random() * 256)) }],
  ] as const;

  it.each(cases)('%s: a report once the mask is set and after every step of the stream but the last; the bits of quantize()', async (_what, options) => {
    const between: number[] = [];
    const assembly: number[] = [];
    const progress: FgmpStepProgress = {
      elements: 64 * cols + 7,
      between: async (done) => { between.push(done); },
      assembly: async (rowsDone) => { assembly.push(rowsDone); },
    };
    const got = await quantizeAsyncInSteps(x, options as never, progress) as FgmpTensor;
    const want = quantize(x, options as never) as FgmpTensor;
    expect(between).toEqual([64, 128, 192, 256].map((r) => r * cols));
    expect(assembly).toEqual([0, 64, 128, 192, 256]);
    for (const key of ['data', 'scales', 'mask'] as const) expect(Buffer.from(got[key]).equals(Buffer.from(want[key])), key).toBe(true);
    for (const key of ['threshold', 'tiesTaken', 'fp4Fraction', 'tensorScale', 'fp8Scale'] as const) expect(got[key], key).toBe(want[key]);
  });

  it('an abort during a report of the stream rejects with AbortError, and no step runs after it', async () => {
    const c = new AbortController();
    const assembly: number[] = [];
    const p = quantizeAsyncInSteps(x, { ...base, signal: c.signal }, {
      elements: 64 * cols,
      between: async () => {},
      assembly: async (rowsDone) => { assembly.push(rowsDone); if (rowsDone === 64) c.abort(); },
    } as FgmpStepProgress);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    await new Promise((resolve) => setTimeout(resolve, 20)); // a step started after the abort would report by now
    expect(assembly).toEqual([0, 64]);
  });
});

describe('a checkpoint run\'s progress inside an FGMP tensor', () => {
  const root = mkdtempSync(join(tmpdir(), 'fp4kit-fgmp-progress-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  // 52 MB of f32: four steps of QUANTIZE_STEP_BYTES (1024 rows of 4096), the last of 100 rows.
  const rows = 3 * 1024 + 100;
  const cols = 4096;
  const w = gaussian(rows * cols, 65, 0.02);
  const tensor = { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F32', shape: [rows, cols], data: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) };
  const input = join(root, 'input');
  beforeAll(async () => {
    mkdirSync(input);
    await writeSafetensors(join(input, 'model.safetensors'), [tensor]);
  });

  it('moves while the stream is written (FGMP_ASSEMBLY_SHARE of its bytes), never back, never past the tensor', async () => {
    const seen: CheckpointProgress[] = [];
    await quantizeCheckpoint(input, join(root, 'out'), { format: 'fgmp', measureError: false }, (p) => { seen.push({ ...p }); });
    const bytes = tensor.data.length;
    const candidateBytes = bytes - Math.round(bytes * FGMP_ASSEMBLY_SHARE);
    const stepRows = QUANTIZE_STEP_BYTES / 4 / cols;
    expect(stepRows).toBe(1024);
    const inside = seen.filter((p) => p.tensor === tensor.name && p.tensorsDone === 0).map((p) => p.bytesDone);
    expect(inside).toEqual([
      0, // before it
      ...[1, 2, 3].map((k) => Math.floor((k * QUANTIZE_STEP_BYTES * candidateBytes) / bytes)), // the candidates' steps
      candidateBytes, // the mask is set
      ...[1, 2, 3].map((k) => candidateBytes + Math.floor((k * stepRows * (bytes - candidateBytes)) / rows)), // the stream's steps
    ]);
    // The stream's reports move the bar: after the candidates, before the tensor's end.
    expect(inside.filter((b) => b > candidateBytes && b < bytes).length).toBe(3);
    const all = seen.map((p) => p.bytesDone);
    expect(all).toEqual([...all].sort((a, b) => a - b));
    expect(seen.every((p) => p.bytesDone <= p.bytesTotal)).toBe(true);
    expect(seen[seen.length - 1]).toMatchObject({ tensor: '', tensorsDone: 1, bytesDone: bytes, bytesTotal: bytes });
  });
});
