// Interop proof: an independent reader (Python's `safetensors` Rust parser + `ml_dtypes` + numpy,
// scripts/check_interop.py) reads every layout fp4kit writes, dequantizes it the way that layout's
// loader does, and must get the same float32 bits as fp4kit's own dequantize. In CI
// (CI=true) the Python side must run; elsewhere it is skipped only when the modules are missing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantizeCheckpoint, type CheckpointOptions } from '../lib/checkpoint/quantize-checkpoint.js';
import { readBackValues } from '../lib/checkpoint/layouts/index.js';
import type { LayoutName } from '../lib/checkpoint/layouts/types.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { gaussian, variedMagnitude } from './helpers/data.js';
import { gptOssConfig, gptOssTensors, writeGptOssCheckpoint } from './helpers/gpt-oss-checkpoint.js';

const python = process.env.PYTHON ?? 'python3';
const probe = spawnSync(python, ['-c', 'import numpy, ml_dtypes, safetensors'], { encoding: 'utf8' });
const havePython = probe.status === 0;
if (!havePython && process.env.CI === 'true') {
  throw new Error(`CI=true but ${python} cannot import numpy, ml_dtypes and safetensors: ${probe.stderr || probe.error}`);
}

const root = mkdtempSync(join(tmpdir(), 'fp4kit-interop-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const tiny = join(__dirname, '..', 'examples', 'tiny-model');
let padded = '';
let gptOss = '';

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
function toBf16(x: Float32Array): Uint16Array {
  const b = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(b, (v) => v >>> 16);
}

beforeAll(async () => {
  // Widths that are not multiples of 16/32 (padding), f32 and bf16, and magnitudes over 2^±40.
  padded = join(root, 'padded');
  mkdirSync(padded);
  await writeSafetensors(join(padded, 'model.safetensors'), [
    { name: 'a.weight', dtype: 'BF16', shape: [48, 96], data: bytesOf(toBf16(gaussian(48 * 96, 1, 0.03))) },
    { name: 'b.weight', dtype: 'F32', shape: [24, 40], data: bytesOf(gaussian(24 * 40, 2)) },
    { name: 'c.weight', dtype: 'F32', shape: [16, 64], data: bytesOf(variedMagnitude(16 * 64, 3).map((v) => Math.max(-1e30, Math.min(1e30, v)))) },
  ]);
  // gpt-oss experts in transformers' bf16 order [E, in, out], one of them square.
  gptOss = join(root, 'gpt-oss');
  const sizes = { hidden: 64, inter: 64, experts: 3, layers: 2 };
  await writeGptOssCheckpoint(gptOss, gptOssTensors(sizes), gptOssConfig(sizes));
});

function sha256(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

const cases: Array<[string, LayoutName, CheckpointOptions['format'], () => string, Partial<CheckpointOptions>]> = [
  ['compressed-tensors nvfp4', 'compressed-tensors', 'nvfp4', () => tiny, {}],
  ['modelopt nvfp4', 'modelopt', 'nvfp4', () => tiny, {}],
  ['gpt-oss mxfp4', 'gpt-oss', 'mxfp4', () => gptOss, {}],
  ['fp4kit mxfp4', 'fp4kit', 'mxfp4', () => padded, {}],
  ['fp4kit mxfp4 stochastic', 'fp4kit', 'mxfp4', () => padded, { rounding: 'stochastic', seed: 5 }],
  ['fp4kit mxfp6_e2m3', 'fp4kit', 'mxfp6_e2m3', () => padded, {}],
  ['fp4kit mxfp6_e3m2', 'fp4kit', 'mxfp6_e3m2', () => padded, {}],
  ['fp4kit mxfp8_e4m3', 'fp4kit', 'mxfp8_e4m3', () => padded, {}],
  ['fp4kit mxfp8_e5m2', 'fp4kit', 'mxfp8_e5m2', () => padded, {}],
  ['fp4kit mxint8', 'fp4kit', 'mxint8', () => padded, {}],
  ['fp4kit nvfp4', 'fp4kit', 'nvfp4', () => padded, {}],
  ['fp4kit fgmp', 'fp4kit', 'fgmp', () => padded, { fp4Fraction: 0.6 }],
];

describe.skipIf(!havePython)('interop with Python safetensors + ml_dtypes', () => {
  it.each(cases)('%s: Python dequantizes to fp4kit bits', async (label, layout, format, input, extra) => {
    const out = join(root, label.replace(/\W+/g, '-'));
    const summary = await quantizeCheckpoint(input(), out, { format, layout, ...extra, measureError: false });
    const r = spawnSync(python, [join(__dirname, '..', 'scripts', 'check_interop.py'), out], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const py = JSON.parse(r.stdout) as { layout: string; tensors: Record<string, { sha256: string; count: number; first: number[] }> };
    expect(py.layout).toBe(layout);
    const quantized = summary.tensors.filter((t) => t.action === 'quantized');
    expect(quantized.length).toBeGreaterThan(0);
    expect(Object.keys(py.tensors).sort()).toEqual(quantized.map((t) => t.name).sort());
    const files = new Map<string, SafetensorsFile>();
    try {
      for (const t of quantized) {
        if (!files.has(t.file)) files.set(t.file, await SafetensorsFile.open(join(out, t.file)));
        const f = files.get(t.file)!;
        const mine = await readBackValues(layout, async (n) => f.read(f.tensor(n)!), t.name, format, t.shape);
        expect(py.tensors[t.name].count).toBe(mine.length);
        expect(py.tensors[t.name].first).toEqual(Array.from(mine.subarray(0, 4)));
        expect(py.tensors[t.name].sha256, t.name).toBe(sha256(mine));
      }
    } finally {
      for (const f of files.values()) await f.close();
    }
  });
});
