// A shard that fails while a quantized tensor's error check is in flight (measureError runs in
// event-loop turns while the next tensor is worked on): writeShard stops the check and waits for it
// before it rejects, so nothing of the failed shard runs on after the rejection (a long-lived
// worker goes on to other work), the error is the shard's own, and its staged file is removed.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkCheckpointOptions } from '../lib/checkpoint/checkpoint-options.js';
import { ERROR_CHECK_SHARE } from '../lib/checkpoint/error-stats.js';
import { layoutByName } from '../lib/checkpoint/layouts/index.js';
import { planShard } from '../lib/checkpoint/plan.js';
import { BufferPool } from '../lib/checkpoint/read-ahead.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { SafetensorsWriter, writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { writeShard, type ShardRun } from '../lib/checkpoint/write-shard.js';
import { gaussian } from './helpers/data.js';

const root = mkdtempSync(join(tmpdir(), 'fp4kit-failed-shard-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => { vi.restoreAllMocks(); });

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
/** n turns of the event loop (measureError takes one between its chunks). */
const turns = async (n: number) => { for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r)); };

// A quantized tensor whose check takes 8 chunks of measureError (2^20 elements each), then a
// copied one (a norm weight) whose write fails: the check is in flight when it does.
const rows = 2048;
const cols = 4096;
const quantized = { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F32', shape: [rows, cols], data: bytesOf(gaussian(rows * cols, 51, 0.02)) };
const copied = { name: 'model.norm.weight', dtype: 'F32', shape: [64], data: bytesOf(gaussian(64, 52)) };
let shardPath = '';
beforeAll(async () => {
  mkdirSync(join(root, 'input'));
  shardPath = join(root, 'input', 'model.safetensors');
  await writeSafetensors(shardPath, [quantized, copied]);
});

describe('a shard that fails while an error check is in flight', () => {
  it('rejects with its own error after stopping the check: no check work after the rejection, no staged file left', async () => {
    const shard = await SafetensorsFile.open(shardPath);
    try {
      const options = checkCheckpointOptions('test', { format: 'mxfp4' });
      const layout = layoutByName('fp4kit');
      const plan = planShard(shard, layout, options, null);
      expect(plan.map((p) => [p.info.name, p.quantize])).toEqual([[quantized.name, true], [copied.name, false]]);
      const staging = join(root, 'staging');
      mkdirSync(staging);

      const checked: number[] = []; // the quantized tensor's check: bytes added, as it goes
      const run: ShardRun = {
        quantizer: { options, layout, groupAmax: new Map() }, layout, stagingDir: staging, measure: true, pool: new BufferPool(),
        progress: {
          before: async () => {}, within: async () => {}, done: () => {},
          checked: async (name, bytes) => { if (name === quantized.name) checked.push(bytes); },
        },
      };
      const checkBytes = Math.round(quantized.data.length * ERROR_CHECK_SHARE);
      const sum = (a: number[]) => a.reduce((s, b) => s + b, 0);

      // The write of the copied tensor fails (a full disk, say); the check's bytes then counted.
      const failure = new Error('ENOSPC: no space left on device, write');
      let checkedAtFailure = -1;
      const write = SafetensorsWriter.prototype.write;
      vi.spyOn(SafetensorsWriter.prototype, 'write').mockImplementation(async function (this: SafetensorsWriter, name: string, bytes: Uint8Array) {
        if (name === copied.name) {
          checkedAtFailure = sum(checked);
          throw failure;
        }
        return write.call(this, name, bytes);
      });

      await expect(writeShard(run, shard, plan)).rejects.toBe(failure);
      // The check was in flight when the write failed (else this test shows nothing).
      expect(checkedAtFailure).toBeGreaterThanOrEqual(0);
      expect(checkedAtFailure).toBeLessThan(checkBytes);
      const atRejection = [...checked];
      // Left to itself the check would end within 8 turns (a chunk a turn) and count its bytes.
      await turns(200);
      expect(checked).toEqual(atRejection);
      expect(sum(checked)).toBeLessThan(checkBytes);
      expect(readdirSync(staging)).toEqual([]);
    } finally {
      await shard.close();
    }
  });
});
