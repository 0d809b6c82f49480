// A checkpoint run's progress covers the error check of each quantized tensor (measureError, run
// while the next tensor is worked on): ERROR_CHECK_SHARE of a quantized tensor's input bytes count
// for its check, reported every QUANTIZE_STEP_BYTES of input while the run waits on it (the last
// tensor of a shard), so the bar no longer stands at the end of the run while a big tensor's check
// still reads it. The bytes written are those of a run without the check.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantizeCheckpoint, type CheckpointProgress } from '../lib/checkpoint/quantize-checkpoint.js';
import { FGMP_ASSEMBLY_SHARE, QUANTIZE_STEP_BYTES } from '../lib/checkpoint/quantize-tensor.js';
import { ERROR_CHECK_SHARE } from '../lib/checkpoint/error-stats.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { gaussian } from './helpers/data.js';

const root = mkdtempSync(join(tmpdir(), 'fp4kit-check-progress-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// A small quantized tensor, then a big one (18 MB of f32: its quantization and its check each
// take two steps of QUANTIZE_STEP_BYTES), the last of the shard: the run waits on its check.
const rows = 1100;
const cols = 4096;
const small = { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [32, 64], data: bytesOf(gaussian(32 * 64, 42)) };
const big = { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F32', shape: [rows, cols], data: bytesOf(gaussian(rows * cols, 41, 0.02)) };
const total = small.data.length + big.data.length;
let input = '';
beforeAll(async () => {
  input = join(root, 'input');
  mkdirSync(input);
  await writeSafetensors(join(input, 'model.safetensors'), [small, big]);
});

/** The big tensor's reports inside its quantization, in its input bytes (quantizeTensor's
 *  `within`): after its first step; for FGMP, whose candidates count all but FGMP_ASSEMBLY_SHARE
 *  of the bytes, also once its mask is set and after its stream's first step (of 1024 rows). */
function quantizing(format: string): number[] {
  if (format !== 'fgmp') return [QUANTIZE_STEP_BYTES];
  const bytes = big.data.length;
  const candidateBytes = bytes - Math.round(bytes * FGMP_ASSEMBLY_SHARE);
  return [Math.floor((QUANTIZE_STEP_BYTES * candidateBytes) / bytes), candidateBytes, candidateBytes + Math.floor((1024 * (bytes - candidateBytes)) / rows)];
}

describe('progress of the error checks', () => {
  it.each(['mxfp4', 'nvfp4', 'fgmp'] as const)('%s: a quantized tensor\'s bytes count its check too, reported while the run waits on it; the bytes are unchanged', async (format) => {
    const seen: CheckpointProgress[] = [];
    const out = join(root, `out-${format}`);
    await quantizeCheckpoint(input, out, { format }, (p) => { seen.push({ ...p }); });
    const share = (bytes: number) => Math.round(bytes * ERROR_CHECK_SHARE);
    const quantizeBytes = big.data.length - share(big.data.length);
    // Inside the big tensor's quantization: its first step (and FGMP's stream), counted at the
    // quantization's share; the small tensor's check (one chunk) has ended by then and counts whole.
    const inside = seen.filter((p) => p.tensor === big.name && p.tensorsDone === 1 && p.bytesDone > small.data.length);
    expect(inside.map((p) => p.bytesDone)).toEqual(quantizing(format).map((b) => small.data.length + Math.floor((b * quantizeBytes) / big.data.length)));
    // Its check, once both tensors are quantized: after its first QUANTIZE_STEP_BYTES of input, at
    // the check's share, and at its end (the whole run's bytes).
    const checking = seen.filter((p) => p.tensor === big.name && p.tensorsDone === 2);
    const checkStep = Math.floor(((QUANTIZE_STEP_BYTES / 4) * share(big.data.length)) / (rows * cols));
    expect(checking.map((p) => p.bytesDone)).toEqual([small.data.length + quantizeBytes + checkStep, total]);
    expect(checkStep).toBeGreaterThan(0);
    expect(seen.map((p) => p.bytesDone)).toEqual([...seen.map((p) => p.bytesDone)].sort((a, b) => a - b)); // never backwards
    expect(seen[seen.length - 1]).toMatchObject({ tensor: '', tensorsDone: 2, bytesDone: total, bytesTotal: total });

    // The same bytes as a run without the check (whose progress counts each tensor whole).
    const plain: CheckpointProgress[] = [];
    const outPlain = join(root, `out-${format}-plain`);
    await quantizeCheckpoint(input, outPlain, { format, measureError: false }, (p) => { plain.push({ ...p }); });
    expect(plain.filter((p) => p.tensor === big.name && p.tensorsDone === 1 && p.bytesDone > small.data.length).map((p) => p.bytesDone)).toEqual(quantizing(format).map((b) => small.data.length + b));
    expect(plain.some((p) => p.tensorsDone === 2 && p.tensor === big.name)).toBe(false);
    expect(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(outPlain, 'model.safetensors')))).toBe(true);
  });

  it('a progress callback that fails during a check fails the run, and nothing is left behind', async () => {
    const out = join(root, 'out-failing-sink');
    await expect(quantizeCheckpoint(input, out, { format: 'mxfp4' }, async (p) => {
      if (p.tensor === big.name && p.tensorsDone === 2 && p.bytesDone < total) throw new Error('progress sink failed during the check');
    })).rejects.toThrow('progress sink failed during the check');
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    expect(readdirSync(root).filter((n) => n.startsWith('out-failing-sink.'))).toEqual([]);
  });
});
