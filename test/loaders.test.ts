// Real loaders, not only our own reader: a small GptOssForCausalLM built by transformers from a
// config (no download), quantized by the fp4kit CLI (--format mxfp4 --layout gpt-oss), loaded by
// transformers' own MXFP4 loader on CPU (Mxfp4Config(dequantize=True) → convert_moe_packed_tensors),
// and compared with the bf16 model whose expert weights are fp4kit's decode
// (scripts/check_gpt_oss_loader.py). The square case (hidden == intermediate, as gpt-oss-20b/120b's
// 2880×2880 down_proj) is the one that used to load silently transposed.
// In CI (CI=true) Python with torch and transformers must be present: the suite fails, never skips.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointSummary } from '../lib/checkpoint/quantize-checkpoint.js';
import { writeDecodedTensors } from '../lib/checkpoint/decoded-tensors.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';

const repo = join(__dirname, '..');
const script = join(repo, 'scripts', 'check_gpt_oss_loader.py');
const python = process.env.PYTHON ?? 'python3';
const probe = spawnSync(python, ['-c', 'import torch, safetensors; from transformers import GptOssForCausalLM, Mxfp4Config'], { encoding: 'utf8' });
const haveLoader = probe.status === 0;
if (!haveLoader && process.env.CI === 'true') {
  throw new Error(`CI=true but ${python} cannot import torch, safetensors and transformers' GptOssForCausalLM/Mxfp4Config: ${probe.stderr || probe.error}`);
}

const EXPERTS = 4;
const LAYERS = 2;
const cases = [
  { label: 'rectangular experts (hidden 96, intermediate 64)', hidden: 96, inter: 64 },
  { label: 'square experts (hidden = intermediate = 64)', hidden: 64, inter: 64 },
];

interface ExpertResult {
  shape: number[];
  dtype: string;
  bitMismatches: number;
  directBitMismatches: number;
  relErrVsOriginal: number;
  transposedRelErrVsOriginal?: number;
}
interface LoaderResult {
  transformers: string;
  isQuantized: boolean;
  missing: string[];
  unexpected: string[];
  mismatched: string[];
  errors: string[];
  stored: Record<string, { dtype: string; shape: number[] }>;
  experts: Record<string, ExpertResult>;
  othersEqual: Record<string, boolean>;
  logits: { maxAbsDiffLoadedVsReference: number; maxAbsReference: number; relErrLoadedVsOriginal: number; cosineLoadedVsOriginal: number };
}

