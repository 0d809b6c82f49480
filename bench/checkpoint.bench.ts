// End-to-end checkpoint quantization throughput (GB/s of bf16 input) beside a plain read+write
// copy of the same files in the same run (same chunked positioned I/O, fsync included), so the
// ratio says how close quantization gets to the disk's own speed.
//   node --import tsx bench/checkpoint.bench.ts        FP4KIT_BENCH_GB=2 for a larger model
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../lib/index.js';
import { quantizeCheckpoint, type CheckpointOptions } from '../lib/checkpoint/quantize-checkpoint.js';
import { SafetensorsWriter } from '../lib/checkpoint/safetensors/write.js';

const GB = Number(process.env.FP4KIT_BENCH_GB ?? '1');
const ROWS = 4096;
const COLS = 4096;
const TENSOR_BYTES = ROWS * COLS * 2;
const COUNT = Math.max(2, Math.round((GB * 1e9) / TENSOR_BYTES));
const root = mkdtempSync(join(tmpdir(), 'fp4kit-bench-'));

async function makeCheckpoint(dir: string): Promise<number> {
  mkdirSync(dir);
  const specs = Array.from({ length: COUNT }, (_v, i) => ({ name: `model.layers.${i}.mlp.up_proj.weight`, dtype: 'BF16', shape: [ROWS, COLS] }));
  const w = await SafetensorsWriter.create(join(dir, 'model.safetensors'), specs);
  const h = new Uint16Array(ROWS * COLS);
  let s = 1;
  for (let i = 0; i < COUNT; i++) {
    for (let j = 0; j < h.length; j++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      h[j] = (s & 0x8000) | (0x3c00 + ((s >>> 16) & 0x3ff));
    }
    await w.write(specs[i].name, new Uint8Array(h.buffer));
  }
  await w.commit();
  return COUNT * TENSOR_BYTES;
}

/** Plain copy with the same I/O pattern as the quantizer: 16 MiB positioned reads and writes, fsync. */
async function plainCopy(src: string, dst: string): Promise<void> {
  const input = await open(src, 'r');
  const output = await open(dst, 'w');
  const buf = new Uint8Array(16 << 20);
  let pos = 0;
  for (;;) {
    const { bytesRead } = await input.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    await output.write(buf, 0, bytesRead, pos);
    pos += bytesRead;
  }
  await output.sync();
  await input.close();
  await output.close();
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const input = join(root, 'in');
console.log(`generating ${COUNT} × [${ROWS}, ${COLS}] bf16 = ${((COUNT * TENSOR_BYTES) / 1e9).toFixed(2)} GB in ${root}`);
const bytes = await makeCheckpoint(input);
const backend = getBackend();
const rows: Array<[string, number]> = [];
let n = 0;
const copySeconds = await timed(() => plainCopy(join(input, 'model.safetensors'), join(root, 'copy.safetensors')));
rows.push(['plain read+write copy', copySeconds]);
const runs: Array<[string, CheckpointOptions]> = [
  ['nvfp4 compressed-tensors, error stats', { format: 'nvfp4', layout: 'compressed-tensors' }],
  ['nvfp4 compressed-tensors, no error stats', { format: 'nvfp4', layout: 'compressed-tensors', measureError: false }],
  ['mxfp4 fp4kit, no error stats', { format: 'mxfp4', layout: 'fp4kit', measureError: false }], // (gpt-oss: this model has no gpt-oss experts, which that layout refuses)
  ['mxfp8_e4m3 fp4kit, no error stats', { format: 'mxfp8_e4m3', layout: 'fp4kit', measureError: false }],
  ['fgmp fp4kit (70 % FP4), error stats', { format: 'fgmp', layout: 'fp4kit' }],
  ['fgmp fp4kit (70 % FP4), no error stats', { format: 'fgmp', layout: 'fp4kit', measureError: false }],
];
for (const [label, options] of runs) {
  const out = join(root, `out-${n++}`);
  rows.push([label, await timed(() => quantizeCheckpoint(input, out, options))]);
  rmSync(out, { recursive: true, force: true });
}
// The copy again, after, so page-cache warm-up does not favour either side.
rows.push(['plain read+write copy (again)', await timed(() => plainCopy(join(input, 'model.safetensors'), join(root, 'copy2.safetensors')))]);
const copyRate = bytes / 1e9 / Math.min(copySeconds, rows[rows.length - 1][1]);

console.log(`\nbackend ${backend.name} (${backend.simd}); input ${(bytes / 1e9).toFixed(2)} GB bf16\n`);
console.log('| run | seconds | GB/s of bf16 input | vs plain copy |');
console.log('|---|---|---|---|');
for (const [label, seconds] of rows) {
  const rate = bytes / 1e9 / seconds;
  console.log(`| ${label} | ${seconds.toFixed(2)} | ${rate.toFixed(2)} | ${((rate / copyRate) * 100).toFixed(0)} % |`);
}
rmSync(root, { recursive: true, force: true });
