// The files written beside the weight shards (config.json, a layout's side files, the index, the
// summary), the other files of a model folder that are copied, and the inputs a run reads.
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { type Layout, type LayoutName, type QuantFormat } from './layouts/index.js';
import { moduleOf } from './layouts/types.js';
import { INDEX_NAME, type CheckpointFiles } from './safetensors/checkpoint-files.js';
import { AtomicFile } from './safetensors/atomic-file.js';
import { copyRegularFile } from './safetensors/regular-file.js';
import { configText, readModelConfig, type ModelConfig } from './model-config.js';
import { isEmbedding } from './layouts/module-roles.js';
import { wholeMoeLayerOf } from './layouts/fused-modules.js';
import { SUMMARY_NAME, type CheckpointSummary, type TensorSummary } from './summary.js';
import { SIDE_FILES, checkShardNames } from './plan.js';
import { aggregateErrorHistograms } from './error-histogram.js';

export interface SideFilesInput {
  ckpt: CheckpointFiles;
  input: string;
  outDir: string;
  format: QuantFormat;
  layoutName: LayoutName;
  layout: Layout;
  /** Every tensor's summary, in input order (shard by shard). */
  tensors: TensorSummary[];
  /** The other files of the model folder the run copies, and those it leaves out (filesToCopy). */
  copied: string[];
  notCopied: string[];
  /** The input is a model folder (not one file): its shards must be named *.safetensors. */
  inFolder: boolean;
  backend: string;
  seconds: number;
  /** The distributed run's key and data samples, when a merge writes the summary (a late copy of a part reads them there). */
  run?: { key: string; samples: Record<string, string> };
}

/**
 * The files written beside the weight shards — config.json, the layout's extra files, the index
 * (sharded inputs) and the summary last — as [name, text] pairs, with the summary itself and the
 * files to copy beside them (`extras`: the copied files the run does not write itself). A pure
 * function of the tensor summaries, so a distributed merge (lib/checkpoint/checkpoint-parts.ts) writes the
 * same bytes as a single run. The summary lists every file of the output folder, the copied ones
 * too: a later run replaces the folder only if it holds nothing else (output-folder.ts).
 */
export async function checkpointSideFiles(a: SideFilesInput): Promise<{ outputs: Array<[string, string]>; summary: CheckpointSummary; extras: string[] }> {
  const { ckpt, layout, tensors } = a;
  const quantized = tensors.filter((t) => t.action === 'quantized');
  const unquantizedModules = tensors
    .filter((t) => t.action === 'copied' && t.shape.length === 2 && t.name.endsWith('.weight') && !isEmbedding(t.name))
    .map((t) => moduleOf(t.name));
  // An MoE layer stored as whole-layer expert tensors (…mlp.experts.gate_up_proj [E, 2I, H],
  // Granite-MoE's input_linear, DBRX's experts.mlp.w1) and copied is an unquantized module too
  // (vLLM's FusedMoE reads the ignore list by its prefix); one with a quantized member is not
  // listed (gpt-oss's loader would then skip its MXFP4 tensors).
  const moeLayer = (t: TensorSummary) => wholeMoeLayerOf(t.name, t.shape);
  const quantizedMoe = new Set(quantized.map(moeLayer));
  for (const t of tensors) {
    const m = t.action === 'copied' ? moeLayer(t) : null;
    if (m !== null && !quantizedMoe.has(m) && !unquantizedModules.includes(m)) unquantizedModules.push(m);
  }
  // Tied embeddings have no lm_head tensor, but engines still build an lm_head module: list it
  // as unquantized, as llm-compressor's default ignore list does.
  if (!unquantizedModules.includes('lm_head') && !quantized.some((t) => t.name === 'lm_head.weight')) unquantizedModules.push('lm_head');
  const config = await readModelConfig(ckpt.dir); // never waits on a FIFO named config.json
  const files = layout.files({ format: a.format, quantized: quantized.map((t) => t.name), unquantizedModules, config });
  const outputs: Array<[string, string]> = [];
  if (files.config) outputs.push(['config.json', configText(files.config)]);
  for (const [name, text] of Object.entries(files.extra)) outputs.push([name, text]);
  const outputBytes = tensors.reduce((sum, t) => sum + t.outputBytes, 0);
  if (ckpt.indexed) {
    const weightMap: Record<string, string> = Object.create(null) as Record<string, string>; // names are data (__proto__ too)
    for (const t of tensors) for (const o of t.outputs) weightMap[o] = t.file;
    outputs.push([INDEX_NAME, `${JSON.stringify({ metadata: { ...ckpt.indexMetadata, total_size: outputBytes }, weight_map: weightMap }, null, 2)}\n`]);
  }
  const writtenNames = new Set([...outputs.map(([n]) => n), SUMMARY_NAME]);
  const extras = a.copied.filter((n) => !writtenNames.has(n));
  const summary: CheckpointSummary = {
    tool: 'fp4kit', version: 1, input: resolve(a.input), output: resolve(a.outDir), ...(a.run === undefined ? {} : { run: a.run }), format: a.format, layout: a.layoutName,
    backend: a.backend, inputBytes: ckpt.shards.reduce((sum, s) => sum + s.tensors.reduce((b, t) => b + (t.end - t.begin), 0), 0),
    outputBytes, seconds: a.seconds, quantized: quantized.length, copied: tensors.length - quantized.length,
    notCopied: a.notCopied,
    files: [...ckpt.shards.map((s) => basename(s.path)), ...outputs.map(([n]) => n), SUMMARY_NAME, ...extras],
    tensors,
  };
  // The run's per-element error histogram, every quantized tensor's relative to its RMS (none
  // without error statistics).
  const errorHistogram = aggregateErrorHistograms(a.format, tensors);
  if (errorHistogram !== null) summary.errorHistogram = errorHistogram;
  outputs.push([SUMMARY_NAME, `${JSON.stringify(summary, null, 2)}\n`]);
  checkShardNames(ckpt, outputs.map(([n]) => n), a.inFolder);
  return { outputs, summary, extras };
}

