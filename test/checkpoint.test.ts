// quantizeCheckpoint and its layouts: tensor names, dtypes, shapes, nibble order and scale
// conventions of every layout; tensor selection; the temp-file + rename discipline (an aborted or
// failed run leaves no file under a final name and never touches the input).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dequantize, quantize } from '../lib/index.js';
import { quantizeCheckpoint, tensorSeed, type CheckpointOptions, type CheckpointProgress } from '../lib/checkpoint/quantize-checkpoint.js';
import { FGMP_ASSEMBLY_SHARE, QUANTIZE_STEP_BYTES } from '../lib/checkpoint/quantize-tensor.js';
import { powerOfTwoTensorScale } from '../lib/checkpoint/layouts/compressed-tensors.js';
import { readBackTensor } from '../lib/checkpoint/layouts/index.js';
import { fusedGroupOf } from '../lib/checkpoint/layouts/fused-modules.js';
import type { LayoutName } from '../lib/checkpoint/layouts/types.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { firstBitDifference } from './helpers/fixtures.js';
import { f16BitsToF32Bits } from '../lib/kernels/ref/dtype.js';
import { gaussian, toBf16 } from './helpers/data.js';
import { testedBackends, useBackend } from './helpers/backends.js';

const root = mkdtempSync(join(tmpdir(), 'fp4kit-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// A small model: bf16, f32 and f16 Linear weights, an embedding, norms, lm_head, an integer
// buffer and a weight whose last dimension is not a multiple of 16 or 32.
const up = toBf16(gaussian(32 * 64, 1, 0.05));
const down = gaussian(64 * 32, 2, 0.02);
const gate = new Uint16Array(32 * 64).map((_v, i) => 0x2c00 + (i % 512)); // f16 values in [2^-4, 2^-3)
const odd = toBf16(gaussian(8 * 40, 3));
const tensors = [
  { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [16, 64], data: bytesOf(toBf16(gaussian(16 * 64, 4))) },
  { name: 'model.layers.0.input_layernorm.weight', dtype: 'BF16', shape: [64], data: bytesOf(toBf16(new Float32Array(64).fill(1))) },
  { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [32, 64], data: bytesOf(up) },
  { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F32', shape: [64, 32], data: bytesOf(down) },
  { name: 'model.layers.0.mlp.gate_proj.weight', dtype: 'F16', shape: [32, 64], data: bytesOf(gate) },
  { name: 'model.layers.0.odd.weight', dtype: 'BF16', shape: [8, 40], data: bytesOf(odd) },
  { name: 'model.position_ids', dtype: 'I64', shape: [4], data: new Uint8Array(32).map((_v, i) => i) },
  { name: 'lm_head.weight', dtype: 'BF16', shape: [16, 64], data: bytesOf(toBf16(gaussian(16 * 64, 5))) },
];
let input = '';

beforeAll(async () => {
  input = join(root, 'input');
  mkdirSync(input);
  await writeSafetensors(join(input, 'model.safetensors'), tensors, { format: 'pt' });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(input, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 64 }));
  writeFileSync(join(input, 'tokenizer.json'), '{"fake": true}');
});

function hashDir(d: string): string {
  const h = createHash('sha256');
  for (const n of readdirSync(d).sort()) h.update(n).update(readFileSync(join(d, n)));
  return h.digest('hex');
}

async function run(name: string, options: CheckpointOptions) {
  const out = join(root, name);
  const summary = await quantizeCheckpoint(input, out, options);
  const file = await SafetensorsFile.open(join(out, 'model.safetensors'));
  const get = async (n: string) => {
    const info = file.tensor(n);
    if (!info) throw new Error(`missing ${n}`);
    return file.read(info);
  };
  return { out, summary, file, get, spec: (n: string) => file.tensor(n) };
}

/** fp4kit's own quantize of an input tensor, the reference every layout must store. */
function reference(name: string, options: Record<string, unknown>) {
  const t = tensors.find((x) => x.name === name)!;
  const x = t.dtype === 'F32' ? new Float32Array(t.data.buffer, t.data.byteOffset, t.data.length / 4) : new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length / 2);
  const dtype = t.dtype === 'F32' ? 'f32' : t.dtype === 'BF16' ? 'bf16' : 'f16';
  return quantize(x, { shape: t.shape, dtype, ...options } as never);
}

