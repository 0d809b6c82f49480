// quantizeCheckpoint: a safetensors checkpoint (one file, a folder, or shards with an index) in,
// a quantized checkpoint in one of the output layouts out. Streaming: tensors are read, quantized,
// checked and written one at a time (the next one is read while the current one is quantized),
// so peak memory is a few times the largest tensor, never the model. Everything is written into a
// staging folder beside the output and published as a whole by renaming the folder
// (lib/checkpoint/safetensors/output-folder.ts): a loader never sees a partial file or a mix of two runs, and
// an error or an abort removes the staging folder. The input is only ever opened for reading, and
// outputs that alias it, or shard names that collide with the files written beside them, are
// refused before anything is written.

import { basename, join, resolve } from 'node:path';
// Importing this module alone (without lib/index.ts) must not fall back to the slow reference.
import '../kernels/node-backends.js';
import { getBackend } from '../kernels/registry.js';
import { BLOCK_FORMATS } from '../core/formats.js';
import { describe, isAbortSignal } from '../core/validate.js';
import { layoutByName } from './layouts/index.js';
import { closeCheckpoint, openCheckpoint, type CheckpointFiles } from './safetensors/checkpoint-files.js';
import type { AtomicFile } from './safetensors/atomic-file.js';
import { OutputFolder, syncFolder } from './safetensors/output-folder.js';
import { checkNotAliasingInput } from './safetensors/output-aliasing.js';
import { SafetensorsError } from './safetensors/header.js';
import { SafetensorsFile } from './safetensors/read.js';
import type { SafetensorsWriter } from './safetensors/write.js';
import { checkCheckpointOptions, checkPath } from './checkpoint-options.js';
import { readModelConfig, type ModelConfig } from './model-config.js';
import { SIDE_FILES, checkNotQuantized, checkShardNames, fusedGroupAmax, planWholeInput } from './plan.js';
import { BufferPool } from './read-ahead.js';
import { writeShard, type ShardRun } from './write-shard.js';
import { checkpointSideFiles, filesRead, filesToCopy, isFolderInput, stageSideFiles } from './publish.js';
import type { CheckpointOptions, CheckpointPart, CheckpointProgress, CheckpointSummary, TensorSummary } from './summary.js';

export {
  SUMMARY_NAME, type CheckpointOptions, type CheckpointPart, type CheckpointProgress, type CheckpointSummary, type TensorSummary,
} from './summary.js';
export { tensorSeed } from './quantize-tensor.js';
export { checkpointSideFiles, filesRead, filesToCopy, isFolderInput, type SideFilesInput } from './publish.js';