const root = mkdtempSync(join(tmpdir(), 'fp4kit-loaders-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dirs = cases.map((_c, i) => ({ bf16: join(root, `bf16-${i}`), quant: join(root, `mxfp4-${i}`), decoded: join(root, `decoded-${i}.safetensors`) }));
const cli: Array<{ code: number | null; stderr: string }> = [];
const summaries: CheckpointSummary[] = [];
let results: Record<string, LoaderResult> = {};

function run(args: string[]) {
  const r = spawnSync(args[0], args.slice(1), { cwd: repo, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${args.slice(0, 3).join(' ')} … exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!haveLoader)('gpt-oss MXFP4 loaded by transformers', () => {
  beforeAll(async () => {
    const started = performance.now();
    run([python, script, 'make', ...cases.flatMap((c, i) => [dirs[i].bf16, String(c.hidden), String(c.inter)])]);
    for (let i = 0; i < cases.length; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', dirs[i].bf16, '-o', dirs[i].quant, '--format', 'mxfp4', '--layout', 'gpt-oss'], {
        cwd: repo, encoding: 'utf8', timeout: 120_000,
      });
      cli.push({ code: r.status, stderr: r.stderr });
      if (r.status !== 0) throw new Error(`fp4kit quantize exited ${r.status}: ${r.stderr}`);
      summaries.push(JSON.parse(readFileSync(join(dirs[i].quant, 'fp4kit-summary.json'), 'utf8')) as CheckpointSummary);
      expect(await writeDecodedTensors(dirs[i].quant, dirs[i].decoded)).toBe(2 * LAYERS);
    }
    results = JSON.parse(run([python, script, 'check', ...dirs.flatMap((d) => [d.bf16, d.quant, d.decoded])])) as Record<string, LoaderResult>;
    console.log(`gpt-oss loader check: ${((performance.now() - started) / 1000).toFixed(1)} s, transformers ${Object.values(results)[0].transformers}`);
  }, 600_000);

  describe.each(cases.map((c, i) => [c.label, c, i] as const))('%s', (_label, c, i) => {
    it("fp4kit's decode file holds every expert weight, F32, in the model's [E, in, out] order", async () => {
      const f = await SafetensorsFile.open(dirs[i].decoded);
      try {
        expect(f.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(summaries[i].tensors.filter((t) => t.action === 'quantized').map((t) => [t.name, 'F32', t.shape]));
      } finally {
        await f.close();
      }
    });

    const expertNames = Array.from({ length: LAYERS }, (_v, l) => [`model.layers.${l}.mlp.experts.gate_up_proj`, `model.layers.${l}.mlp.experts.down_proj`]).flat();
    const inputShape = (name: string) => (name.endsWith('gate_up_proj') ? [EXPERTS, c.hidden, 2 * c.inter] : [EXPERTS, c.inter, c.hidden]);

    it('the CLI quantizes exactly the expert weights, blocked along their input axis', () => {
      expect(cli[i].code).toBe(0);
      const quantized = summaries[i].tensors.filter((t) => t.action === 'quantized');
      expect(quantized.map((t) => t.name).sort()).toEqual([...expertNames].sort());
      for (const t of quantized) {
        const [e, input, output] = inputShape(t.name);
        expect(t.shape).toEqual([e, input, output]);
        expect(t.blockedShape).toEqual([e, output, input]);
        const stored = results[dirs[i].quant].stored;
        expect(stored[`${t.name}_blocks`]).toEqual({ dtype: 'uint8', shape: [e, output, input / 32, 16] });
        expect(stored[`${t.name}_scales`]).toEqual({ dtype: 'uint8', shape: [e, output, input / 32] });
        expect(stored[t.name]).toBeUndefined();
      }
      // Biases, router, attention, sinks, norms, embeddings and lm_head stay bf16 under their own names.
      const stored = results[dirs[i].quant].stored;
      for (const name of ['model.layers.0.mlp.experts.gate_up_proj_bias', 'model.layers.1.mlp.experts.down_proj_bias', 'model.layers.0.mlp.router.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.sinks', 'lm_head.weight']) {
        expect(stored[name]?.dtype, name).toBe('bfloat16');
      }
    });

    it('transformers loads it with no missing, unexpected or mismatched keys', () => {
      const r = results[dirs[i].quant];
      // The checkpoint holds no plain expert tensors (asserted above), so with nothing missing the
      // experts can only have come from the MXFP4 loader, which leaves a plain (dequantized) model.
      expect(r.isQuantized).toBe(false);
      expect(r.missing).toEqual([]);
      expect(r.unexpected).toEqual([]);
      expect(r.mismatched).toEqual([]);
      expect(r.errors).toEqual([]);
    });

    it("the loader's expert weights equal fp4kit's decode bit for bit, in the model's [E, in, out] order", () => {
      const r = results[dirs[i].quant];
      expect(Object.keys(r.experts).sort()).toEqual([...expertNames].sort());
      for (const name of expertNames) {
        const e = r.experts[name];
        expect(e.shape, name).toEqual(inputShape(name));
        expect(e.bitMismatches, name).toBe(0);
        expect(e.directBitMismatches, name).toBe(0); // convert_moe_packed_tensors called directly
        // MXFP4 of Gaussian weights: about 0.115 relative error; a transposed matrix would be ~1.4.
        expect(e.relErrVsOriginal, name).toBeGreaterThan(0.05);
        expect(e.relErrVsOriginal, name).toBeLessThan(0.2);
        if (c.hidden === c.inter && name.endsWith('down_proj')) expect(e.transposedRelErrVsOriginal!, name).toBeGreaterThan(1);
      }
      expect(Object.entries(r.othersEqual).filter(([, same]) => !same)).toEqual([]);
    });

    it('logits equal those of the bf16 model holding fp4kit-dequantized experts', () => {
      const { logits } = results[dirs[i].quant];
      expect(logits.maxAbsReference).toBeGreaterThan(0.5);
      expect(logits.maxAbsDiffLoadedVsReference).toBeLessThanOrEqual(1e-6 * logits.maxAbsReference);
      // and stay close to the unquantized model (a transposed expert would not)
      expect(logits.cosineLoadedVsOriginal).toBeGreaterThan(0.95);
      expect(logits.relErrLoadedVsOriginal).toBeLessThan(0.3);
    });
  });
});

// compressed-tensors NVFP4, loaded by transformers with the real compressed-tensors package (its
// source vendored in test/vendor/compressed-tensors: the CI machines' package mirror lacks it):
// small models of four architectures built by transformers, quantized by the fp4kit CLI
// (--format nvfp4 --layout compressed-tensors), loaded as a user loads them (from_pretrained with
// the config's dtype), their weights read back decompressed and compared with fp4kit's decode, and
// their logits with the input model holding that decode (scripts/check_ct_loader.py). A float32
// input (its forward failed before the layout declared bfloat16), a sharded one, Gemma-2 (whose
// config floats transformers 5 checks strictly: 30.0 had come back as 30), fused Phi-3 projections
// and tied embeddings.
const ctScript = join(repo, 'scripts', 'check_ct_loader.py');
const ctProbe = spawnSync(python, ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(join(repo, 'test', 'vendor', 'compressed-tensors', 'src'))}); import torch, transformers, compressed_tensors`], { encoding: 'utf8' });
const haveCtLoader = ctProbe.status === 0;
if (!haveCtLoader && process.env.CI === 'true') {
  throw new Error(`CI=true but ${python} cannot import torch, transformers and the vendored compressed_tensors (needs pydantic, loguru, psutil): ${ctProbe.stderr || ctProbe.error}`);
}

interface CtResult {
  transformers: string;
  compressedTensors: string;
  configDtype: string;
  modelDtype: string;
  missing: string[];
  unexpected: string[];
  mismatched: string[];
  errors: string[];
  weights: Record<string, { shape: number[]; dtype: string; bitMismatches: number; bf16Exact: boolean }>;
  othersEqual: Record<string, boolean>;
  logits: { maxAbsDiffLoadedVsReference: number; maxAbsReference: number; relErrLoadedVsOriginal: number };
}

describe.skipIf(!haveCtLoader)('compressed-tensors NVFP4 loaded by transformers with the compressed-tensors package', () => {
  const ctCases = [
    { arch: 'llama', dtype: 'float32' },
    { arch: 'gemma2', dtype: 'bfloat16' },
    { arch: 'phi3', dtype: 'bfloat16' },
    { arch: 'qwen2-tied', dtype: 'bfloat16' },
  ];
  const ctDirs = ctCases.map((c) => ({ model: join(root, `ct-${c.arch}`), quant: join(root, `ct-${c.arch}-nvfp4`), decoded: join(root, `ct-${c.arch}-decoded.safetensors`) }));
  const ctSummaries: CheckpointSummary[] = [];
  let ctResults: Record<string, CtResult> = {};

  beforeAll(async () => {
    const started = performance.now();
    run([python, ctScript, 'make', ...ctCases.flatMap((c, i) => [ctDirs[i].model, c.arch, c.dtype])]);
    for (const d of ctDirs) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', d.model, '-o', d.quant, '--format', 'nvfp4', '--layout', 'compressed-tensors'], {
        cwd: repo, encoding: 'utf8', timeout: 120_000,
      });
      if (r.status !== 0) throw new Error(`fp4kit quantize exited ${r.status}: ${r.stderr}`);
      ctSummaries.push(JSON.parse(readFileSync(join(d.quant, 'fp4kit-summary.json'), 'utf8')) as CheckpointSummary);
      await writeDecodedTensors(d.quant, d.decoded);
    }
    ctResults = JSON.parse(run([python, ctScript, 'check', ...ctDirs.flatMap((d) => [d.model, d.quant, d.decoded])])) as Record<string, CtResult>;
    const first = Object.values(ctResults)[0];
    console.log(`compressed-tensors loader check: ${((performance.now() - started) / 1000).toFixed(1)} s, transformers ${first.transformers}, compressed-tensors ${first.compressedTensors}`);
  }, 600_000);

  describe.each(ctCases.map((c, i) => [`${c.arch} (${c.dtype})`, i] as const))('%s', (_label, i) => {
    it('loads with no missing, unexpected or mismatched keys, as a bfloat16 model (what compressed-tensors decompresses NVFP4 to)', () => {
      const r = ctResults[ctDirs[i].quant];
      expect(r.missing).toEqual([]);
      expect(r.unexpected).toEqual([]);
      expect(r.mismatched).toEqual([]);
      expect(r.errors).toEqual([]);
      expect(r.configDtype).toBe('torch.bfloat16');
      expect(r.modelDtype).toBe('torch.bfloat16');
    });

    it("every quantized weight, decompressed by compressed-tensors, equals fp4kit's decode bit for bit; every other parameter is the input's", () => {
      const r = ctResults[ctDirs[i].quant];
      const quantized = ctSummaries[i].tensors.filter((t) => t.action === 'quantized').map((t) => t.name);
      expect(quantized.length).toBeGreaterThan(0);
      expect(Object.keys(r.weights).sort()).toEqual([...quantized].sort());
      for (const [name, w] of Object.entries(r.weights)) {
        expect(w.bitMismatches, name).toBe(0);
        expect(w.bf16Exact, name).toBe(true); // an NVFP4 value has at most 7 significant bits: bf16 holds it exactly
      }
      expect(Object.keys(r.othersEqual).length).toBeGreaterThan(0);
      expect(Object.entries(r.othersEqual).filter(([, same]) => !same)).toEqual([]);
    });

    it('its forward gives the logits of the input model holding the decoded weights, exactly', () => {
      const { logits } = ctResults[ctDirs[i].quant];
      expect(logits.maxAbsReference).toBeGreaterThan(0.5);
      expect(logits.maxAbsDiffLoadedVsReference).toBe(0);
      expect(logits.relErrLoadedVsOriginal).toBeLessThan(0.5); // NVFP4 of random weights through two layers
    });
  });
});

// A vision-language model with its vision tower and projector kept in bf16 (the usual recipe):
// transformers 5 renames a LLaVA's modules on load (vision_tower → model.vision_tower, …) and
// matched `ignore` against the renamed ones, so the kept modules were wrapped as quantized: their
// bf16 weights came up unexpected, the packed ones missing, the loaded values NaN.
describe.skipIf(!haveCtLoader)('compressed-tensors NVFP4 of a LLaVA with its vision tower kept, loaded by transformers', () => {
  it('loads with no missing or unexpected keys; every kept parameter is the input\'s, bit for bit; the logits are finite', () => {
    const model = join(root, 'ct-llava'), quant = join(root, 'ct-llava-nvfp4');
    run([python, ctScript, 'make-vlm', model]);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', model, '-o', quant, '--format', 'nvfp4',
      '--layout', 'compressed-tensors', '--skip', 'vision_tower|multi_modal_projector'], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const ignore = (JSON.parse(readFileSync(join(quant, 'config.json'), 'utf8')) as { quantization_config: { ignore: string[] } }).quantization_config.ignore;
    expect(ignore).toContain('vision_tower.encoder.layers.0.mlp.fc1'); // the checkpoint's name, for vLLM's mapper
    expect(ignore).toContain('re:^((model|language_model)\\.){0,3}vision_tower\\.encoder\\.layers\\.0\\.mlp\\.fc1$');
    const result = JSON.parse(run([python, ctScript, 'check-vlm', model, quant])) as { missing: string[]; unexpected: string[]; errors: string[]; kept: Record<string, boolean>; logitsFinite: boolean };
    expect(result.missing).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.errors).toEqual([]);
    expect(Object.keys(result.kept).length).toBeGreaterThan(10);
    expect(Object.entries(result.kept).filter(([, same]) => !same)).toEqual([]);
    expect(result.logitsFinite).toBe(true);
  }, 300_000);
});