describe('layouts', () => {
  it('compressed-tensors: names, dtypes, shapes, nibble order, encode-convention global scale', async () => {
    const { summary, spec, get, file, out } = await run('ct', { format: 'nvfp4', layout: 'compressed-tensors' });
    const m = 'model.layers.0.mlp.up_proj';
    expect(spec(`${m}.weight_packed`)).toMatchObject({ dtype: 'U8', shape: [32, 32] });
    expect(spec(`${m}.weight_scale`)).toMatchObject({ dtype: 'F8_E4M3', shape: [32, 4] });
    expect(spec(`${m}.weight_global_scale`)).toMatchObject({ dtype: 'F32', shape: [1] });
    expect(spec(`${m}.weight`)).toBeUndefined();
    const g = new DataView((await get(`${m}.weight_global_scale`)).buffer).getFloat32(0, true);
    const ref = reference(`${m}.weight`, { format: 'nvfp4', tensorScale: powerOfTwoTensorScale(fusedAbsMax(`${m}.weight`)) }) as ReturnType<typeof quantize> & { tensorScale: number };
    // The stored global scale is the ENCODE scale 1/tensorScale, exactly (a power of two).
    expect(g).toBe(1 / ref.tensorScale);
    expect(Math.log2(g) % 1).toBe(0);
    expect(Buffer.from(await get(`${m}.weight_packed`)).equals(Buffer.from(ref.data))).toBe(true);
    expect(Buffer.from(await get(`${m}.weight_scale`)).equals(Buffer.from(ref.scales))).toBe(true);
    // up_proj and gate_proj fuse into gate_up_proj in vLLM: one shared global scale.
    const gGate = new DataView((await get('model.layers.0.mlp.gate_proj.weight_global_scale')).buffer).getFloat32(0, true);
    expect(gGate).toBe(g);
    // The odd-width weight cannot be packed by compressed-tensors: copied through, listed in ignore.
    expect(spec('model.layers.0.odd.weight')).toMatchObject({ dtype: 'BF16', shape: [8, 40] });
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('llama');
    expect(config.quantization_config).toMatchObject({
      quant_method: 'compressed-tensors', format: 'nvfp4-pack-quantized', quantization_status: 'compressed',
      config_groups: { group_0: { targets: ['Linear'], weights: { num_bits: 4, type: 'float', strategy: 'tensor_group', group_size: 16, symmetric: true } } },
    });
    expect(config.quantization_config.ignore).toEqual(['model.layers.0.odd', 'lm_head']);
    expect(summary.quantized).toBe(3);
    await file.close();
  });

  it('modelopt: weight is U8 packed, weight_scale_2 is the decode scale, hf_quant_config.json', async () => {
    const { spec, get, file, out } = await run('mo', { format: 'nvfp4', layout: 'modelopt' });
    const m = 'model.layers.0.mlp.down_proj';
    expect(spec(`${m}.weight`)).toMatchObject({ dtype: 'U8', shape: [64, 16] });
    expect(spec(`${m}.weight_scale`)).toMatchObject({ dtype: 'F8_E4M3', shape: [64, 2] });
    expect(spec(`${m}.weight_scale_2`)).toMatchObject({ dtype: 'F32', shape: [] });
    expect(spec(`${m}.input_scale`)).toBeUndefined();
    const ref = reference(`${m}.weight`, { format: 'nvfp4' }) as { tensorScale: number; data: Uint8Array; scales: Uint8Array };
    const s2 = new DataView((await get(`${m}.weight_scale_2`)).buffer).getFloat32(0, true);
    expect(s2).toBe(ref.tensorScale); // amax / (6 · 448): the decode scale
    expect(s2).toBe(Math.fround(absMaxOf(`${m}.weight`) / 2688));
    expect(Buffer.from(await get(`${m}.weight`)).equals(Buffer.from(ref.data))).toBe(true);
    const hq = JSON.parse(readFileSync(join(out, 'hf_quant_config.json'), 'utf8'));
    expect(hq).toMatchObject({ producer: { name: 'modelopt' }, quantization: { quant_algo: 'W4A16_NVFP4', group_size: 16 } });
    expect(hq.quantization.exclude_modules).toContain('lm_head');
    await file.close();
    // With a calibrated activation scale: W4A4 NVFP4 and an input_scale per Linear.
    const w4a4 = await run('mo-w4a4', { format: 'nvfp4', layout: 'modelopt', inputScale: 0.5 });
    expect(w4a4.spec(`${m}.input_scale`)).toMatchObject({ dtype: 'F32', shape: [] });
    expect(new DataView((await w4a4.get(`${m}.input_scale`)).buffer).getFloat32(0, true)).toBe(0.5);
    expect(JSON.parse(readFileSync(join(w4a4.out, 'hf_quant_config.json'), 'utf8')).quantization.quant_algo).toBe('NVFP4');
    await w4a4.file.close();
  });

  it('gpt-oss on a Llama-shaped model is refused: it would quantize nothing and still declare quant_method mxfp4', async () => {
    // (test/gpt-oss-layout.test.ts covers the layout on gpt-oss experts.)
    const out = join(root, 'go');
    await expect(quantizeCheckpoint(input, out, { format: 'mxfp4', layout: 'gpt-oss' })).rejects.toThrow(
      `${join(input, 'model.safetensors')}: no tensor to quantize in the gpt-oss layout (it quantizes GptOss MoE expert weights, …mlp.experts.gate_up_proj / down_proj; config.json model_type "llama"); choose another --layout`);
    expect(existsSync(out)).toBe(false);
  });

  it('nibble order, explicitly: element 2i in the low nibble', () => {
    // One MXFP4 block: amax 6 → scale 2^0; 6 is E2M1 code 0x7, −0.5 is 0x9.
    const x = new Float32Array(32);
    x[0] = 6;
    x[1] = -0.5;
    const q = quantize(x, { format: 'mxfp4', shape: [1, 32] });
    expect(q.scales[0]).toBe(127);
    expect(q.data[0]).toBe(0x97);
  });

  it.each(['mxfp4', 'mxfp6_e2m3', 'mxfp8_e5m2', 'mxint8', 'nvfp4', 'fgmp'] as const)('fp4kit layout round trip: %s (padding included)', async (format) => {
    const { file, get, summary } = await run(`fk-${format}`, format === 'fgmp' ? { format, layout: 'fp4kit', fp4Fraction: 0.5 } : { format, layout: 'fp4kit' });
    const meta = JSON.parse(file.metadata.fp4kit);
    expect(meta.version).toBe(1);
    for (const t of summary.tensors.filter((x) => x.action === 'quantized')) {
      expect(meta.tensors[t.name]).toMatchObject({ format, shape: t.shape });
      const back = await readBackTensor('fp4kit', get, t.name, format, t.shape);
      const ref = reference(t.name, format === 'fgmp' ? { format, fp4Fraction: 0.5 } : { format });
      expect(firstBitDifference(dequantize(back), dequantize(ref))).toBe(-1);
      expect(t.relRmse).toBeGreaterThan(0);
      expect(t.relRmse).toBeLessThan(format === 'mxint8' || format === 'mxfp8_e5m2' ? 0.1 : 0.2);
    }
    expect(summary.tensors.find((x) => x.name === 'model.layers.0.odd.weight')!.action).toBe('quantized');
    if (format === 'mxfp4') expect(file.tensor('model.layers.0.odd.weight.qscales')).toMatchObject({ dtype: 'F8_E8M0', shape: [8, 2] });
    await file.close();
  });

  it('read-back of the NVFP4 layouts dequantizes to fp4kit bits (gpt-oss: test/gpt-oss-layout.test.ts)', async () => {
    for (const [layout, format] of [['compressed-tensors', 'nvfp4'], ['modelopt', 'nvfp4']] as Array<[LayoutName, 'nvfp4']>) {
      const { file, get, summary } = await run(`rb-${layout}`, { format, layout });
      for (const t of summary.tensors.filter((x) => x.action === 'quantized')) {
        const back = await readBackTensor(layout, get, t.name, format, t.shape);
        const amax = fusedAbsMax(t.name);
        const ts = layout === 'compressed-tensors' ? powerOfTwoTensorScale(amax) : format === 'nvfp4' ? Math.fround(amax / 2688) : undefined;
        const ref = reference(t.name, { format, tensorScale: ts });
        expect(firstBitDifference(dequantize(back), dequantize(ref))).toBe(-1);
      }
      await file.close();
    }
  });
});

