// The plan of a run, made before anything is written: for every tensor of every shard, copy or
// quantize (and why), the output tensors the layout writes for it, the shape it is blocked in; the
// shared amax of fused groups (and, for a distributed part, the other shards it reads for them);
// the refusal of shard names that would collide with side files.
import { statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { getKernels } from '../kernels/registry.js';
import { DtypeId } from '../core/formats.js';
import { swapLastTwo } from '../core/transpose.js';
import { type Layout } from './layouts/index.js';
import { expertLayerOf, fusedGroupOf, wholeMoeLayerOf } from './layouts/fused-modules.js';
import { isConv1dWeight } from './layouts/module-roles.js';
import { INDEX_NAME, type CheckpointFiles } from './safetensors/checkpoint-files.js';
import { SafetensorsError, type TensorInfo } from './safetensors/header.js';
import { NAME_MAX_BYTES, TEMP_SUFFIX_BYTES } from './safetensors/atomic-file.js';
import type { SafetensorsFile } from './safetensors/read.js';
import type { TensorSpec } from './safetensors/write.js';
import { copyReason } from './tensor-selection.js';
import { checkFisherFile } from './fisher.js';
import type { CheckedCheckpointOptions } from './checkpoint-options.js';
import type { ModelConfig } from './model-config.js';
import { SUMMARY_NAME, type CheckpointOptions } from './summary.js';
import { elementCount, sourceView } from './source-view.js';

/** Bytes read at a time by the passes that stream a tensor (copying, the fused-group amax). */
export const COPY_CHUNK = 16 << 20;

export interface PlannedTensor {
  info: TensorInfo;
  quantize: boolean;
  reason?: string;
  specs: TensorSpec[];
  /** Swap the last two axes before quantizing (the layout's loader blocks along the second-to-last). */
  transpose?: boolean;
  /** The shape quantize() sees: info.shape, or its last two axes swapped. */
  blockedShape?: number[];
}

export function planShard(shard: SafetensorsFile, layout: Layout, options: CheckpointOptions, config: ModelConfig, only?: RegExp, skip?: RegExp): PlannedTensor[] {
  return shard.tensors.map((info) => {
    let reason = copyReason(info.name, info.dtype, info.shape, { only, skip, defaults: layout.defaultSelection });
    if (reason === null && elementCount(info.shape) === 0) reason = 'empty tensor';
    // (Under --only the fp4kit layout blocks it as stored; the serving layouts refuse it below.)
    if (reason === null && !only && isConv1dWeight(info.name, config)) reason = 'a Conv1D weight stored [in, out] (GPT-2): its blocks would run along the output axis';
    try {
      if (reason === null) reason = layout.unsupported(info.name, info.shape, options.format, config);
    } catch (err) {
      if (err instanceof RangeError) throw new SafetensorsError(shard.path, err.message); // a tensor whose role is unknown: refused
      throw err;
    }
    if (reason !== null) return { info, quantize: false, reason, specs: [{ name: info.name, dtype: info.dtype, shape: info.shape }] };
    const transpose = layout.transposedForBlocking?.(info.name) ?? false;
    const blockedShape = transpose ? swapLastTwo(info.shape) : info.shape;
    const cols = blockedShape[blockedShape.length - 1];
    const blocks = (elementCount(blockedShape) / cols) * Math.ceil(cols / 16);
    const fp4Blocks = options.format === 'fgmp' ? Math.round((options.fp4Fraction ?? 0.7) * blocks) : 0;
    return { info, quantize: true, transpose, blockedShape, specs: layout.plan(info.name, blockedShape, options.format, fp4Blocks) };
  });
}

/**
 * Refuse a plan that would write one output tensor name twice — within a shard or across shards:
 * a quantized tensor's outputs (l.weight → l.weight_packed, l.weight.qdata …) may take the name of
 * an input tensor that is copied, and the index would then point a loader at one of the two.
 */
export function checkOutputNames(ckpt: CheckpointFiles, plans: PlannedTensor[][]): void {
  const from = new Map<string, { shard: number; tensor: string; quantized: boolean }>();
  const what = (o: { shard: number; tensor: string; quantized: boolean }) =>
    `${o.quantized ? 'quantizing' : 'copying'} ${JSON.stringify(o.tensor)}${ckpt.shards.length > 1 ? ` (${basename(ckpt.shards[o.shard].path)})` : ''}`;
  for (let si = 0; si < plans.length; si++) {
    for (const p of plans[si]) {
      const mine = { shard: si, tensor: p.info.name, quantized: p.quantize };
      for (const spec of p.specs) {
        const earlier = from.get(spec.name);
        if (earlier) {
          throw new SafetensorsError(ckpt.shards[si].path, `output tensor ${JSON.stringify(spec.name)} would be written twice, by ${what(earlier)} and by ${what(mine)}; --skip one of them or rename it`);
        }
        from.set(spec.name, mine);
      }
    }
  }
}

/**
 * Refuse a fused group (q/k/v, gate/up, w1/w3, q_a/kv_a) or an MoE layer's experts that would be
 * partly quantized, in the layouts whose loaders fuse them (sharedFusedScales, loadsExpertsAsOneMoe:
 * every serving layout, gpt-oss's included, for MoE layers): vLLM refuses such a
 * checkpoint ("different quantization schemes" / "some but not all shards"), or finds no packed
 * down_proj for its fused MoE, so it must not be published.
 */
export function checkFusedGroups(ckpt: CheckpointFiles, plans: PlannedTensor[][], layout: Layout, config: ModelConfig): void {
  const oneFusedMoe = 'load all of a layer\'s experts into one fused MoE with one quantization, and cannot load a mix';
  const kinds: Array<{ groupOf: (info: TensorInfo) => string | null; why: string }> = [];
  if (layout.sharedFusedScales) kinds.push({ groupOf: (t) => fusedGroupOf(t.name, config), why: 'fuse them into one layer and refuse a mix' });
  if (layout.loadsExpertsAsOneMoe) {
    kinds.push({ groupOf: (t) => expertLayerOf(t.name), why: oneFusedMoe });
    // Whole-layer expert tensors (gpt-oss's gate_up_proj and down_proj): one whose input axis is no
    // multiple of 32 would stay bf16 beside an MXFP4 partner.
    kinds.push({ groupOf: (t) => wholeMoeLayerOf(t.name, t.shape), why: oneFusedMoe });
  }
  for (const { groupOf, why } of kinds) {
    const groups = new Map<string, { quantized: string[]; copied: Array<{ name: string; reason: string; shard: number }> }>();
    for (let si = 0; si < plans.length; si++) {
      for (const p of plans[si]) {
        const g = groupOf(p.info);
        if (g === null) continue;
        let e = groups.get(g);
        if (e === undefined) groups.set(g, (e = { quantized: [], copied: [] }));
        if (p.quantize) e.quantized.push(p.info.name);
        else e.copied.push({ name: p.info.name, reason: p.reason ?? 'copied', shard: si });
      }
    }
    for (const [group, e] of groups) {
      if (e.quantized.length > 0 && e.copied.length > 0) {
        const c = e.copied[0];
        const listed = e.quantized.length > 3 ? `${e.quantized.slice(0, 3).map((n) => JSON.stringify(n)).join(', ')}, … (${e.quantized.length} in all)` : e.quantized.map((n) => JSON.stringify(n)).join(', ');
        // A shape the layout cannot pack is the model's (every layer has it): no --skip helps there.
        const remedy = /not a multiple of/.test(c.reason)
          ? `this model's shapes do not fit the ${layout.name} layout; choose another --layout (fp4kit holds any shape)`
          : 'quantize all of them or none (--only / --skip)';
        throw new SafetensorsError(ckpt.shards[c.shard].path, `${group}: ${listed} would be quantized but ${JSON.stringify(c.name)} copied (${c.reason}); loaders of the ${layout.name} layout ${why}: ${remedy}`);
      }
    }
  }
}

/**
 * Refuse a run of a serving layout that would quantize no tensor at all: its config would declare a
 * quantization over an unquantized model (transformers would route a gpt-oss one through its MXFP4
 * loader). The message names a kept weight and its reason. The fp4kit layout writes such a run.
 */
export function checkSomethingQuantized(ckpt: CheckpointFiles, plans: PlannedTensor[][], layout: Layout, format: string, config: ModelConfig): void {
  const all = plans.flat();
  // A distributed part's own shards (ckpt.allShards) may hold nothing to quantize: its run's
  // planner checked the whole input (checkpoint-parts.ts).
  if (layout.name === 'fp4kit' || ckpt.allShards !== undefined || all.some((t) => t.quantize)) return;
  if (layout.name === 'gpt-oss') throw new SafetensorsError(ckpt.shards[0].path, `no tensor to quantize in the gpt-oss layout (it quantizes GptOss MoE expert weights, …mlp.experts.gate_up_proj / down_proj; config.json model_type ${JSON.stringify(config?.model_type ?? null)}); choose another --layout`);
  const kept = all.find((t) => t.info.shape.length === 2 && t.info.name.endsWith('.weight')) ?? all[0];
  const example = kept === undefined ? 'the input holds no tensor' : `e.g. ${JSON.stringify(kept.info.name)}: ${kept.reason}`;
  throw new SafetensorsError(ckpt.shards[0].path, `no tensor to quantize in the ${layout.name} layout (${example}); its config would declare ${format} over an unquantized model`);
}

/**
 * For each part of a distributed run (`parts`: shard indexes), the other shards fusedGroupAmax reads
 * for it: those holding a quantized member of a fused group (q/k/v, gate/up) that has a quantized
 * member in the part. The part opens just these besides its own. Whether the layout shares scales
 * at all is not asked: a part then opens a neighbour it does not read, never misses one.
 */
export function fusedGroupPartners(ckpt: CheckpointFiles, plans: PlannedTensor[][], config: ModelConfig, parts: number[][]): string[][] {
  const shardsOf = new Map<string, Set<number>>(); // group → shards holding a quantized member
  for (let si = 0; si < plans.length; si++) {
    for (const p of plans[si]) {
      const g = p.quantize ? fusedGroupOf(p.info.name, config) : null;
      if (g === null) continue;
      let set = shardsOf.get(g);
      if (set === undefined) shardsOf.set(g, (set = new Set()));
      set.add(si);
    }
  }
  const groupsIn = plans.map(() => new Set<string>());
  for (const [g, shards] of shardsOf) for (const si of shards) groupsIn[si].add(g);
  return parts.map((own) => {
    const mine = new Set(own);
    const others = new Set<number>();
    for (const si of own) for (const g of groupsIn[si]) for (const other of shardsOf.get(g)!) if (!mine.has(other)) others.add(other);
    return [...others].sort((a, b) => a - b).map((si) => basename(ckpt.shards[si].path));
  });
}

/**
 * The shared amax of every fused group (q/k/v, gate/up) among the tensors to quantize, by member
 * tensor name: a pre-pass reading just those tensors in chunks (bounded memory), so each member
 * gets the same tensor scale. `onRead` is told the bytes read so far before each chunk, and once at the end.
 */
export async function fusedGroupAmax(
  ckpt: CheckpointFiles, plans: PlannedTensor[][], config: ModelConfig, signal?: AbortSignal, wanted?: ReadonlySet<number>,
  onRead?: (tensor: string, bytesDone: number, bytesTotal: number) => void | Promise<void>,
): Promise<Map<string, number>> {
  const groupOf = plans.map((plan) => plan.map((p) => (p.quantize ? fusedGroupOf(p.info.name, config) : null)));
  const members = new Map<string, number>();
  const needed = new Set<string>(); // groups with a member in a shard this run writes (a part reads the others too)
  for (let si = 0; si < plans.length; si++) for (const g of groupOf[si]) {
    if (g === null) continue;
    members.set(g, (members.get(g) ?? 0) + 1);
    if (!wanted || wanted.has(si)) needed.add(g);
  }
  const read = (g: string | null): g is string => g !== null && members.get(g)! >= 2 && needed.has(g);
  let bytesTotal = 0;
  for (let si = 0; si < plans.length; si++) plans[si].forEach((p, i) => { if (read(groupOf[si][i])) bytesTotal += p.info.end - p.info.begin; });
  const amax = new Map<string, number>(); // by group
  const chunk = new Uint8Array(new ArrayBuffer(COPY_CHUNK));
  const kernels = getKernels();
  let bytesDone = 0;
  for (let si = 0; si < plans.length; si++) {
    for (let i = 0; i < plans[si].length; i++) {
      const g = groupOf[si][i];
      if (!read(g)) continue;
      const { info } = plans[si][i];
      const total = info.end - info.begin;
      let m = amax.get(g) ?? 0;
      for (let off = 0; off < total; off += chunk.length) {
        signal?.throwIfAborted();
        await onRead?.(info.name, bytesDone, bytesTotal);
        const piece = chunk.subarray(0, Math.min(chunk.length, total - off));
        await ckpt.shards[si].readInto(info, piece, off);
        const { x, dtype } = sourceView(piece, info.dtype);
        const a = kernels.absMax(x, DtypeId[dtype]);
        if (!Number.isFinite(a)) throw new SafetensorsError(ckpt.shards[si].path, `tensor ${info.name} holds NaN or Inf, which nvfp4 cannot represent`);
        if (a > m) m = a;
        bytesDone += piece.length;
      }
      amax.set(g, m);
    }
  }
  if (bytesTotal > 0) await onRead?.('', bytesDone, bytesTotal);
  const byTensor = new Map<string, number>();
  for (let si = 0; si < plans.length; si++) plans[si].forEach((p, i) => {
    const g = groupOf[si][i];
    if (g !== null && amax.has(g)) byTensor.set(p.info.name, amax.get(g)!);
  });
  return byTensor;
}

/** Files fp4kit writes beside the shards (the layout's config.json, modelopt's hf_quant_config.json). */
export const SIDE_FILES = new Set([INDEX_NAME, SUMMARY_NAME, 'config.json', 'hf_quant_config.json']);

/**
 * Refuse a shard whose name is also a file written or copied beside the shards (one would clobber
 * the other), and, in a model folder, a shard not named *.safetensors: loaders choose their reader
 * by that suffix and take every other file for a side file (tokenizer.json, a config...).
 */
export function checkShardNames(ckpt: CheckpointFiles, sideNames: Iterable<string>, inFolder: boolean): void {
  const side = new Set(sideNames);
  for (const s of ckpt.shards) {
    const name = basename(s.path);
    if (side.has(name)) throw new SafetensorsError(s.path, `a shard named ${name} would collide with the ${name} written beside the shards; rename the shard (and its index entries)`);
    if (inFolder && !name.endsWith('.safetensors')) {
      throw new SafetensorsError(s.path, `a shard named ${name} would be taken for a side file of the model folder (loaders read only *.safetensors files as weights); rename the shard (and its index entries) to end in .safetensors`);
    }
    // Each output file is written under a temporary name first (atomic-file.ts's tempNameFor): a name
    // without room for that failed midway with the temporary name's ENAMETOOLONG.
    const bytes = Buffer.byteLength(name);
    if (bytes + TEMP_SUFFIX_BYTES > NAME_MAX_BYTES) {
      throw new SafetensorsError(s.path, `a shard named with ${bytes} bytes leaves no room for its temporary name (${TEMP_SUFFIX_BYTES} bytes more; file names hold ${NAME_MAX_BYTES}); rename the shard (and its index entries)`);
    }
  }
}

/** Tensors only a quantized checkpoint holds: scales and packed codes (compressed-tensors, ModelOpt,
 *  FP8 releases, GPTQ/AWQ, bitsandbytes, gpt-oss MXFP4). */
const QUANTIZATION_TENSOR = /\.(weight_scale|weight_scale_inv|weight_scale_2|weight_packed|weight_global_scale|input_scale|qweight|qzeros|g_idx|absmax|quant_map|SCB|weight_format)$|\.quant_state\.|_blocks$|_scales$/;
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Files beside config.json that declare a checkpoint quantized on their own: ModelOpt's export
 *  (hf_quant_config.json; its config.json may have no quantization_config, as in NVIDIA's early
 *  FP8/NVFP4 releases) and AutoGPTQ's and AutoAWQ's (quantize_config.json, quant_config.json). */
const QUANTIZATION_DESCRIPTORS = ['hf_quant_config.json', 'quantize_config.json', 'quant_config.json'];

/** An input that is already quantized (its config.json has a quantization_config, or a
 *  quantization descriptor file lies beside it, and a weight is not a float or a tensor is a
 *  quantization scale or code: an FP8 release, an earlier fp4kit output) is refused: its packed
 *  weights would be copied and declared unquantized, and its own quantization description replaced
 *  or dropped. A quantization_config over float weights only (left behind in a merged QLoRA model
 *  saved in bf16) is replaced like any config's. */
export function checkNotQuantized(ckpt: CheckpointFiles, config: ModelConfig): void {
  const q = config?.quantization_config;
  const descriptor = q !== undefined && q !== null ? null : QUANTIZATION_DESCRIPTORS.find((n) => isFileSync(join(ckpt.dir, n)));
  if ((q === undefined || q === null) && descriptor === undefined) return;
  // A weight that is not a float says it best; a scale or code tensor otherwise.
  const all = ckpt.shards.flatMap((sh) => sh.tensors);
  const evidence = all.find((t) => t.name.endsWith('.weight') && !FLOAT_DTYPES.has(t.dtype)) ?? all.find((t) => QUANTIZATION_TENSOR.test(t.name));
  if (evidence === undefined) return;
  const dir = ckpt.dir;
  const holds = `it holds ${JSON.stringify(evidence.name)} (${evidence.dtype}); fp4kit quantizes float (F32, F16, BF16) checkpoints: start from the unquantized model`;
  if (descriptor) throw new SafetensorsError(join(dir, descriptor), `the input is already quantized: ${descriptor} describes its quantization and ${holds}`);
  const method = typeof q === 'object' && typeof (q as Record<string, unknown>).quant_method === 'string' ? ` (quant_method ${JSON.stringify((q as Record<string, unknown>).quant_method)})` : '';
  throw new SafetensorsError(join(dir, 'config.json'), `the input is already quantized: its config.json has a quantization_config${method} and ${holds}`);
}

/** A regular file (links followed) at `path`; never opened, so a FIFO there blocks nothing. */
function isFileSync(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/**
 * Plan every shard of an input and make the checks that need all of them, as a single run makes
 * them (quantize-checkpoint.ts): no output tensor written twice, no fused group or MoE layer partly
 * quantized, something to quantize in a serving layout, a Fisher file that fits. A distributed run
 * makes them when it is planned and again at its merge: a part with the plan opens only its shards.
 */
export function planWholeInput(ckpt: CheckpointFiles, layout: Layout, options: CheckedCheckpointOptions, config: ModelConfig, fisher?: SafetensorsFile): PlannedTensor[][] {
  const plans = ckpt.shards.map((s) => planShard(s, layout, options, config, options.only, options.skip));
  checkOutputNames(ckpt, plans);
  checkFusedGroups(ckpt, plans, layout, config);
  checkSomethingQuantized(ckpt, plans, layout, options.format, config);
  if (fisher !== undefined) checkFisherFile(fisher, plans.flat().filter((p) => p.quantize).map((p) => p.info));
  return plans;
}