/** The input is a model folder (sharded with an index, or a folder of files), not one file. */
export async function isFolderInput(ckpt: CheckpointFiles, input: string): Promise<boolean> {
  return ckpt.indexed || (await stat(input)).isDirectory();
}

/** The other files of a model folder a run copies, and the weights in other formats it leaves out
 *  (OTHER_WEIGHTS), from one listing (none for a single-file input); a shard is never copied over itself. */
export async function filesToCopy(ckpt: CheckpointFiles, input: string): Promise<{ copied: string[]; notCopied: string[] }> {
  if (!(await isFolderInput(ckpt, input))) return { copied: [], notCopied: [] };
  const shardNames = new Set(ckpt.allShards ?? ckpt.shards.map((sh) => basename(sh.path)));
  const others = (await otherFiles(ckpt.dir)).filter((n) => !shardNames.has(n));
  // A .safetensors file the index does not list (Mistral's consolidated.safetensors beside its
  // shards) is the same weights for another loader: left out like the other formats, and said so.
  const leftOut = (n: string) => OTHER_WEIGHTS.test(n) || n.endsWith('.safetensors');
  return { copied: others.filter((n) => !leftOut(n)), notCopied: others.filter(leftOut) };
}

/** Every file a run reads: the shards, the index, config.json, the copied files, the Fisher file. */
export function filesRead(ckpt: CheckpointFiles, config: ModelConfig, copied: string[], fisher?: string): string[] {
  return [
    ...ckpt.shards.map((s) => s.path), ...(ckpt.indexed ? [join(ckpt.dir, INDEX_NAME)] : []), ...(config !== null ? [join(ckpt.dir, 'config.json')] : []),
    ...copied.map((n) => join(ckpt.dir, n)), ...(fisher !== undefined ? [fisher] : []),
  ];
}

/** The other regular files of a model folder (links followed, as in a Hugging Face cache
 *  snapshot); FIFOs, sockets, devices and folders are left alone, and so are the files fp4kit
 *  writes itself: an input's quantization descriptor (hf_quant_config.json, an earlier summary)
 *  never describes the output. */
async function otherFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (SIDE_FILES.has(name) || name.includes('.tmp-')) continue;
    const s = await stat(join(dir, name)).catch(() => null);
    if (s?.isFile()) names.push(name);
  }
  return names;
}

/** Weights in other formats beside the shards (PyTorch's pytorch_model*.bin and its index,
 *  TensorFlow's .h5, Flax's .msgpack, .pt/.pth/.ckpt, GGUF, ONNX, …), which many Hugging Face
 *  repositories ship with model.safetensors: the same weights unquantized, often as large as the
 *  input (a 7B repository: ~14 GB more), which no loader reads beside safetensors. Left out of the
 *  output and listed in the summary (`notCopied`). */
const OTHER_WEIGHTS = /^(pytorch_model.*\.bin|tf_model.*\.h5|flax_model.*\.msgpack)(\.index\.json)?$|\.(pt|pth|ckpt|gguf|onnx|onnx_data|tflite|mlmodel)$/;

/** Write the side files into the staging folder (each under a temporary name, published by the
 *  caller with the shards) and copy the model folder's other files beside them. */
export async function stageSideFiles(
  stagingDir: string, outputs: Array<[string, string]>, extras: string[], fromDir: string, sideFiles: AtomicFile[], signal?: AbortSignal,
): Promise<void> {
  for (const [name, text] of outputs) {
    const f = await AtomicFile.create(join(stagingDir, name));
    sideFiles.push(f);
    await f.write(new TextEncoder().encode(text));
    await f.finish();
  }
  // Other files of a model folder (tokenizer, generation config...) are copied as they are.
  for (const name of extras) {
    signal?.throwIfAborted();
    await copyRegularFile(join(fromDir, name), join(stagingDir, name));
  }
}
