// Hostile inputs for the checkpoint tool, second round (2026-12-08): model folders as real users'
// models bring them (a ModelOpt FP8 release whose quantization lives in hf_quant_config.json, a
// Mistral folder with consolidated.safetensors beside its shards), and safetensors headers the
// reference parser (Python `safetensors`) reads. Each case here went wrong before its fix.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quantizeCheckpoint } from '../lib/checkpoint/quantize-checkpoint.js';
import { parseSafetensorsBytes } from '../lib/checkpoint/safetensors/header.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { gaussian } from './helpers/data.js';

const repo = join(__dirname, '..');
const tiny = join(repo, 'examples', 'tiny-model');
const root = mkdtempSync(join(tmpdir(), 'fp4kit-hostile2-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
let seed = 1;
const weight = (name: string, rows = 32, cols = 64) => ({ name, dtype: 'F32', shape: [rows, cols], data: bytesOf(gaussian(rows * cols, seed++, 0.05)) });

/** A safetensors file's bytes from a header given as text (padded to 8 bytes) and a data section. */
function fileBytes(header: string, data: Uint8Array): Uint8Array {
  const h = Buffer.from(header + ' '.repeat((8 - (Buffer.byteLength(header) % 8)) % 8));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('inputs already quantized, whatever file says so', () => {
  // NVIDIA's ModelOpt exports (nvidia/*-FP8, *-FP4) describe their quantization in hf_quant_config.json;
  // early ones left config.json without a quantization_config. The run quantized the layers ModelOpt
  // had excluded, copied the FP8 weights with their scales, declared them unquantized in the
  // compressed-tensors ignore list, and dropped hf_quant_config.json: a model no loader reads right.
  it.each([
    ['hf_quant_config.json', '{"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}}'],
    ['quantize_config.json', '{"bits": 4, "group_size": 128, "desc_act": false}'],
  ])('a quantized input described by %s (config.json without quantization_config) is refused before anything is written', async (descriptor, text) => {
    const dir = join(root, `fp8-${descriptor}`);
    mkdirSync(dir);
    const fp8 = { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F8_E4M3', shape: [32, 64], data: new Uint8Array(32 * 64).fill(0x38) };
    const scale = { name: 'model.layers.0.self_attn.q_proj.weight_scale', dtype: 'F32', shape: [], data: bytesOf(new Float32Array([0.01])) };
    await writeSafetensors(join(dir, 'model.safetensors'), [weight('model.layers.0.mlp.down_proj.weight'), fp8, scale]);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', architectures: ['LlamaForCausalLM'] }));
    writeFileSync(join(dir, descriptor), text);
    for (const layout of ['fp4kit', 'compressed-tensors', 'modelopt'] as const) {
      const out = join(root, `fp8-${descriptor}-${layout}`);
      await expect(quantizeCheckpoint(dir, out, { format: 'nvfp4', layout })).rejects.toThrow(
        `${join(dir, descriptor)}: the input is already quantized: ${descriptor} describes its quantization and it holds "model.layers.0.self_attn.q_proj.weight" (F8_E4M3)`);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('a stale hf_quant_config.json beside float weights only is no reason to refuse (and is not copied)', async () => {
    const dir = join(root, 'stale-descriptor');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model.safetensors'), [weight('model.layers.0.mlp.down_proj.weight')]);
    writeFileSync(join(dir, 'hf_quant_config.json'), '{"quantization": {"quant_algo": "FP8"}}');
    const out = join(root, 'stale-descriptor-out');
    const s = await quantizeCheckpoint(dir, out, { format: 'nvfp4', layout: 'compressed-tensors' });
    expect(s.quantized).toBe(1);
    expect(readdirSync(out)).not.toContain('hf_quant_config.json');
  });
});

describe('model folders as they come', () => {
  // Mistral's repositories ship consolidated.safetensors (its own format, for vLLM's mistral loader)
  // beside the transformers shards and their index: the same weights, unquantized. It was left out
  // of the output without a word, unlike pytorch_model.bin or a .gguf.
  it('a .safetensors file the index does not list is left out and listed in notCopied', async () => {
    const dir = join(root, 'mistral');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model-00001-of-00001.safetensors'), [weight('model.layers.0.mlp.down_proj.weight')]);
    await writeSafetensors(join(dir, 'consolidated.safetensors'), [weight('layers.0.feed_forward.w2.weight')]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { 'model.layers.0.mlp.down_proj.weight': 'model-00001-of-00001.safetensors' } }));
    writeFileSync(join(dir, 'params.json'), '{}');
    const out = join(root, 'mistral-out');
    const s = await quantizeCheckpoint(dir, out, { format: 'nvfp4' });
    expect(s.notCopied).toEqual(['consolidated.safetensors']);
    expect(readdirSync(out)).not.toContain('consolidated.safetensors');
    expect(readdirSync(out)).toContain('params.json');
    expect(JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8')).notCopied).toEqual(['consolidated.safetensors']);
  });

  // A user points at the index (or config.json) of the model they mean: it was read as a safetensors
  // file and failed with "header length 7017841271895827067 is too large".
  it.each(['model.safetensors.index.json', 'config.json'])('%s given as the input is named a JSON file, with the folder to give instead', async (name) => {
    const dir = join(root, `json-input-${name}`);
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model-00001-of-00001.safetensors'), [weight('model.layers.0.mlp.down_proj.weight')]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { 'model.layers.0.mlp.down_proj.weight': 'model-00001-of-00001.safetensors' } }));
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama"}');
    const out = join(root, `json-input-${name}-out`);
    await expect(quantizeCheckpoint(join(dir, name), out, { format: 'nvfp4' })).rejects.toThrow(
      `${join(dir, name)}: a JSON file, not a safetensors file: give the model folder (${dir}) as the input`);
    expect(existsSync(out)).toBe(false);
  });

  it('an index with an empty weight_map is refused, naming the index (the fp4kit layout published an output of no tensors; compressed-tensors failed with a TypeError)', async () => {
    const dir = join(root, 'empty-index');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model-00001-of-00001.safetensors'), [weight('model.layers.0.mlp.down_proj.weight')]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), '{"metadata": {}, "weight_map": {}}');
    for (const layout of ['fp4kit', 'compressed-tensors'] as const) {
      const out = join(root, `empty-index-${layout}`);
      await expect(quantizeCheckpoint(dir, out, { format: 'nvfp4', layout })).rejects.toThrow(
        `${join(dir, 'model.safetensors.index.json')}: index lists no tensor (its "weight_map" is empty)`);
      expect(existsSync(out)).toBe(false);
    }
  });
});

describe('safetensors headers the reference parser reads', () => {
  // Python safetensors (Rust: `__metadata__` is an Option of a string map) reads null as no metadata.
  // A user hands over the weights they have: pytorch_model.bin, a .pt, a GGUF, or a repository cloned
  // without git-lfs. The only word was "header length 578712552184433488 is too large".
  it.each([
    ['a PyTorch zip (pytorch_model.bin)', [0x50, 0x4b, 0x03, 0x04, 0, 0, 8, 8], 'the file is a zip archive, as PyTorch saves pytorch_model.bin and .pt files, not a safetensors file'],
    ['a legacy PyTorch pickle', [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46], 'the file is a Python pickle (an old PyTorch .bin or .pt), not a safetensors file'],
    ['a GGUF file', [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0], 'the file is a GGUF file, not a safetensors file'],
    ['JSON text', [...Buffer.from('{"metadat')].slice(0, 8), 'the file is JSON text, not a safetensors file'],
    ['a Git LFS pointer', [...Buffer.from('version https://git-lfs.github.com/spec/v1\n')], 'the file is a Git LFS pointer, not the weights: fetch them with git lfs pull'],
  ])('%s read as safetensors says what the file is', (_what, prefix, says) => {
    const bytes = new Uint8Array(256);
    bytes.set(prefix);
    let message = '';
    try {
      parseSafetensorsBytes('w.bin', bytes);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^w\.bin: header length \d+ is too large: safetensors readers accept at most 100000000 bytes \(/);
    expect(message.endsWith(` (${says})`), message).toBe(true);
  });

  it('"__metadata__": null is no metadata, as Python safetensors reads it', () => {
    const w = new Uint8Array(bytesOf(new Float32Array([1, 2])));
    const h = parseSafetensorsBytes('m.safetensors', fileBytes('{"__metadata__":null,"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', w));
    expect(h.tensors.map((t) => t.name)).toEqual(['a']);
    expect(Object.keys(h.metadata)).toEqual([]);
    // A value that is not a string stays refused, as there.
    expect(() => parseSafetensorsBytes('m.safetensors', fileBytes('{"__metadata__":{"k":null},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', w))).toThrow('__metadata__ value of "k" is not a string');
  });
});

describe('flags given twice', () => {
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, stderr: r.stderr };
  };
  // parseArgs keeps the last value without a word: `--skip a --skip b` quantized what a named, and
  // `--only q_proj --only k_proj` left q_proj in bf16; `--format nvfp4 --format mxfp4` wrote mxfp4.
  it('a flag with a value given twice is a usage error naming it, before anything is written', () => {
    const out = join(root, 'twice');
    for (const [args, message] of [
      [['--format', 'nvfp4', '--skip', 'q_proj', '--skip', 'k_proj'], "fp4kit: --skip given twice; give it once (one regex matches several names: --skip 'a|b')"],
      [['--format', 'nvfp4', '--only', 'q_proj', '--only=k_proj'], '--only given twice'],
      [['--format', 'nvfp4', '--format', 'mxfp4'], '--format given twice'],
      [['-o', join(root, 'twice-2'), '--format', 'nvfp4'], '--output given twice'],
    ] as const) {
      const r = cli(['quantize', tiny, '-o', out, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toContain(message);
      expect(existsSync(out)).toBe(false);
    }
    const plots = cli(['inspect', tiny, '--plot', join(root, 'p1'), '--plot', join(root, 'p2')]);
    expect(plots.code).toBe(2);
    expect(plots.stderr).toMatch(/^fp4kit: --plot given twice/);
    const worker = cli(['worker', '--queue', 'redis://127.0.0.1:1', '--queue', 'redis://127.0.0.1:2']);
    expect(worker.code).toBe(2);
    expect(worker.stderr).toMatch(/^fp4kit: --queue given twice/);
    // A boolean flag twice says the same thing twice: still fine.
    const ok = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4', '--json', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('a reader of stderr that goes away', () => {
  // `fp4kit quantize … 2>&1 | head -1`: the progress line after the first met a closed pipe, the
  // EPIPE was unhandled, and the run died with exit 1 and its staging folder left beside the output.
  it('the run goes on without its progress lines, publishes its output whole and leaves no staging folder', async () => {
    const dir = join(root, 'stderr-gone');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model.safetensors'), Array.from({ length: 6 }, (_, i) => weight(`model.layers.${i}.mlp.down_proj.weight`, 256, 512)));
    const out = join(root, 'stderr-gone-out');
    const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', dir, '-o', out, '--format', 'nvfp4', '--backend', 'js'], { cwd: repo });
    child.stderr!.destroy(); // the reader is gone before the first progress line
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(stdout).toContain('6 tensors quantized to nvfp4');
    expect(readdirSync(out).sort()).toEqual([...JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8')).files].sort());
    expect(readdirSync(out)).toContain('model.safetensors');
    expect(readdirSync(root).filter((n) => n.startsWith('stderr-gone-out.'))).toEqual([]);
  });
});