/** The amax a fused group (q/k/v, gate/up) shares, or the tensor's own. */
function fusedAbsMax(name: string): number {
  const g = fusedGroupOf(name, null);
  if (g === null) return absMaxOf(name);
  return Math.max(...tensors.filter((t) => fusedGroupOf(t.name, null) === g).map((t) => absMaxOf(t.name)));
}

function absMaxOf(name: string): number {
  const t = tensors.find((x) => x.name === name)!;
  let m = 0;
  if (t.dtype === 'F32') for (const v of new Float32Array(t.data.buffer, t.data.byteOffset, t.data.length / 4)) m = Math.max(m, Math.abs(v));
  else {
    const h = new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length / 2);
    const f = new Float32Array(1);
    const b = new Uint32Array(f.buffer);
    for (const v of h) { b[0] = t.dtype === 'BF16' ? v << 16 : f16BitsToF32Bits(v); m = Math.max(m, Math.abs(f[0])); }
  }
  return m;
}

describe('selection, copying, side files', () => {
  it('default rule: 2-D .weight, not embed/norm/lm_head; copied tensors are byte-identical; other files copied', async () => {
    const { summary, get, file, out } = await run('sel-default', { format: 'mxfp4' });
    const q = summary.tensors.filter((t) => t.action === 'quantized').map((t) => t.name);
    expect([...q].sort()).toEqual(['model.layers.0.mlp.up_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'model.layers.0.mlp.gate_proj.weight', 'model.layers.0.odd.weight'].sort());
    for (const t of tensors.filter((x) => !q.includes(x.name))) {
      expect(Buffer.from(await get(t.name)).equals(Buffer.from(t.data))).toBe(true);
    }
    expect(file.metadata.format).toBe('pt');
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe('{"fake": true}');
    await file.close();
  });

  it('weights in other formats beside the shards (pytorch_model.bin and its index, .pth, .h5, GGUF) are left out and listed; other files are copied', async () => {
    const folder = join(root, 'input-with-bin');
    mkdirSync(folder);
    for (const n of readdirSync(input)) writeFileSync(join(folder, n), readFileSync(join(input, n)));
    const others = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'consolidated.00.pth', 'tf_model.h5', 'model-q4.gguf'];
    for (const n of others) writeFileSync(join(folder, n), 'weights');
    writeFileSync(join(folder, 'training_args.bin'), 'args'); // not weights: copied as any other file
    const out = join(root, 'out-with-bin');
    const summary = await quantizeCheckpoint(folder, out, { format: 'mxfp4' });
    expect(summary.notCopied).toEqual([...others].sort());
    for (const n of others) expect(existsSync(join(out, n)), n).toBe(false);
    expect(readFileSync(join(out, 'training_args.bin'), 'utf8')).toBe('args');
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe('{"fake": true}');
    expect(summary.files).not.toContain('pytorch_model.bin');
    expect((JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8')) as { notCopied: string[] }).notCopied).toEqual([...others].sort());
  });

  it('--only and --skip', async () => {
    const a = await run('sel-only', { format: 'mxfp4', only: /lm_head|up_proj/ });
    expect(a.summary.tensors.filter((t) => t.action === 'quantized').map((t) => t.name).sort()).toEqual(['model.layers.0.mlp.up_proj.weight', 'lm_head.weight'].sort());
    await a.file.close();
    const b = await run('sel-skip', { format: 'mxfp4', skip: 'down|gate' });
    expect(b.summary.tensors.filter((t) => t.action === 'quantized').map((t) => t.name).sort()).toEqual(['model.layers.0.mlp.up_proj.weight', 'model.layers.0.odd.weight'].sort());
    await b.file.close();
  });
});

describe('progress', () => {
  it('NVFP4 with shared fused scales reports the pre-pass over gate/up first, then every tensor', async () => {
    const seen: CheckpointProgress[] = [];
    await quantizeCheckpoint(input, join(root, 'progress-ct'), { format: 'nvfp4', layout: 'compressed-tensors' }, (p) => { seen.push({ ...p }); });
    const fused = 32 * 64 * 2 * 2; // gate_proj (F16) and up_proj (BF16)
    const scales = seen.filter((p) => p.phase === 'shared-scales');
    const first = seen.findIndex((p) => p.phase === 'tensors');
    expect(scales.length).toBeGreaterThanOrEqual(3); // one per chunk read, and one at the end
    expect(seen.slice(0, first).every((p) => p.phase === 'shared-scales' && p.bytesDone === 0 && p.tensorsDone === 0)).toBe(true);
    expect(scales.map((p) => p.sharedScaleBytesDone)).toEqual([0, 32 * 64 * 2, fused]);
    expect(new Set(scales.map((p) => p.sharedScaleBytesTotal))).toEqual(new Set([fused]));
    expect(scales.slice(0, 2).map((p) => p.tensor).sort()).toEqual(['model.layers.0.mlp.gate_proj.weight', 'model.layers.0.mlp.up_proj.weight']);
    const last = seen[seen.length - 1];
    expect(last).toMatchObject({ phase: 'tensors', sharedScaleBytesDone: fused, sharedScaleBytesTotal: fused, tensorsDone: tensors.length, tensorCount: tensors.length });
    expect(last.bytesDone).toBe(last.bytesTotal);
  });

  it('a copied tensor larger than one 16 MiB chunk reports its progress inside it', async () => {
    const dir = join(root, 'progress-big-input');
    mkdirSync(dir);
    const big = { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [1100, 4096], data: new Uint8Array(1100 * 4096 * 4) }; // 18 MB: two chunks
    const small = { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [32, 64], data: bytesOf(gaussian(32 * 64, 40)) };
    await writeSafetensors(join(dir, 'model.safetensors'), [small, big]);
    const seen: CheckpointProgress[] = [];
    await quantizeCheckpoint(dir, join(root, 'progress-big'), { format: 'mxfp4' }, (p) => { seen.push({ ...p }); });
    const inside = seen.filter((p) => p.tensor === big.name && p.tensorsDone === 1 && p.bytesDone > small.data.length);
    expect(inside.map((p) => p.bytesDone)).toEqual([small.data.length + 16 * 2 ** 20]);
    expect(seen.map((p) => p.bytesDone)).toEqual([...seen.map((p) => p.bytesDone)].sort((a, b) => a - b)); // never backwards
    expect(seen[seen.length - 1]).toMatchObject({ tensorsDone: 2, bytesDone: small.data.length + big.data.length, bytesTotal: small.data.length + big.data.length });
  });

  it('a run without shared scales has no pre-pass', async () => {
    const seen: CheckpointProgress[] = [];
    await quantizeCheckpoint(input, join(root, 'progress-mx'), { format: 'mxfp4' }, (p) => { seen.push({ ...p }); });
    expect(seen.length).toBe(tensors.length + 1);
    expect(seen.every((p) => p.phase === 'tensors' && p.sharedScaleBytesDone === 0 && p.sharedScaleBytesTotal === 0)).toBe(true);
  });
});

// A quantized tensor of two steps (QUANTIZE_STEP_BYTES = 16 MiB of input, then the rest) reports
// its progress between them, on every backend, and stores the bytes of one quantize() call over
// the whole tensor: its later rows are 8× larger, so a tensor scale, an FP8 scale or an FGMP
// selection taken per step would differ.
describe.each(testedBackends())('progress inside a quantized tensor (%s)', (backend) => {
  useBackend(backend);
  const rows = 1100;
  const cols = 4096;
  const stepRows = QUANTIZE_STEP_BYTES / 4 / cols; // 1024
  const big = gaussian(rows * cols, 41, 0.02);
  for (let i = stepRows * cols; i < big.length; i++) big[i] *= 8;
  const bigName = 'model.layers.0.mlp.down_proj.weight';
  const small = { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [32, 64], data: bytesOf(gaussian(32 * 64, 42)) };
  let dir = '';
  beforeAll(async () => {
    dir = join(root, `progress-quantized-input-${backend}`);
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model.safetensors'), [small, { name: bigName, dtype: 'F32', shape: [rows, cols], data: bytesOf(big) }]);
  });

  it.each([
    ['mxfp4', { format: 'mxfp4', rounding: 'stochastic', seed: 5 }],
    ['nvfp4', { format: 'nvfp4' }],
    ['fgmp', { format: 'fgmp', fp4Fraction: 0.6 }],
  ] as const)('%s: reports inside it, the event loop turns between steps, the bytes are one call\'s', async (format, options) => {
    const out = join(root, `progress-quantized-${backend}-${format}`);
    const seen: CheckpointProgress[] = [];
    let turned = false;
    await quantizeCheckpoint(dir, out, { ...options, layout: 'fp4kit', measureError: false }, (p) => {
      seen.push({ ...p });
      if (p.tensor === bigName && p.bytesDone === small.data.length) setImmediate(() => { turned = true; }); // before it
      else if (p.tensor === bigName && p.tensorsDone === 1) expect(turned).toBe(true);
    });
    const inside = seen.filter((p) => p.tensor === bigName && p.tensorsDone === 1 && p.bytesDone > small.data.length);
    // After its first step; FGMP's candidates count all but FGMP_ASSEMBLY_SHARE of its bytes, the
    // rest its mask (set) and its stream's steps (the first of 1024 rows).
    const bytes = rows * cols * 4;
    const candidateBytes = bytes - Math.round(bytes * FGMP_ASSEMBLY_SHARE);
    const within = format !== 'fgmp' ? [QUANTIZE_STEP_BYTES]
      : [Math.floor((QUANTIZE_STEP_BYTES * candidateBytes) / bytes), candidateBytes, candidateBytes + Math.floor((stepRows * (bytes - candidateBytes)) / rows)];
    expect(inside.map((p) => p.bytesDone)).toEqual(within.map((b) => small.data.length + b));
    expect(seen.map((p) => p.bytesDone)).toEqual([...seen.map((p) => p.bytesDone)].sort((a, b) => a - b)); // never backwards
    const file = await SafetensorsFile.open(join(out, 'model.safetensors'));
    const get = async (n: string) => file.read(file.tensor(n)!);
    const back = await readBackTensor('fp4kit', get, bigName, format, [rows, cols]) as unknown as Record<string, unknown>;
    const seed = 'seed' in options ? tensorSeed(options.seed, bigName) : undefined;
    const want = quantize(big, { ...options, seed, shape: [rows, cols] } as never) as unknown as Record<string, unknown>;
    for (const key of ['data', 'scales', 'mask']) {
      if (want[key] !== undefined) expect(Buffer.from(back[key] as Uint8Array).equals(Buffer.from(want[key] as Uint8Array)), key).toBe(true);
    }
    for (const key of ['tensorScale', 'fp8Scale']) expect(back[key], key).toBe(want[key]);
    await file.close();
  });

  it('an abort inside a quantized tensor stops the run there and leaves nothing behind', async () => {
    const out = join(root, `progress-quantized-aborted-${backend}`);
    const controller = new AbortController();
    const seen: CheckpointProgress[] = [];
    const p = quantizeCheckpoint(dir, out, { format: 'mxfp4', measureError: false }, (progress) => {
      seen.push({ ...progress });
      if (progress.tensor === bigName && progress.bytesDone > small.data.length) controller.abort();
    }, controller.signal);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen[seen.length - 1]).toMatchObject({ tensor: bigName, tensorsDone: 1, bytesDone: small.data.length + QUANTIZE_STEP_BYTES });
    expectNothingWritten(out);
  });
});

/** No output folder (or an empty one) and no staging folder beside it. */
function expectNothingWritten(out: string): void {
  if (existsSync(out)) expect(readdirSync(out)).toEqual([]);
  expect(readdirSync(join(out, '..')).filter((n) => n.startsWith(`${basename(out)}.tmp-`) || n.startsWith(`${basename(out)}.old-`))).toEqual([]);
}

describe('nothing lost', () => {
  it('an aborted run leaves no final file and no temporary file; the input is untouched', async () => {
    const before = hashDir(input);
    const out = join(root, 'aborted');
    const controller = new AbortController();
    const p = quantizeCheckpoint(input, out, { format: 'nvfp4' }, (progress) => {
      if (progress.tensorsDone === 3) controller.abort();
    }, controller.signal);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expectNothingWritten(out);
    expect(hashDir(input)).toBe(before);
  });

  it('a failing tensor (NaN into nvfp4) names the file and tensor, and leaves nothing behind', async () => {
    const d = join(root, 'nan-input');
    mkdirSync(d);
    const bad = gaussian(32 * 32, 9);
    bad[100] = NaN;
    await writeSafetensors(join(d, 'model.safetensors'), [
      { name: 'a.weight', dtype: 'F32', shape: [32, 32], data: bytesOf(gaussian(32 * 32, 8)) },
      { name: 'b.weight', dtype: 'F32', shape: [32, 32], data: bytesOf(bad) },
    ]);
    const out = join(root, 'nan-out');
    await expect(quantizeCheckpoint(d, out, { format: 'nvfp4' })).rejects.toThrow(/model\.safetensors: tensor b\.weight: .*NaN/);
    expectNothingWritten(out);
  });

  it('refuses to write into the input folder', async () => {
    await expect(quantizeCheckpoint(input, input, { format: 'mxfp4' })).rejects.toThrow(/the output folder holds the input/);
  });

  it('refuses a format the layout cannot hold', async () => {
    await expect(quantizeCheckpoint(input, join(root, 'x'), { format: 'mxfp4', layout: 'modelopt' })).rejects.toThrow(/modelopt layout holds nvfp4/);
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
