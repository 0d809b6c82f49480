// The gpt-oss layout: which tensors are MXFP4 (the MoE expert weights only, chosen by name), the
// axis they are blocked along (the input axis: transformers' bf16 [E, in, out] is transposed to
// the checkpoint's [E, out, in] first, decided by name + config.json, never by shape — a square
// expert matrix included), read-back in the input's order, and the refusals of anything whose
// role cannot be determined. test/loaders.test.ts loads the result in transformers itself.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dequantize, quantize } from '../lib/index.js';
import { quantizeCheckpoint, type CheckpointOptions } from '../lib/checkpoint/quantize-checkpoint.js';
import { readBackTensor, readBackValues } from '../lib/checkpoint/layouts/index.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { firstBitDifference } from './helpers/fixtures.js';
import { gptOssConfig, gptOssTensors, transposeExperts, writeGptOssCheckpoint, type GptOssSizes, type GptOssTensor } from './helpers/gpt-oss-checkpoint.js';

const root = mkdtempSync(join(tmpdir(), 'fp4kit-gptoss-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let serial = 0;
async function checkpoint(sizes: GptOssSizes, opts: { dtype?: 'BF16' | 'F32'; config?: Record<string, unknown> | null; edit?: (t: GptOssTensor[]) => GptOssTensor[] } = {}) {
  let tensors = gptOssTensors(sizes, opts.dtype);
  if (opts.edit) tensors = opts.edit(tensors);
  const dir = join(root, `in-${serial++}`);
  await writeGptOssCheckpoint(dir, tensors, opts.config === undefined ? gptOssConfig(sizes) : opts.config);
  return { dir, tensors };
}

async function run(dir: string, options: Partial<CheckpointOptions> = {}) {
  const out = join(root, `out-${serial++}`);
  const summary = await quantizeCheckpoint(dir, out, { format: 'mxfp4', layout: 'gpt-oss', ...options });
  const file = await SafetensorsFile.open(join(out, 'model.safetensors'));
  const get = async (n: string) => {
    const info = file.tensor(n);
    if (!info) throw new Error(`missing ${n}`);
    return file.read(info);
  };
  return { out, summary, file, get };
}

/** What the layout must store for a bf16 expert tensor: fp4kit's quantize of the [E, out, in] transpose. */
function referenceBlocks(t: GptOssTensor) {
  const [e, input, output] = t.shape;
  return quantize(transposeExperts(t.values, t.shape), { format: 'mxfp4', shape: [e, output, input] });
}

const expertNames = (layers: number) => Array.from({ length: layers }, (_v, l) => [`model.layers.${l}.mlp.experts.gate_up_proj`, `model.layers.${l}.mlp.experts.down_proj`]).flat();

describe('gpt-oss layout', () => {
  it('quantizes exactly the expert weights, transposed to [E, out, in] and blocked along the input axis', async () => {
    const sizes = { hidden: 96, inter: 64, experts: 3, layers: 2 };
    const { dir, tensors } = await checkpoint(sizes);
    const { summary, file, get, out } = await run(dir);
    const quantized = summary.tensors.filter((t) => t.action === 'quantized');
    expect(quantized.map((t) => t.name)).toEqual(expertNames(2));
    for (const t of tensors) {
      if (!expertNames(2).includes(t.name)) {
        // everything else is copied byte for byte under its own name: biases, router, attention, sinks, norms
        expect(file.tensor(t.name), t.name).toMatchObject({ dtype: 'BF16', shape: t.shape });
        continue;
      }
      const [e, input, output] = t.shape;
      expect(file.tensor(`${t.name}_blocks`)).toMatchObject({ dtype: 'U8', shape: [e, output, input / 32, 16] });
      expect(file.tensor(`${t.name}_scales`)).toMatchObject({ dtype: 'U8', shape: [e, output, input / 32] });
      expect(file.tensor(t.name)).toBeUndefined();
      const ref = referenceBlocks(t);
      expect(Buffer.from(await get(`${t.name}_blocks`)).equals(Buffer.from(ref.data)), t.name).toBe(true);
      expect(Buffer.from(await get(`${t.name}_scales`)).equals(Buffer.from(ref.scales)), t.name).toBe(true);
      expect(summary.tensors.find((s) => s.name === t.name)).toMatchObject({ shape: [e, input, output], blockedShape: [e, output, input] });
    }
    expect(summary.tensors.find((t) => t.name === 'model.layers.0.mlp.experts.gate_up_proj_bias')).toMatchObject({ action: 'copied', reason: expect.stringMatching(/only the MoE expert weights/) });
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('gpt_oss');
    expect(config.quantization_config.quant_method).toBe('mxfp4');
    expect(config.quantization_config.modules_to_not_convert).toEqual(expect.arrayContaining(['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.router', 'lm_head']));
    await file.close();
  });

  it('a square expert matrix (hidden == intermediate) is transposed too: the name decides, not the shape', async () => {
    const sizes = { hidden: 64, inter: 64, experts: 2, layers: 1 };
    const { dir, tensors } = await checkpoint(sizes);
    const { file, get } = await run(dir);
    const down = tensors.find((t) => t.name === 'model.layers.0.mlp.experts.down_proj')!;
    expect(down.shape).toEqual([2, 64, 64]);
    const blocks = Buffer.from(await get(`${down.name}_blocks`));
    expect(blocks.equals(Buffer.from(referenceBlocks(down).data))).toBe(true);
    // What the layout wrote before the fix (blocks along the stored last axis) is different bytes.
    const untransposed = quantize(down.values, { format: 'mxfp4', shape: down.shape });
    expect(blocks.equals(Buffer.from(untransposed.data))).toBe(false);
    await file.close();
  });

  it('read-back returns the values in the input order [E, in, out], and they are close to the input', async () => {
    const sizes = { hidden: 64, inter: 96, experts: 2, layers: 1 };
    const { dir, tensors } = await checkpoint(sizes);
    const { summary, file, get } = await run(dir);
    for (const t of summary.tensors.filter((x) => x.action === 'quantized')) {
      const input = tensors.find((x) => x.name === t.name)!;
      const back = await readBackTensor('gpt-oss', get, t.name, 'mxfp4', t.shape);
      expect(back.shape).toEqual(t.blockedShape);
      const values = await readBackValues('gpt-oss', get, t.name, 'mxfp4', t.shape);
      const ref = transposeExperts(dequantize(referenceBlocks(input)), t.blockedShape!);
      expect(firstBitDifference(values, ref)).toBe(-1);
      let num = 0;
      let den = 0;
      for (let i = 0; i < values.length; i++) { num += (values[i] - input.values[i]) ** 2; den += input.values[i] ** 2; }
      expect(Math.sqrt(num / den)).toBeLessThan(0.2); // MXFP4 error; a transposed read-back would be ~1.4
      expect(t.relRmse).toBeCloseTo(Math.sqrt(num / den), 5);
    }
    await expect(readBackTensor('gpt-oss', get, 'model.layers.0.self_attn.q_proj.weight', 'mxfp4', [64, 64])).rejects.toThrow(/readBackTensor: the gpt-oss layout stores only MoE expert weights/);
    await file.close();
  });

  it('F32 experts are transposed as 4-byte elements', async () => {
    const sizes = { hidden: 32, inter: 96, experts: 2, layers: 1 };
    const { dir, tensors } = await checkpoint(sizes, { dtype: 'F32' });
    const { file, get } = await run(dir);
    for (const name of expertNames(1)) {
      const t = tensors.find((x) => x.name === name)!;
      expect(Buffer.from(await get(`${name}_blocks`)).equals(Buffer.from(referenceBlocks(t).data)), name).toBe(true);
    }
    await file.close();
  });

  it('--only: biases and Linear weights stay bf16 with a reason; a layer whose gate_up_proj input axis is not a multiple of 32 is refused (it would stay bf16 beside an MXFP4 down_proj)', async () => {
    const { dir } = await checkpoint({ hidden: 64, inter: 64, experts: 2, layers: 1 });
    const { summary, file } = await run(dir, { only: /experts|q_proj/ });
    const by = (n: string) => summary.tensors.find((t) => t.name === n)!;
    expect(by('model.layers.0.mlp.experts.gate_up_proj_bias')).toMatchObject({ action: 'copied', reason: 'gpt-oss keeps biases in bf16' });
    expect(by('model.layers.0.self_attn.q_proj.weight')).toMatchObject({ action: 'copied', reason: expect.stringMatching(/only the MoE expert weights/) });
    expect(by('model.layers.0.mlp.experts.down_proj')).toMatchObject({ action: 'quantized' });
    await file.close();
    // gate_up_proj's input axis is hidden = 48: no whole MXFP4 blocks; down_proj's is 64.
    const narrow = await checkpoint({ hidden: 48, inter: 64, experts: 2, layers: 1 });
    const out = join(root, `refused-${serial++}`);
    await expect(quantizeCheckpoint(narrow.dir, out, { format: 'mxfp4', layout: 'gpt-oss' })).rejects.toThrow(
      'model.layers.0.mlp.experts: "model.layers.0.mlp.experts.down_proj" would be quantized but "model.layers.0.mlp.experts.gate_up_proj" copied (input axis 48 is not a multiple of 32 (MXFP4 blocks)); loaders of the gpt-oss layout load all of a layer\'s experts into one fused MoE with one quantization, and cannot load a mix: this model\'s shapes do not fit the gpt-oss layout; choose another --layout (fp4kit holds any shape)');
    expect(existsSync(out)).toBe(false);
  });
});

describe('gpt-oss layout refuses what it cannot place without guessing, and writes nothing', () => {
  const sizes = { hidden: 64, inter: 64, experts: 2, layers: 1 };
  async function refused(dir: string, options: Partial<CheckpointOptions>, message: RegExp) {
    const out = join(root, `refused-${serial++}`);
    await expect(quantizeCheckpoint(dir, out, { format: 'mxfp4', layout: 'gpt-oss', ...options })).rejects.toThrow(message);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).filter((n) => n.startsWith(`${basename(out)}.`))).toEqual([]);
  }

  it('an expert weight without config.json', async () => {
    const { dir } = await checkpoint(sizes, { config: null });
    await refused(dir, {}, /model\.safetensors: the gpt-oss layout cannot place tensor "model\.layers\.0\.mlp\.experts\.gate_up_proj" \[2, 64, 128\]: needs the model's config\.json/);
  });

  it('an expert weight of another model_type (Mixtral and Qwen3-MoE use the same names the other way round)', async () => {
    const { dir } = await checkpoint(sizes, { config: { ...gptOssConfig(sizes), model_type: 'mixtral' } });
    await refused(dir, {}, /config\.json model_type is "mixtral"; expected "gpt_oss"/);
  });

  it('an expert weight already stored [E, out, in] (its shape is not the one config.json gives GptOssExperts)', async () => {
    const { dir } = await checkpoint({ ...sizes, inter: 96 }, {
      edit: (ts) => ts.map((t) => (t.name.endsWith('experts.down_proj') ? { ...t, shape: [t.shape[0], t.shape[2], t.shape[1]] } : t)),
    });
    await refused(dir, {}, /experts\.down_proj" \[2, 64, 96\]: expected transformers' GptOssExperts down_proj \[E, inter, hidden\] = \[2, 96, 64\] from config\.json/);
  });

  it('a selected 3-D tensor that is not an expert weight', async () => {
    const { dir } = await checkpoint(sizes, {
      edit: (ts) => [...ts, { name: 'model.layers.0.mlp.experts.extra', dtype: 'BF16', shape: [2, 32, 32], values: new Float32Array(2 * 32 * 32) }],
    });
    await refused(dir, { only: /extra/ }, /cannot place tensor "model\.layers\.0\.mlp\.experts\.extra" \[2, 32, 32\]: a tensor of 3 dimensions that is not a gpt-oss expert weight/);
  });

  it('config.json without the sizes the shapes are checked against', async () => {
    const { dir } = await checkpoint(sizes, { config: { model_type: 'gpt_oss', hidden_size: 64 } });
    await refused(dir, {}, /config\.json num_local_experts is undefined; expected a positive integer/);
  });
});