export async function quantizeCheckpoint(
  input: string,
  outDir: string,
  options: CheckpointOptions,
  onProgress?: (p: CheckpointProgress) => void | Promise<void>,
  signal?: AbortSignal,
  part?: CheckpointPart,
): Promise<CheckpointSummary> {
  const started = performance.now();
  const fn = 'quantizeCheckpoint';
  checkPath(fn, 'input', input);
  checkPath(fn, 'outDir', outDir);
  const opts = checkCheckpointOptions(fn, options); // read once, checked: the run uses this copy
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(`${fn}: onProgress must be a function, got ${describe(onProgress)}`);
  if (signal !== undefined && !isAbortSignal(signal)) throw new TypeError(`${fn}: signal (its fifth argument) must be an AbortSignal, got ${describe(signal)}`);
  const layoutName = opts.layout;
  const layout = layoutByName(layoutName, { inputScale: opts.inputScale });
  const { only, skip } = opts;
  signal?.throwIfAborted();

  const ckpt = part?.files ?? (await openCheckpoint(input));
  const fisher = opts.fisher !== undefined ? await SafetensorsFile.open(opts.fisher).catch(async (err: unknown) => {
    if (!part?.files) await closeCheckpoint(ckpt);
    throw err;
  }) : undefined;
  const writers: SafetensorsWriter[] = [];
  const sideFiles: AtomicFile[] = [];
  let out: OutputFolder | undefined;
  try {
    // Everything the run reads is known before anything is written: the files copied beside the
    // shards, config.json (read now, so a bad one fails before the work, not after it).
    const inputIsFolder = await isFolderInput(ckpt, input);
    const { copied: copiedFiles, notCopied } = await filesToCopy(ckpt, input);
    checkShardNames(ckpt, [...SIDE_FILES, ...copiedFiles], inputIsFolder);
    const config = await readModelConfig(ckpt.dir); // a FIFO or folder named config.json is refused, never waited on
    checkNotQuantized(ckpt, config);
    const inputFiles = filesRead(ckpt, config, copiedFiles, fisher?.path);
    checkNotAliasingInput(outDir, inputIsFolder ? ckpt.dir : null, inputFiles);
    if (!part) out = await OutputFolder.create(outDir, { overwrite: opts.overwrite, inputs: inputIsFolder ? [ckpt.dir, ...inputFiles] : inputFiles });
    const stagingDir = part ? part.dir : out!.staging;
    const plans = planWholeInput(ckpt, layout, opts, config, fisher);
    const written = (si: number) => !part || part.shards.has(si);
    const bytesTotal = ckpt.shards.reduce((a, s, si) => a + (written(si) ? s.tensors.reduce((b, t) => b + (t.end - t.begin), 0) : 0), 0);
    const tensorCount = plans.reduce((a, p, si) => a + (written(si) ? p.length : 0), 0);
    let bytesDone = 0; // of whole tensors
    let bytesWithin = 0; // of the tensor being copied
    let tensorsDone = 0;
    let outputBytes = 0;
    let sharedScaleBytesDone = 0;
    let sharedScaleBytesTotal = 0;
    // Awaited: a callback that returns a Promise may hold the run back, and its rejection fails the
    // run (and removes the staging folder) like a throw does.
    const report = async (tensor: string, phase: CheckpointProgress['phase'] = 'tensors') => onProgress?.({
      phase, sharedScaleBytesDone, sharedScaleBytesTotal, tensor, tensorsDone, tensorCount, bytesDone: bytesDone + bytesWithin, bytesTotal, elapsedSeconds: (performance.now() - started) / 1000,
    });
    const sharesScales = opts.format !== 'fgmp' && BLOCK_FORMATS[opts.format].hasTensorScale && layout.sharedFusedScales;
    const groupAmax = sharesScales ? await fusedGroupAmax(ckpt, plans, config, signal, part?.shards, async (tensor, done, total) => {
      sharedScaleBytesDone = done;
      sharedScaleBytesTotal = total;
      await report(tensor, 'shared-scales');
    }) : new Map<string, number>();
    const run: ShardRun = {
      quantizer: { options: opts, layout, fisher, groupAmax, signal }, layout, stagingDir, measure: opts.measureError ?? true, pool: new BufferPool(),
      progress: {
        before: async (name) => { await report(name); await part?.beforeTensor?.(); },
        within: async (name, bytes) => { bytesWithin = bytes; await report(name); },
        done: (inputBytes, bytesOut) => { bytesWithin = 0; bytesDone += inputBytes; outputBytes += bytesOut; tensorsDone++; },
        checked: async (name, bytes, alone) => { bytesDone += bytes; if (alone) await report(name); },
      },
    };
    const summaries: TensorSummary[] = [];
    for (let si = 0; si < ckpt.shards.length; si++) {
      if (!written(si)) continue;
      const shard = await writeShard(run, ckpt.shards[si], plans[si]);
      writers.push(shard.writer);
      summaries.push(...shard.summaries);
    }
    await report('');
    if (part) {
      // A part publishes its own output shards (in the parts folder) only; the merge writes the rest and publishes the output.
      for (const w of writers) await w.publish();
      await syncFolder(part.dir);
      return {
        tool: 'fp4kit', version: 1, input: resolve(input), output: resolve(outDir), format: opts.format, layout: layoutName,
        backend: getBackend().name, inputBytes: bytesTotal, outputBytes, seconds: (performance.now() - started) / 1000,
        quantized: summaries.filter((t) => t.action === 'quantized').length, copied: summaries.filter((t) => t.action === 'copied').length, notCopied: [],
        files: ckpt.shards.filter((_s, si) => written(si)).map((sh) => basename(sh.path)), tensors: summaries,
      };
    }

    const { outputs, summary, extras } = await checkpointSideFiles({
      ckpt, input, outDir, format: opts.format, layoutName, layout, tensors: summaries, copied: copiedFiles, notCopied, inFolder: inputIsFolder,
      backend: getBackend().name, seconds: (performance.now() - started) / 1000,
    });
    await stageSideFiles(stagingDir, outputs, extras, ckpt.dir, sideFiles, signal);
    signal?.throwIfAborted();
    // Everything is complete in the staging folder: put the files under their names there, then
    // publish the folder in one step (lib/checkpoint/safetensors/output-folder.ts).
    for (const w of writers) await w.publish();
    for (const f of sideFiles) await f.publish();
    await out!.publish();
    return summary;
  } catch (err) {
    await Promise.all([...writers.map((w) => w.abort()), ...sideFiles.map((f) => f.abort())]);
    await out?.abort();
    throw err;
  } finally {
    if (!part?.files) await closeCheckpoint(ckpt);
    await fisher?.close();
  }
}
