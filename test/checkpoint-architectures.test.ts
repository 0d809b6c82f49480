// Which tensors a run quantizes and which share a tensor scale, on the names real architectures
// use, against the conventions of the loaders of the serving layouts (vLLM's packed_modules_mapping,
// its unquantized routers and LM heads, GPT-2's Conv1D weights). Found by an audit that built tiny
// models of each architecture with transformers and read the loaders' source (2026-12-07): each
// case here was quantized wrongly before (bits right, roles wrong).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quantizeCheckpoint, type CheckpointOptions } from '../lib/checkpoint/quantize-checkpoint.js';
import { readModelConfig } from '../lib/checkpoint/model-config.js';
import { planRun } from '../lib/checkpoint/checkpoint-parts.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { gaussian } from './helpers/data.js';

const root = mkdtempSync(join(tmpdir(), 'fp4kit-arch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
let seed = 100;
/** A float32 weight [rows, cols] with |values| scaled by `scale` (distinct amaxes make distinct tensor scales). */
const weight = (name: string, rows: number, cols: number, scale = 1) => ({ name, dtype: 'F32', shape: [rows, cols], data: bytesOf(gaussian(rows * cols, seed++, scale)) });

async function model(name: string, tensors: ReturnType<typeof weight>[], config: Record<string, unknown>): Promise<string> {
  const dir = join(root, name);
  mkdirSync(dir);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

async function quantized(input: string, options: CheckpointOptions) {
  const out = `${input}-${options.layout}`;
  const summary = await quantizeCheckpoint(input, out, options);
  const file = await SafetensorsFile.open(join(out, 'model.safetensors'));
  const scalar = async (n: string) => {
    const info = file.tensor(n);
    if (!info) throw new Error(`missing ${n}`);
    const b = await file.read(info);
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  };
  const config = (await readModelConfig(out)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const action = (n: string) => summary.tensors.find((t) => t.name === n)?.action;
  return { out, summary, file, scalar, config, action };
}

/** The stored tensor scale of a module in a serving layout (compressed-tensors stores its reciprocal). */
const tensorScaleName = (layout: string, module: string) => (layout === 'compressed-tensors' ? `${module}.weight_global_scale` : `${module}.weight_scale_2`);

describe.each(['compressed-tensors', 'modelopt'] as const)('the %s layout', (layout) => {
  it('Mixtral experts w1/w3 and DeepSeek MLA q_a_proj/kv_a_proj_with_mqa share one tensor scale each (vLLM fuses them: w13, fused_qkv_a_proj)', async () => {
    const input = await model(`fused-${layout}`, [
      weight('model.layers.0.block_sparse_moe.experts.0.w1.weight', 32, 64, 1),
      weight('model.layers.0.block_sparse_moe.experts.0.w3.weight', 32, 64, 4),
      weight('model.layers.0.block_sparse_moe.experts.0.w2.weight', 64, 32, 1),
      weight('model.layers.0.block_sparse_moe.experts.1.w1.weight', 32, 64, 0.25),
      weight('model.layers.0.block_sparse_moe.experts.1.w3.weight', 32, 64, 1),
      weight('model.layers.0.block_sparse_moe.experts.1.w2.weight', 64, 32, 1),
      weight('model.layers.0.self_attn.q_a_proj.weight', 32, 64, 1),
      weight('model.layers.0.self_attn.kv_a_proj_with_mqa.weight', 48, 64, 4),
    ], { model_type: 'mixtral' });
    const q = await quantized(input, { format: 'nvfp4', layout });
    const scale = (m: string) => q.scalar(tensorScaleName(layout, m));
    const e = 'model.layers.0.block_sparse_moe.experts';
    expect(await scale(`${e}.0.w1`)).toBe(await scale(`${e}.0.w3`));
    expect(await scale(`${e}.1.w1`)).toBe(await scale(`${e}.1.w3`));
    expect(await scale(`${e}.0.w1`)).not.toBe(await scale(`${e}.1.w1`)); // per expert, not per layer
    expect(await scale('model.layers.0.self_attn.q_a_proj')).toBe(await scale('model.layers.0.self_attn.kv_a_proj_with_mqa'));
    await q.file.close();
  });

  it('BERT-style query/key/value and InternLM2 feed_forward.w1/w3 share one tensor scale each (vLLM: qkv_proj, gate_up_proj); a Linear under a block named for norms (DBRX) is quantized; HunYuan\'s router and T5\'s relative_attention_bias are kept', async () => {
    const input = await model(`more-fused-${layout}`, [
      weight('encoder.layer.0.attention.self.query.weight', 64, 64, 1),
      weight('encoder.layer.0.attention.self.key.weight', 64, 64, 4),
      weight('encoder.layer.0.attention.self.value.weight', 64, 64, 0.25),
      weight('model.layers.0.feed_forward.w1.weight', 32, 64, 1),
      weight('model.layers.0.feed_forward.w3.weight', 32, 64, 4),
      weight('model.layers.0.feed_forward.w2.weight', 64, 32, 1),
      weight('transformer.blocks.0.norm_attn_norm.attn.Wqkv.weight', 96, 64),
      weight('model.layers.0.mlp.gate.wg.weight', 4, 64),
      weight('model.transformer.ff_out.weight', 16, 64), // OLMo-1's LM head
      weight('model.transformer.blocks.0.ff_out.weight', 64, 64), // OLMo-1's MLP down projection: a Linear
      weight('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight', 32, 16),
    ], { model_type: 'custom' });
    const q = await quantized(input, { format: 'nvfp4', layout });
    const scale = (m: string) => q.scalar(tensorScaleName(layout, m));
    const a = 'encoder.layer.0.attention.self';
    expect(await scale(`${a}.query`)).toBe(await scale(`${a}.key`));
    expect(await scale(`${a}.key`)).toBe(await scale(`${a}.value`));
    expect(await scale('model.layers.0.feed_forward.w1')).toBe(await scale('model.layers.0.feed_forward.w3'));
    expect(await scale('model.layers.0.feed_forward.w1')).not.toBe(await scale('model.layers.0.feed_forward.w2'));
    expect(q.action('transformer.blocks.0.norm_attn_norm.attn.Wqkv.weight')).toBe('quantized');
    expect(q.action('model.layers.0.mlp.gate.wg.weight')).toBe('copied');
    expect(q.action('model.transformer.ff_out.weight')).toBe('copied');
    expect(q.action('model.transformer.blocks.0.ff_out.weight')).toBe('quantized');
    expect(q.action('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight')).toBe('copied');
    await q.file.close();
  });

  it('routers, LM heads under other names and embedding tables are copied and listed as unquantized; the Linear layers beside them are quantized', async () => {
    const input = await model(`roles-${layout}`, [
      weight('model.layers.0.block_sparse_moe.gate.weight', 4, 64), // Mixtral router
      weight('model.layers.0.mlp.gate.weight', 4, 64), // Qwen-MoE / DeepSeek router
      weight('model.layers.0.mlp.shared_expert_gate.weight', 1, 64), // Qwen2-MoE
      weight('model.layers.1.mlp.router.weight', 4, 64), // gpt-oss, Llama-4
      weight('model.layers.1.block_sparse_moe.router.layer.weight', 4, 64), // Granite-MoE
      weight('model.layers.0.mlp.gate_proj.weight', 32, 64), // a Linear: quantized
      weight('model.layers.0.self_attn.o_proj.weight', 64, 64), // a Linear: quantized
      weight('model.layers.0.attention.output.dense.weight', 64, 64), // a Linear inside a layer named output: quantized
      weight('output.weight', 16, 64), // InternLM2's LM head
      weight('transformer.output_layer.weight', 16, 64), // ChatGLM's LM head
      weight('shared.weight', 16, 64), // T5/BART's shared embedding table
    ], { model_type: 'custom' });
    // --only lifts the default selection but not what the layout's loaders cannot read packed.
    for (const only of [undefined, /weight$/]) {
      const q = await quantized(input, { format: 'nvfp4', layout, ...(only ? { only } : {}) });
      const kept = ['model.layers.0.block_sparse_moe.gate', 'model.layers.0.mlp.gate', 'model.layers.0.mlp.shared_expert_gate', 'model.layers.1.mlp.router',
        'model.layers.1.block_sparse_moe.router.layer', 'output', 'transformer.output_layer', 'shared'];
      for (const m of kept) expect(q.action(`${m}.weight`), m).toBe('copied');
      for (const m of ['model.layers.0.mlp.gate_proj', 'model.layers.0.self_attn.o_proj', 'model.layers.0.attention.output.dense']) expect(q.action(`${m}.weight`), m).toBe('quantized');
      const ignored: string[] = q.config.quantization_config.ignore;
      for (const m of kept.filter((k) => k !== 'shared')) expect(ignored, m).toContain(m);
      await q.file.close();
      rmSync(q.out, { recursive: true });
    }
  });

  it('an MoE layer stored as fused 3-D expert tensors, which the layout copies, is listed as unquantized by its module', async () => {
    const input = await model(`fused3d-${layout}`, [
      { name: 'model.layers.0.mlp.experts.gate_up_proj', dtype: 'F32', shape: [4, 64, 32], data: bytesOf(gaussian(4 * 64 * 32, seed++)) },
      { name: 'model.layers.0.mlp.experts.down_proj', dtype: 'F32', shape: [4, 32, 32], data: bytesOf(gaussian(4 * 32 * 32, seed++)) },
      weight('model.layers.0.self_attn.o_proj.weight', 64, 64),
    ], { model_type: 'qwen3_moe' });
    const q = await quantized(input, { format: 'nvfp4', layout });
    expect(q.action('model.layers.0.mlp.experts.gate_up_proj')).toBe('copied');
    expect(q.config.quantization_config.ignore).toContain('model.layers.0.mlp.experts');
    expect(q.config.quantization_config.ignore).not.toContain('model.layers.0.self_attn.o_proj');
    await q.file.close();
  });

  it("Granite-MoE's input_linear/output_linear and DBRX's experts.mlp.w1/v1/w2, copied whole, are listed by the fused MoE module vLLM builds for them", async () => {
    const t3 = (name: string, shape: number[]) => ({ name, dtype: 'F32', shape, data: bytesOf(gaussian(shape.reduce((a, b) => a * b), seed++)) });
    const granite = await model(`granite-moe-${layout}`, [
      t3('model.layers.0.block_sparse_moe.input_linear.weight', [4, 64, 32]),
      t3('model.layers.0.block_sparse_moe.output_linear.weight', [4, 32, 32]),
      weight('model.layers.0.shared_mlp.input_linear.weight', 64, 32), // GraniteMoeShared's dense MLP: a Linear
      weight('model.layers.0.self_attn.o_proj.weight', 32, 32),
    ], { model_type: 'granitemoeshared' });
    const g = await quantized(granite, { format: 'nvfp4', layout });
    expect(g.action('model.layers.0.block_sparse_moe.input_linear.weight')).toBe('copied');
    expect(g.action('model.layers.0.shared_mlp.input_linear.weight')).toBe('quantized');
    expect(g.config.quantization_config.ignore).toContain('model.layers.0.block_sparse_moe.experts');
    expect(g.config.quantization_config.ignore).not.toContain('model.layers.0.shared_mlp.input_linear');
    await g.file.close();
    const dbrx = await model(`dbrx-${layout}`, [
      t3('transformer.blocks.0.ffn.experts.mlp.w1', [128, 32]), // [E·I, H], no .weight
      t3('transformer.blocks.0.ffn.experts.mlp.v1', [128, 32]),
      t3('transformer.blocks.0.ffn.experts.mlp.w2', [128, 32]),
      weight('transformer.blocks.0.norm_attn_norm.attn.out_proj.weight', 32, 32),
    ], { model_type: 'dbrx' });
    const d = await quantized(dbrx, { format: 'nvfp4', layout });
    expect(d.action('transformer.blocks.0.ffn.experts.mlp.w1')).toBe('copied');
    expect(d.action('transformer.blocks.0.norm_attn_norm.attn.out_proj.weight')).toBe('quantized');
    expect(d.config.quantization_config.ignore).toContain('transformer.blocks.0.ffn.experts');
    await d.file.close();
  });

  it("Qwen-1's mlp.w2 and mlp.w1 share one tensor scale (vLLM's qwen.py stacks them into gate_up_proj); in another model_type mlp.w1/w2 are separate", async () => {
    for (const modelType of ['qwen', 'custom']) {
      const input = await model(`qwen1-${modelType}-${layout}`, [
        weight('transformer.h.0.mlp.w1.weight', 32, 64, 1),
        weight('transformer.h.0.mlp.w2.weight', 32, 64, 4),
        weight('transformer.h.0.mlp.c_proj.weight', 64, 32, 0.25),
      ], { model_type: modelType });
      const q = await quantized(input, { format: 'nvfp4', layout });
      const scale = (m: string) => q.scalar(tensorScaleName(layout, m));
      if (modelType === 'qwen') expect(await scale('transformer.h.0.mlp.w1')).toBe(await scale('transformer.h.0.mlp.w2'));
      else expect(await scale('transformer.h.0.mlp.w1')).not.toBe(await scale('transformer.h.0.mlp.w2'));
      expect(await scale('transformer.h.0.mlp.w1')).not.toBe(await scale('transformer.h.0.mlp.c_proj'));
      await q.file.close();
    }
  });

  it("Llama-4's vision tower is kept (vLLM builds it unquantized); its language model is quantized", async () => {
    const input = await model(`llama4-${layout}`, [
      weight('vision_model.model.layers.0.self_attn.q_proj.weight', 64, 64),
      weight('vision_model.patch_embedding.linear.weight', 64, 48),
      weight('language_model.model.layers.0.self_attn.o_proj.weight', 64, 64),
    ], { model_type: 'llama4' });
    const q = await quantized(input, { format: 'nvfp4', layout });
    expect(q.action('vision_model.model.layers.0.self_attn.q_proj.weight')).toBe('copied');
    expect(q.action('language_model.model.layers.0.self_attn.o_proj.weight')).toBe('quantized');
    expect(q.config.quantization_config.ignore).toContain('vision_model.model.layers.0.self_attn.q_proj');
    await q.file.close();
  });

  it("refuses an MoE layer whose experts would be partly quantized (vLLM's fused MoE cannot load a bf16 down_proj beside NVFP4 gate/up)", async () => {
    const input = await model(`half-moe-${layout}`, [
      weight('model.layers.0.mlp.experts.0.gate_proj.weight', 40, 64),
      weight('model.layers.0.mlp.experts.0.up_proj.weight', 40, 64),
      weight('model.layers.0.mlp.experts.0.down_proj.weight', 64, 40), // K = 40: not a multiple of 16
      weight('model.layers.0.mlp.experts.1.gate_proj.weight', 40, 64),
      weight('model.layers.0.mlp.experts.1.up_proj.weight', 40, 64),
      weight('model.layers.0.mlp.experts.1.down_proj.weight', 64, 40),
    ], { model_type: 'qwen3_moe' });
    const out = join(root, `half-moe-${layout}-out`);
    await expect(quantizeCheckpoint(input, out, { format: 'nvfp4', layout })).rejects.toThrow(
      `model.layers.0.mlp.experts: "model.layers.0.mlp.experts.0.gate_proj.weight", "model.layers.0.mlp.experts.0.up_proj.weight", "model.layers.0.mlp.experts.1.gate_proj.weight", … (4 in all) would be quantized but "model.layers.0.mlp.experts.0.down_proj.weight" copied (last dimension 40 is not a multiple of 16); loaders of the ${layout} layout load all of a layer's experts into one fused MoE with one quantization, and cannot load a mix`);
    expect(existsSync(out)).toBe(false);
    // Keeping the whole MoE in bf16 is the way out the message names; with nothing else to quantize, the run says so.
    await expect(quantizeCheckpoint(input, out, { format: 'nvfp4', layout, skip: /\.experts\./ })).rejects.toThrow(
      `no tensor to quantize in the ${layout} layout (e.g. "model.layers.0.mlp.experts.0.gate_proj.weight": matches --skip); its config would declare nvfp4 over an unquantized model`);
    expect(existsSync(out)).toBe(false);
  });
});

describe('GPT-2 (Conv1D weights, stored [in, out])', () => {
  const gpt2 = () => [
    weight('transformer.wte.weight', 16, 64),
    weight('transformer.wpe.weight', 8, 64),
    weight('transformer.h.0.attn.c_attn.weight', 64, 192),
    weight('transformer.h.0.attn.c_proj.weight', 64, 64),
    weight('transformer.h.0.mlp.c_fc.weight', 64, 128),
    weight('transformer.h.0.mlp.c_proj.weight', 128, 64),
  ];

  it('no layout blocks a Conv1D weight along its output axis by default; the serving layouts refuse it under --only too; wte/wpe are embeddings', async () => {
    const input = await model('gpt2', gpt2(), { model_type: 'gpt2' });
    const q0 = await quantized(input, { format: 'nvfp4', layout: 'fp4kit' });
    for (const t of q0.summary.tensors) expect(t.action, t.name).toBe('copied');
    expect(q0.summary.tensors.find((t) => t.name === 'transformer.h.0.attn.c_proj.weight')!.reason).toMatch(/Conv1D weight stored \[in, out\]/);
    await q0.file.close();
    // The serving layouts would declare NVFP4 over a model with nothing quantized: refused, with the reason.
    for (const options of [{ format: 'nvfp4', layout: 'compressed-tensors' }, { format: 'nvfp4', layout: 'modelopt' }, { format: 'nvfp4', layout: 'compressed-tensors', only: /c_/ }] as CheckpointOptions[]) {
      await expect(quantizeCheckpoint(input, join(root, 'gpt2-out'), options), JSON.stringify(options)).rejects.toThrow(/no tensor to quantize in the (compressed-tensors|modelopt) layout \(e\.g\. "transformer\.wte\.weight": .*\); its config would declare nvfp4 over an unquantized model/);
      expect(existsSync(join(root, 'gpt2-out'))).toBe(false);
    }
    // A VisionEncoderDecoder whose decoder is a GPT-2: the decoder's config says so.
    const captioner = await model('vit-gpt2', gpt2().map((t) => ({ ...t, name: `decoder.${t.name}` })), { model_type: 'vision-encoder-decoder', encoder: { model_type: 'vit' }, decoder: { model_type: 'gpt2' } });
    const c = await quantized(captioner, { format: 'nvfp4', layout: 'fp4kit' });
    expect(c.action('decoder.transformer.h.0.attn.c_attn.weight')).toBe('copied');
    await c.file.close();
    // CLVP's decoder holds its MLP as Conv1D (mlp.c_fc, mlp.c_proj; modeling_clvp.py), its attention as Linear.
    const clvp = await model('clvp', [
      weight('speech_decoder_model.model.decoder.layers.0.mlp.c_fc.weight', 64, 128),
      weight('speech_decoder_model.model.decoder.layers.0.mlp.c_proj.weight', 128, 64),
      weight('speech_decoder_model.model.decoder.layers.0.attn.q_proj.weight', 64, 64),
    ], { model_type: 'clvp', decoder_config: { model_type: 'clvp_decoder' } });
    const v = await quantized(clvp, { format: 'nvfp4', layout: 'fp4kit' });
    expect(v.action('speech_decoder_model.model.decoder.layers.0.mlp.c_fc.weight')).toBe('copied');
    expect(v.action('speech_decoder_model.model.decoder.layers.0.mlp.c_proj.weight')).toBe('copied');
    expect(v.action('speech_decoder_model.model.decoder.layers.0.attn.q_proj.weight')).toBe('quantized');
    await v.file.close();
    // gpt_bigcode names its projections the same but holds them as nn.Linear: quantized.
    const bigcode = await model('gpt-bigcode', gpt2(), { model_type: 'gpt_bigcode' });
    const q = await quantized(bigcode, { format: 'nvfp4', layout: 'compressed-tensors' });
    expect(q.action('transformer.h.0.attn.c_proj.weight')).toBe('quantized');
    expect(q.action('transformer.wte.weight')).toBe('copied');
    await q.file.close();
  });
});

describe('config.json as transformers writes it', () => {
  it("Python's bare Infinity, -Infinity and NaN are read and written back unchanged (strings holding those words too)", async () => {
    const dir = join(root, 'python-json');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model.safetensors'), [weight('model.layers.0.mlp.up_proj.weight', 32, 64)], { format: 'pt' });
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama", "clip": Infinity, "floor": -Infinity, "eps": NaN, "note": "Infinity, NaN \\" -Infinity", "list": [1, NaN, 2]}');
    for (const layout of ['compressed-tensors', 'fp4kit'] as const) {
      const q = await quantized(dir, { format: 'nvfp4', layout });
      const text = readFileSync(join(q.out, 'config.json'), 'utf8');
      expect(text).toContain('"clip": Infinity,');
      expect(text).toContain('"floor": -Infinity,');
      expect(text).toContain('"eps": NaN,');
      expect(text).toContain('"note": "Infinity, NaN \\" -Infinity",');
      expect(text.replace(/\s+/g, '')).toContain('"list":[1,NaN,2]');
      expect(q.action('model.layers.0.mlp.up_proj.weight')).toBe('quantized');
      await q.file.close();
    }
  });
});

describe('config.json as transformers writes it (numbers)', () => {
  it("numbers keep their spelling: Python's 10000.0 and 8.0 stay floats (transformers warns when yarn's attention_factor is not one; transformers 4 did so for any rope factor), 1e-05, an integer beyond 2^53, -0.0; the layout's own quantization_config is written anew", async () => {
    const dir = join(root, 'python-floats');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model.safetensors'), [weight('model.layers.0.mlp.up_proj.weight', 32, 64)], { format: 'pt' });
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama", "rope_theta": 10000.0, "rope_scaling": {"factor": 8.0, "rope_type": "llama3"}, "rms_norm_eps": 1e-05, ' +
      '"big": 18446744073709551615, "zero": -0.0, "trap": "\\u0000fp4kit-number:5", "list": [1.0, 2, 3.50], "__proto__": {"a": 2.0}, "text": "10000.0", "hidden_size": 64, "initializer_range": 0.02, ' +
      '"quantization_config": {"version": 1.0}}');
    for (const layout of ['compressed-tensors', 'fp4kit'] as const) {
      const q = await quantized(dir, { format: 'nvfp4', layout });
      const text = readFileSync(join(q.out, 'config.json'), 'utf8');
      for (const kept of ['"rope_theta": 10000.0,', '"factor": 8.0,', '"rms_norm_eps": 1e-05,', '"big": 18446744073709551615,', '"zero": -0.0,', '"a": 2.0', '"text": "10000.0",', '"hidden_size": 64,', '"initializer_range": 0.02,']) {
        expect(text, kept).toContain(kept);
      }
      expect(text.replace(/\s+/g, '')).toContain('"list":[1.0,2,3.50]');
      expect(text).toContain('"trap": "\\u0000fp4kit-number:5",'); // a string shaped like an internal marker stays a string
      expect(text).not.toContain('"version": 1.0'); // the quantization_config is the layout's own
      expect(q.config.rope_theta).toBe(10000);
      expect(q.action('model.layers.0.mlp.up_proj.weight')).toBe('quantized');
      await q.file.close();
    }
    // A number JSON does not allow (a leading zero) is still refused as not JSON, before anything is written.
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama", "x": 01}');
    await expect(quantizeCheckpoint(dir, join(root, 'python-floats-bad'), { format: 'nvfp4', layout: 'fp4kit' })).rejects.toThrow(/config\.json: not JSON/);
    expect(existsSync(join(root, 'python-floats-bad'))).toBe(false);
  });
});

describe('the model dtype the compressed-tensors layout declares', () => {
  it("is bfloat16, the dtype compressed-tensors decompresses NVFP4 to (a float32 or float16 model's forward failed in transformers: float != BFloat16); sub-configs too, their numbers kept; the other layouts keep the input's", async () => {
    const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ['f32', { model_type: 'llama', dtype: 'float32' }, { dtype: 'bfloat16' }],
      ['f16-legacy', { model_type: 'llama', torch_dtype: 'float16' }, { torch_dtype: 'bfloat16' }],
      ['bf16', { model_type: 'llama', dtype: 'bfloat16' }, { dtype: 'bfloat16' }],
      ['none', { model_type: 'llama' }, { dtype: 'bfloat16' }],
      ['null', { model_type: 'llama', dtype: null }, { dtype: 'bfloat16' }], // transformers reads null as float32
      ['f64', { model_type: 'llama', dtype: 'float64' }, { dtype: 'bfloat16' }],
    ];
    for (const [label, config, want] of cases) {
      const dir = await model(`dtype-${label}`, [weight('model.layers.0.mlp.up_proj.weight', 32, 64)], config);
      const q = await quantized(dir, { format: 'nvfp4', layout: 'compressed-tensors' });
      expect(q.config, label).toMatchObject(want);
      if (label === 'f16-legacy') expect(q.config.dtype).toBeUndefined(); // transformers 4's key stays the only one
      await q.file.close();
    }
    const dir = join(root, 'dtype-composite');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model.safetensors'), [weight('model.language_model.layers.0.mlp.up_proj.weight', 32, 64)], { format: 'pt' });
    writeFileSync(join(dir, 'config.json'), '{"model_type": "gemma3", "dtype": "float32", "text_config": {"dtype": "float32", "rope_theta": 10000.0}, "vision_config": {"image_size": 224}}');
    const q = await quantized(dir, { format: 'nvfp4', layout: 'compressed-tensors' });
    const text = readFileSync(join(q.out, 'config.json'), 'utf8').replace(/\s+/g, '');
    expect(text).toContain('"dtype":"bfloat16","text_config":{"dtype":"bfloat16","rope_theta":10000.0}');
    await q.file.close();
    for (const layout of ['modelopt', 'fp4kit'] as const) {
      const other = await quantized(dir, { format: 'nvfp4', layout });
      expect(other.config.dtype, layout).toBe('float32');
      await other.file.close();
    }
  });
});

describe('inputs no layout can take', () => {
  it('an input that is already quantized (a quantization_config and FP8 weights with their scales: an FP8 release) is refused before anything is written; a stale quantization_config over float weights is replaced', async () => {
    const fp8 = { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F8_E4M3', shape: [64, 32], data: new Uint8Array(64 * 32).fill(0x38) };
    const scale = { name: 'model.layers.0.mlp.down_proj.weight_scale_inv', dtype: 'F32', shape: [1, 1], data: bytesOf(new Float32Array([0.5])) };
    const input = await model('fp8-release', [weight('model.layers.0.mlp.up_proj.weight', 32, 64), fp8, scale] as never,
      { model_type: 'deepseek_v3', quantization_config: { quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [128, 128] } });
    for (const layout of ['fp4kit', 'compressed-tensors', 'modelopt'] as const) {
      const out = join(root, `fp8-release-${layout}`);
      await expect(quantizeCheckpoint(input, out, { format: 'nvfp4', layout })).rejects.toThrow(
        `${join(input, 'config.json')}: the input is already quantized: its config.json has a quantization_config (quant_method "fp8") and it holds "model.layers.0.mlp.down_proj.weight" (F8_E4M3); fp4kit quantizes float (F32, F16, BF16) checkpoints: start from the unquantized model`);
      expect(existsSync(out)).toBe(false);
    }
    // The planner of a distributed run (a queue's producer, the first --shard part) refuses it
    // before anything is queued or written: its parts open only their own shards.
    const planned = join(root, 'fp8-release-planned');
    await expect(planRun(input, planned, { format: 'nvfp4', layout: 'compressed-tensors' }, 1)).rejects.toThrow('the input is already quantized');
    expect(existsSync(planned)).toBe(false);
    // A merged QLoRA model saved in bf16 that kept its bitsandbytes quantization_config: float weights only.
    const merged = await model('qlora-merged', [weight('model.layers.0.mlp.up_proj.weight', 32, 64)],
      { model_type: 'llama', quantization_config: { quant_method: 'bitsandbytes', load_in_4bit: true } });
    const q = await quantized(merged, { format: 'nvfp4', layout: 'compressed-tensors' });
    expect(q.action('model.layers.0.mlp.up_proj.weight')).toBe('quantized');
    expect(q.config.quantization_config.quant_method).toBe('compressed-tensors');
    await q.file.close();
  });
});
