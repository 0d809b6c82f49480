// Hostile files and folders for the checkpoint tool (issue 13): names that are special on a plain
// object, outputs that alias the input, shard names that collide with side files, a reused output
// folder, kills at any moment of a run, FIFOs and devices, a file system that takes no bytes, and
// one SIGTERM. The CLI runs as a child process with a timeout, so a hang fails the test; moments
// and file systems a test cannot reach on purpose (a kill between two renames, a write that never
// returns, a file system that takes no bytes) are injected by test/helpers/fs-faults.mjs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dequantize, layoutByName, quantize } from '../lib/index.js';
import { quantizeCheckpoint } from '../lib/checkpoint/quantize-checkpoint.js';
import { readBackTensor } from '../lib/checkpoint/layouts/index.js';
import { openCheckpoint, closeCheckpoint } from '../lib/checkpoint/safetensors/checkpoint-files.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { makeFolders } from '../lib/checkpoint/safetensors/make-folders.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { gaussian } from './helpers/data.js';
import { firstBitDifference } from './helpers/fixtures.js';

const repo = join(__dirname, '..');
const tiny = join(repo, 'examples', 'tiny-model');
const root = mkdtempSync(join(tmpdir(), 'fp4kit-hostile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const python = process.env.PYTHON ?? 'python3';
const havePython = spawnSync(python, ['-c', 'import numpy, safetensors'], { encoding: 'utf8' }).status === 0;
if (!havePython && process.env.CI === 'true') throw new Error(`CI=true but ${python} cannot import numpy and safetensors`);

const faults = join(__dirname, 'helpers', 'fs-faults.mjs');
const cliArgs = (args: string[], fault?: string) => ['--import', 'tsx', ...(fault ? ['--import', faults] : []), join(repo, 'lib', 'checkpoint', 'cli.ts'), ...args];
const cliEnv = (fault?: string) => ({ ...process.env, FP4KIT_FAULT: fault ?? '' });

/** The CLI in a child process, SIGKILLed after `timeout` ms (r.signal is then set: the test fails). */
function cli(args: string[], timeout = 60_000, fault?: string) {
  const r = spawnSync(process.execPath, cliArgs(args, fault), { cwd: repo, encoding: 'utf8', timeout, killSignal: 'SIGKILL', env: cliEnv(fault) });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The CLI started in the background; stderr accumulates in `stderr()`. */
function startCli(args: string[], fault?: string): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, cliArgs(args, fault), { cwd: repo, env: cliEnv(fault) });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout!.resume();
  return { child, stderr: () => err };
}

/** Exit code and signal of a child, or 'timeout' (after which it is SIGKILLed) if it outlives `ms`. */
function exitOf(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'timeout'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve('timeout'); }, ms);
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
  });
}

/** Resolves when `test` matches the text `read` returns (polled), or rejects after `ms`. */
async function until(read: () => string, test: RegExp, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!test.test(read())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${test} in:\n${read()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Names and bytes of every file in a folder. */
function hashDir(d: string): string {
  const h = createHash('sha256');
  for (const n of readdirSync(d).sort()) h.update(n).update('\0').update(readFileSync(join(d, n)));
  return h.digest('hex');
}

const f32 = (n: number, seed: number) => new Uint8Array(gaussian(n, seed, 0.05).buffer);

/** A sharded checkpoint: `shards` files of `perShard` [rows, cols] f32 weights, with an index. */
async function sharded(dir: string, shards: number, perShard: number, rows = 64, cols = 256, seed = 1): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const tensors = Array.from({ length: perShard }, (_, t) => ({
      name: `layers.${s * perShard + t}.mlp.weight`, dtype: 'F32', shape: [rows, cols], data: f32(rows * cols, seed * 1000 + s * perShard + t),
    }));
    for (const t of tensors) weightMap[t.name] = file;
    await writeSafetensors(join(dir, file), tensors);
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', seed }));
}

/** The output folder is one complete run: its summary lists exactly the files present, all loadable. */
async function expectCompleteRun(out: string): Promise<{ input: string }> {
  const summary = JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8')) as { input: string; files: string[] };
  expect(readdirSync(out).sort()).toEqual([...summary.files].sort());
  const ckpt = await openCheckpoint(out);
  await closeCheckpoint(ckpt);
  return summary;
}

function siblingsOf(out: string): string[] {
  return readdirSync(join(out, '..')).filter((n) => n.startsWith(`${basename(out)}.`));
}

describe('tensor names are data', () => {
  const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__metadata__x'];

  it('a checkpoint whose tensors are named like Object built-ins survives writing, quantizing, the index and inspect', async () => {
    const dir = join(root, 'proto-in');
    mkdirSync(dir, { recursive: true });
    const tensors = names.map((name, i) => ({ name, dtype: 'F32', shape: [32, 64], data: f32(32 * 64, i + 1) }));
    await writeSafetensors(join(dir, 'model-00001-of-00001.safetensors'), tensors, JSON.parse('{"__proto__": "meta", "constructor": "c"}') as Record<string, string>);
    // keys special on a plain object in the index's metadata and in config.json too (raw JSON: own keys)
    writeFileSync(join(dir, 'model.safetensors.index.json'), `{"metadata": {"__proto__": "index meta", "total_size": 1}, "weight_map": ${JSON.stringify(Object.fromEntries(names.map((n) => [n, 'model-00001-of-00001.safetensors'])))}}`);
    writeFileSync(join(dir, 'config.json'), '{"__proto__": {"polluted": true}, "constructor": "c", "model_type": "llama"}');
    const back = await openCheckpoint(dir);
    expect(back.shards[0].tensors.map((t) => t.name).sort()).toEqual([...names].sort());
    expect(Object.keys(back.shards[0].metadata).sort()).toEqual(['__proto__', 'constructor']);
    await closeCheckpoint(back);

    const out = join(root, 'proto-out');
    // toString and valueOf are quantized (their outputs get suffixes); the others are copied
    // through under their own names, __proto__ included
    const quantized = ['toString', 'valueOf'];
    const r = cli(['quantize', dir, '-o', out, '--format', 'nvfp4', '--only', '^(toString|valueOf)$', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { tensors: Array<{ name: string; action: string }> };
    expect(summary.tensors.map((t) => t.name).sort()).toEqual([...names].sort());
    for (const t of summary.tensors) expect(t.action, t.name).toBe(quantized.includes(t.name) ? 'quantized' : 'copied');
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const expected = names.flatMap((n) => (quantized.includes(n) ? [`${n}.qdata`, `${n}.qscales`, `${n}.tensor_scale`] : [n]));
    expect(Object.keys(index.weight_map).sort()).toEqual([...expected].sort());
    const written = await openCheckpoint(out);
    const stored = written.shards[0].tensors.map((t) => t.name);
    const metadata = written.shards[0].metadata;
    await closeCheckpoint(written);
    expect([...stored].sort()).toEqual([...expected].sort());
    // the input shard's metadata keys are carried over beside fp4kit's own
    expect(Object.keys(metadata).sort()).toEqual(['__proto__', 'constructor', 'fp4kit']);
    expect(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value).toBe('meta');
    const indexMeta = (JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: object }).metadata;
    expect(Object.getOwnPropertyDescriptor(indexMeta, '__proto__')?.value).toBe('index meta');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as object;
    expect(Object.getOwnPropertyDescriptor(config, '__proto__')?.value).toEqual({ polluted: true });
    expect(Object.getOwnPropertyDescriptor(config, 'constructor')?.value).toBe('c');
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined(); // nothing reached Object.prototype
    const inspect = cli(['inspect', out, '--json']);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect((JSON.parse(inspect.stdout) as { tensors: Array<{ name: string }> }).tensors.map((t) => t.name)).toContain('__proto__');
    if (havePython) {
      // an independent reader takes the file we wrote
      const py = spawnSync(python, ['-c', 'import sys, json; from safetensors.numpy import load_file; print(json.dumps(sorted(load_file(sys.argv[1]))))', join(dir, 'model-00001-of-00001.safetensors')], { encoding: 'utf8' });
      expect(py.status, py.stderr).toBe(0);
      expect(JSON.parse(py.stdout)).toEqual([...names].sort());
    }
  });
});

describe('names that are hostile to a terminal, an SVG or UTF-8', () => {
  const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f\u202e]/;
  const names = ['esc\u001b[31m.weight', 'rtl\u202egnp.exe.weight', 'bell\u0007.weight', `${'x'.repeat(300)}.weight`];

  it('inspect prints them escaped, --plot writes valid SVG for each (long names cut), errors are escaped too', async () => {
    const dir = join(root, 'terminal-in');
    mkdirSync(dir);
    await writeSafetensors(join(dir, 'model.safetensors'), names.map((name, k) => ({ name, dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 40 + k) })));
    const out = join(root, 'terminal-out');
    let r = cli(['quantize', dir, '-o', out, '--format', 'fgmp']);
    expect(r.code, r.stderr).toBe(0);
    r = cli(['inspect', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(CONTROL);
    expect(r.stdout).toContain('esc\\u001b[31m.weight');
    expect(r.stdout).toContain('rtl\\u202egnp.exe.weight');
    // the columns line up: every row's format column starts where the header's does (the
    // 300-character name is wider than the name column and pushes its own row out)
    const lines = r.stdout.split('\n').filter((l) => /\.weight|^tensor/.test(l) && !l.startsWith('xxx'));
    const formatAt = lines.map((l) => l.search(/ {2}(format|fgmp)\b/));
    expect(new Set(formatAt).size, lines.join('\n')).toBe(1);
    const plots = join(root, 'terminal-plots');
    r = cli(['inspect', out, '--plot', plots]);
    expect(r.code, r.stderr).toBe(0);
    const svgs = readdirSync(plots);
    expect(svgs).toHaveLength(3 + names.length); // errors.svg, error-histogram.svg, element-error-histogram.svg and one precision map each
    for (const n of svgs) {
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
      expect(readFileSync(join(plots, n), 'utf8'), n).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    }
    const xml = spawnSync(python, ['-c', 'import sys, xml.etree.ElementTree as E; [E.parse(f) for f in sys.argv[1:]]', ...svgs.map((n) => join(plots, n))], { encoding: 'utf8' });
    if (xml.error === undefined) expect(xml.status, xml.stderr).toBe(0); // every plot parses as XML

    // an error naming such a tensor is escaped as well
    const bad = join(root, 'terminal-nan');
    mkdirSync(bad);
    const nan = gaussian(16 * 64, 3);
    nan[1] = NaN;
    await writeSafetensors(join(bad, 'model.safetensors'), [{ name: 'clear\u001b[2J.weight', dtype: 'F32', shape: [16, 64], data: new Uint8Array(nan.buffer) }]);
    r = cli(['quantize', bad, '-o', join(root, 'terminal-nan-out'), '--format', 'nvfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tensor clear\\u001b\[2J\.weight: .*NaN/);
    expect(r.stderr).not.toMatch(CONTROL);
  });

  it('a summary that is not an fp4kit summary is refused by inspect with the reason, not a TypeError', async () => {
    const out = join(root, 'bad-summary');
    expect(cli(['quantize', tiny, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    for (const [text, why] of [
      ['{"tool": "fp4kit", "format": "mxfp4", "layout": "fp4kit", "tensors": 5}', '"tensors" is not a list'],
      ['{"tool": "fp4kit", "format": "mxfp4", "layout": "fp4kit", "tensors": [null]}', 'tensors\\[0\\] is not'],
      ['{"tool": "fp4kit", "format": "mxfp4", "layout": "fp4kit", "tensors": [{"name": 1}]}', 'tensors\\[0\\] is not'],
      ['[]', '"tool" is not "fp4kit"'],
      // Fields the header line prints (this had ended in "Cannot read properties of undefined (reading 'toFixed')").
      ['{"tool": "fp4kit", "format": "mxfp4", "layout": "fp4kit", "tensors": [], "input": "/m"}', '"input" must be a path and "inputBytes", "outputBytes" byte counts'],
      ['{"tool": "fp4kit", "format": "mxfp4", "layout": "fp4kit", "tensors": [], "input": "/m", "inputBytes": "1", "outputBytes": 1}', '"input" must be a path'],
    ] as const) {
      writeFileSync(join(out, 'fp4kit-summary.json'), text);
      const r = cli(['inspect', out, '--plot', join(root, 'bad-summary-plots')]);
      expect(r.code, text).toBe(1);
      expect(r.stderr, text).toMatch(new RegExp(`fp4kit-summary\\.json: not an fp4kit summary: ${why}`));
    }
  });

  it('the writer refuses a name UTF-8 cannot store (a lone surrogate) instead of writing another name', async () => {
    const p = join(root, 'surrogate.safetensors');
    const d = new Uint8Array(4);
    await expect(writeSafetensors(p, [{ name: 'a\ud800.weight', dtype: 'F32', shape: [1], data: d }])).rejects.toThrow(/tensor name "a\\ud800\.weight" holds a lone UTF-16 surrogate/);
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [1], data: d }], { k: '\udc00' })).rejects.toThrow(/metadata "k" holds a lone UTF-16 surrogate/);
    await writeSafetensors(p, [{ name: 'emoji \ud83d\ude00', dtype: 'F32', shape: [1], data: d }]); // a pair is fine
    const f = await SafetensorsFile.open(p);
    expect(f.tensors.map((t) => t.name)).toEqual(['emoji \ud83d\ude00']);
    await f.close();
  });

  it('read/readInto take only a tensor of the file: a made-up range is refused before anything is allocated (16 TiB was asked for)', async () => {
    const p = join(root, 'ranges.safetensors');
    await writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(8).fill(7) }, { name: 'b', dtype: 'F32', shape: [1], data: new Uint8Array(4).fill(9) }]);
    const f = await SafetensorsFile.open(p);
    try {
      const a = f.tensors[0];
      expect([...(await f.read({ ...a }))]).toEqual(Array(8).fill(7)); // a copy naming a tensor with its offsets is fine
      await expect(f.read({ ...a, end: 2 ** 44 })).rejects.toThrow(`${p}: read: tensor "a" lies at [0, 8) of the data, not at [0, 17592186044416)`);
      await expect(f.read({ name: 'x', dtype: 'F32', shape: [], begin: 0, end: 4 })).rejects.toThrow(`${p}: read: no tensor "x" in this file`);
      await expect(f.read(null as never)).rejects.toThrow(new TypeError('read: the tensor must be one of this file\'s tensors ({ name, begin, end, … }), got null'));
      f.tensors[1].end = 2 ** 44; // the public list is the caller's; the ranges read are the header's
      await expect(f.read(f.tensors[1])).rejects.toThrow(/lies at \[8, 12\) of the data/);
      await expect(f.readInto(a, new Uint8Array(4), 6)).rejects.toThrow('read past the end of tensor a');
      await expect(f.readInto(a, new Float32Array(1) as never)).rejects.toThrow(new TypeError('readInto: out must be a Uint8Array, got Float32Array'));
      const half = new Uint8Array(4);
      await f.readInto(a, half, 4);
      expect([...half]).toEqual([7, 7, 7, 7]);
    } finally {
      await f.close();
    }
  });
});

const namesScript = join(__dirname, 'helpers', 'safetensors_names.py');
interface PyListing {
  files: Record<string, { tensors: Record<string, string>; metadata: Record<string, string> }>;
  weight_map: Record<string, string> | null;
}
/** Python safetensors' view of a file or folder (test/helpers/safetensors_names.py). */
function pyRead(target: string): PyListing {
  const r = spawnSync(python, [namesScript, 'read', target], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`python read ${target}: ${r.stderr}`);
  return JSON.parse(r.stdout) as PyListing;
}
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Names that are special on a plain JavaScript object, or odd as a JSON key or in a path. */
const HOSTILE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf', 'prototype', 'length', '0', ''];
const hostileTensors = () => HOSTILE_NAMES.map((name, k) => ({ name, dtype: 'F32', shape: [2, 3], data: bytesOf(new Float32Array(6).map((_v, i) => i + 10 * k)) }));

describe('tensor names are data: the safetensors reader and writer', () => {
  it('writeSafetensors → SafetensorsFile keeps every name and metadata key', async () => {
    const path = join(root, 'names.safetensors');
    const tensors = hostileTensors();
    const metadata = Object.fromEntries(HOSTILE_NAMES.map((n) => [n, `meta of ${n}`])); // fromEntries makes "__proto__" an own key
    expect(Object.keys(metadata)).toHaveLength(HOSTILE_NAMES.length);
    await writeSafetensors(path, tensors, metadata);
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.tensors.map((t) => t.name).sort()).toEqual([...HOSTILE_NAMES].sort());
      for (const t of tensors) expect(Buffer.from(await f.read(f.tensor(t.name)!)).equals(Buffer.from(t.data)), t.name).toBe(true);
      expect(Object.keys(f.metadata).sort()).toEqual([...HOSTILE_NAMES].sort());
      for (const n of HOSTILE_NAMES) expect(Object.getOwnPropertyDescriptor(f.metadata, n)?.value).toBe(`meta of ${n}`);
      expect(f.tensor('nope')).toBeUndefined();
    } finally {
      await f.close();
    }
  });

  it.skipIf(!havePython)('Python safetensors reads our names, and we read the names Python wrote', async () => {
    const ours = join(root, 'names-ours.safetensors');
    const tensors = hostileTensors();
    await writeSafetensors(ours, tensors, Object.fromEntries(HOSTILE_NAMES.map((n) => [n, n])));
    const py = pyRead(ours).files['names-ours.safetensors'];
    expect(Object.keys(py.tensors).sort()).toEqual([...HOSTILE_NAMES].sort());
    for (const t of tensors) expect(py.tensors[t.name], t.name).toBe(sha256(t.data));
    expect(Object.keys(py.metadata).sort()).toEqual([...HOSTILE_NAMES].sort());

    const theirs = join(root, 'names-theirs.safetensors');
    const w = spawnSync(python, [namesScript, 'write', theirs, JSON.stringify(HOSTILE_NAMES)], { encoding: 'utf8', timeout: 60_000 });
    expect(w.status, w.stderr).toBe(0);
    const f = await SafetensorsFile.open(theirs);
    try {
      expect(f.tensors.map((t) => t.name).sort()).toEqual([...HOSTILE_NAMES].sort());
      for (const [k, n] of HOSTILE_NAMES.entries()) {
        expect(Array.from(new Float32Array((await f.read(f.tensor(n)!)).buffer)), n).toEqual([0, 1, 2, 3, 4, 5].map((i) => i + 10 * k));
        expect(Object.getOwnPropertyDescriptor(f.metadata, n)?.value).toBe(n);
      }
    } finally {
      await f.close();
    }
  });

  it('the writer refuses what no loader could read, naming the tensor or key', async () => {
    const p = join(root, 'refused.safetensors');
    const d = new Uint8Array(4);
    await expect(writeSafetensors(p, [{ name: '__metadata__', dtype: 'F32', shape: [1], data: d }])).rejects.toThrow(/"__metadata__" is reserved by the format/);
    await expect(writeSafetensors(p, [{ name: '__proto__', dtype: 'F32', shape: [1], data: d }, { name: '__proto__', dtype: 'F32', shape: [1], data: d }])).rejects.toThrow('duplicate tensor name "__proto__"');
    await expect(writeSafetensors(p, [{ name: 7 as never, dtype: 'F32', shape: [1], data: d }])).rejects.toThrow('writeSafetensors: tensors[0].name must be a string, got 7');
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'toString', shape: [1], data: d }])).rejects.toThrow(/tensors\[0\]\.dtype must be a safetensors dtype .*got "toString"/);
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [1], data: d }], JSON.parse('{"__proto__": 5}') as never)).rejects.toThrow('writeSafetensors: metadata["__proto__"] must be a string, got 5');
    // The shape is read by index and checked as read: a sparse one is refused, not written as [null, null].
    const sparse: number[] = []; sparse.length = 2;
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: sparse, data: d }])).rejects.toThrow('writeSafetensors: tensors[0].shape[0] must be a non-negative integer (a Number), got undefined');
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 4n as never, shape: [1], data: d }])).rejects.toThrow(new TypeError('writeSafetensors: tensors[0].dtype must be a safetensors dtype (F32, BF16, U8, …), got 4n (a BigInt)'));
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: Array(65).fill(1), data: d }])).rejects.toThrow('writeSafetensors: tensors[0].shape has more than 64 dimensions');
    expect(existsSync(p)).toBe(false);
  });
});

/** A sharded checkpoint (two shards and an index) whose tensors all have hostile names. */
async function hostileCheckpoint(dir: string): Promise<Map<string, Float32Array>> {
  mkdirSync(dir, { recursive: true });
  const values = new Map<string, Float32Array>();
  const names = [...HOSTILE_NAMES, '__proto__.weight', 'constructor.weight', 'toString.weight'];
  names.forEach((n, k) => values.set(n, gaussian(32 * 48, 100 + k)));
  const shardOf = (k: number) => `model-0000${(k % 2) + 1}-of-00002.safetensors`;
  for (const shard of [shardOf(0), shardOf(1)]) {
    await writeSafetensors(join(dir, shard), names.filter((_n, k) => shardOf(k) === shard).map((name) => ({ name, dtype: 'F32', shape: [32, 48], data: bytesOf(values.get(name)!) })));
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: Object.fromEntries(names.map((n, k) => [n, shardOf(k)])) }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
  return values;
}

describe.each(testedBackends())('tensor names are data: quantizeCheckpoint and the CLI on %s', (backend) => {
  let input = '';
  let values = new Map<string, Float32Array>();
  useBackend(backend);
  beforeAll(async () => {
    input = join(root, `names-in-${backend}`);
    values = await hostileCheckpoint(input);
  });

  it('fp4kit layout: every name quantized and found in the index, the metadata and the summary; Python agrees', async () => {
    const out = join(root, `names-fk-${backend}`);
    const summary = await quantizeCheckpoint(input, out, { format: 'mxfp4', only: /^/ });
    expect(summary.quantized).toBe(values.size);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const expected = [...values.keys()].flatMap((n) => [`${n}.qdata`, `${n}.qscales`]).sort();
    expect(Object.keys(index.weight_map).sort()).toEqual(expected);
    for (const t of summary.tensors) {
      const f = await SafetensorsFile.open(join(out, t.file));
      try {
        for (const o of t.outputs) expect(Object.getOwnPropertyDescriptor(index.weight_map, o)?.value).toBe(t.file);
        expect(Object.getOwnPropertyDescriptor(JSON.parse(f.metadata.fp4kit).tensors, t.name)?.value).toMatchObject({ format: 'mxfp4', shape: [32, 48] });
        const back = await readBackTensor('fp4kit', async (n) => f.read(f.tensor(n)!), t.name, 'mxfp4', t.shape);
        const ref = quantize(values.get(t.name)!, { format: 'mxfp4', shape: [32, 48] });
        expect(firstBitDifference(dequantize(back), dequantize(ref)), t.name).toBe(-1);
      } finally {
        await f.close();
      }
    }
    if (havePython) {
      const py = pyRead(out); // also checks every weight_map entry against the shard it names
      expect(Object.keys(py.weight_map!).sort()).toEqual(expected);
      for (const file of Object.values(py.files)) expect(Object.keys(JSON.parse(file.metadata.fp4kit).tensors).length).toBeGreaterThan(0);
    }
  });

  it('compressed-tensors: modules named __proto__, constructor, toString keep all three tensors', async () => {
    const out = join(root, `names-ct-${backend}`);
    const summary = await quantizeCheckpoint(input, out, { format: 'nvfp4', layout: 'compressed-tensors' });
    expect(summary.tensors.filter((t) => t.action === 'quantized').map((t) => t.name).sort()).toEqual(['__proto__.weight', 'constructor.weight', 'toString.weight']);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    for (const m of ['__proto__', 'constructor', 'toString']) {
      for (const s of ['weight_packed', 'weight_scale', 'weight_global_scale']) expect(Object.hasOwn(index.weight_map, `${m}.${s}`), `${m}.${s}`).toBe(true);
    }
    for (const n of HOSTILE_NAMES) expect(Object.hasOwn(index.weight_map, n), n).toBe(true); // copied through
    if (havePython) expect(Object.keys(pyRead(out).weight_map!).sort()).toEqual(Object.keys(index.weight_map).sort());
  });

  it('the CLI quantizes and inspects them (--json)', () => {
    const out = join(root, `names-cli-${backend}`);
    const r = cli(['quantize', input, '-o', out, '--format', 'nvfp4', '--only', '^', '--json', '--backend', backend]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tensors.map((t: { name: string }) => t.name).sort()).toEqual([...values.keys()].sort());
    const i = cli(['inspect', out, '--json']);
    expect(i.code, i.stderr).toBe(0);
    const stored = JSON.parse(i.stdout).tensors.map((t: { name: string }) => t.name);
    expect(stored).toContain('__proto__.qdata');
    expect(stored).toContain('.qdata'); // the tensor named ""
    expect(stored).toHaveLength(values.size * 3); // qdata, qscales, tensor_scale each
  });
});

describe('outputs that alias the input are refused before anything is written', () => {
  it('the input folder itself, a folder holding the input, and input reached through a link into the output', async () => {
    const parent = join(root, 'alias');
    const input = join(parent, 'model');
    await sharded(input, 2, 2);
    let r = cli(['quantize', input, '-o', input, '--format', 'mxfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the output folder holds the input/);
    r = cli(['quantize', input, '-o', parent, '--format', 'mxfp4', '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the output folder holds the input/);
    // an earlier output, and a new input folder whose shards are links into it
    const out = join(root, 'alias-out');
    expect(cli(['quantize', input, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    const linked = join(root, 'alias-linked');
    mkdirSync(linked);
    for (const f of readdirSync(out).filter((n) => n.endsWith('.safetensors'))) symlinkSync(join(out, f), join(linked, f));
    const before = readdirSync(out).sort();
    r = cli(['quantize', linked, '-o', out, '--format', 'nvfp4', '--only', '.']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the output folder holds the input .*→/);
    expect(readdirSync(out).sort()).toEqual(before);
    expect(siblingsOf(out)).toEqual([]);
  });
});

describe('inputs reached through the output, or named like a dead run\'s leftovers', () => {
  it('an input given through a link inside the output folder is refused, even with --force', async () => {
    const input = join(root, 'through-in');
    await sharded(input, 1, 2);
    const out = join(root, 'through-out');
    expect(cli(['quantize', input, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    symlinkSync(input, join(out, 'src'));
    const before = readdirSync(out).sort();
    const r = cli(['quantize', join(out, 'src'), '-o', out, '--format', 'nvfp4', '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the input \(.*through-out\/src\) is reached through the output folder/);
    expect(readdirSync(out).sort()).toEqual(before);
    expect(siblingsOf(out)).toEqual([]);
  });

  it('a model folder named like a dead run\'s staging or moved-aside folder is read, never moved or removed', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // a process id that no longer runs
    const host = hostname().replace(/[^A-Za-z0-9]/g, '') || 'host';
    for (const kind of ['tmp', 'old']) {
      const out = join(root, `leftover-out-${kind}`);
      const input = `${out}.${kind}-${host}-${dead}-0123abcd`;
      await sharded(input, 2, 2, 32, 128, 61);
      writeFileSync(join(input, 'tokenizer.json'), '{}');
      const before = hashDir(input);
      // <out> is absent: a moved-aside folder would otherwise be taken for an interrupted publish and renamed back
      const r = cli(['quantize', input, '-o', out, '--format', 'mxfp4']);
      expect(r.code, r.stderr).toBe(0);
      expect(hashDir(input)).toBe(before);
      expect((await expectCompleteRun(out)).input).toBe(input);
      expect(siblingsOf(out)).toEqual([basename(input)]);
    }
  });
});

describe('outputs inside the input, and inputs inside the output', () => {
  it('an output inside the input folder (also through a link) is refused and nothing is created there', async () => {
    const input = join(root, 'inside-in');
    await sharded(input, 1, 2);
    const before = hashDir(input);
    let r = cli(['quantize', input, '-o', join(input, 'quantized'), '--format', 'mxfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the output folder is inside the input folder/);
    const link = join(root, 'inside-link');
    symlinkSync(input, link);
    r = cli(['quantize', input, '-o', join(link, 'deeper', 'quantized'), '--format', 'mxfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the output folder is inside the input folder/);
    expect(hashDir(input)).toBe(before);
  });

  it('a single input file: an output beside it is fine, an output holding it is refused', async () => {
    const dir = join(root, 'single');
    mkdirSync(dir);
    const file = join(dir, 'm.safetensors');
    await writeSafetensors(file, [{ name: 'a.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 5) }]);
    expect(cli(['quantize', file, '-o', join(dir, 'out'), '--format', 'mxfp4']).code).toBe(0);
    const r = cli(['quantize', file, '-o', dir, '--format', 'mxfp4', '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the output folder holds the input/);
    expect(readdirSync(dir).sort()).toEqual(['m.safetensors', 'out']);
  });

  it('a Fisher file that lives in the output folder (here through a link) is refused: publishing would delete it', async () => {
    const input = join(root, 'fisher-in');
    await sharded(input, 1, 2);
    const out = join(root, 'fisher-out');
    expect(cli(['quantize', input, '-o', out, '--format', 'fgmp']).code).toBe(0);
    const before = hashDir(out);
    const fisher = join(root, 'fisher-link.safetensors');
    symlinkSync(join(out, 'model-00001-of-00001.safetensors'), fisher);
    const r = cli(['quantize', input, '-o', out, '--format', 'fgmp', '--fisher', fisher]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the output folder holds the input \(.*fisher-link\.safetensors → /);
    expect(hashDir(out)).toBe(before);
    expect(siblingsOf(out)).toEqual([]);
  });
});

describe('shard names that collide with the files written beside them', () => {
  const collides = (name: string) => new RegExp(`a shard named ${name.replace(/\./g, '\\.')} would collide with the ${name.replace(/\./g, '\\.')} written beside the shards`);
  const sideLike = (name: string) => new RegExp(`a shard named ${name.replace(/\./g, '\\.')} would be taken for a side file of the model folder .*end in \\.safetensors`);
  it.each([
    ['fp4kit-summary.json', collides],
    ['config.json', collides],
    ['model.safetensors.index.json', collides],
    ['tokenizer.json', sideLike],
    ['weights.bin', sideLike],
  ] as const)('a shard named %s in a model folder is refused; nothing is written', async (name, message) => {
    const dir = join(root, `collide-${name}`);
    mkdirSync(dir, { recursive: true });
    await writeSafetensors(join(dir, name), [{ name: 'a.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 3) }]);
    await writeSafetensors(join(dir, 'model-b.safetensors'), [{ name: 'b.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 4) }]);
    if (name !== 'model.safetensors.index.json') {
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'a.weight': name, 'b.weight': 'model-b.safetensors' } }));
    }
    writeFileSync(join(dir, 'other.txt'), 'x');
    const before = hashDir(dir);
    const out = join(root, `collide-out-${name}`);
    const r = cli(['quantize', dir, '-o', out, '--format', 'mxfp4']);
    if (name === 'model.safetensors.index.json') {
      // a safetensors file under the index's name is read as the index, and is not JSON
      expect(r.stderr).toMatch(/model\.safetensors\.index\.json: index is not JSON/);
    } else {
      expect(r.stderr).toMatch(message(name));
    }
    expect(r.code).toBe(1);
    expect(hashDir(dir)).toBe(before);
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
  });

  it.each(['config.json', 'fp4kit-summary.json'])('a single input file named %s is refused (its output would share the name with a side file)', async (name) => {
    const dir = join(root, `single-collide-${name}`);
    mkdirSync(dir, { recursive: true });
    await writeSafetensors(join(dir, name), [{ name: 'a.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 3) }]);
    const out = join(root, `single-collide-out-${name}`);
    const r = cli(['quantize', join(dir, name), '-o', out, '--format', 'mxfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(collides(name));
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
  });

  it('a single input file with any other name keeps it: model.bin is quantized as model.bin', async () => {
    const dir = join(root, 'single-bin');
    mkdirSync(dir, { recursive: true });
    await writeSafetensors(join(dir, 'model.bin'), [{ name: 'a.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 3) }]);
    const out = join(root, 'single-bin-out');
    const r = cli(['quantize', join(dir, 'model.bin'), '-o', out, '--format', 'mxfp4']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'fp4kit-summary.json', 'model.bin']);
  });
});

describe('a reused output folder', () => {
  it('holds only the new run: no shard, index or side file of the previous run stays reachable', async () => {
    const a = join(root, 'reuse-a');
    await sharded(a, 3, 2, 32, 128, 7);
    writeFileSync(join(a, 'tokenizer.json'), '{"a": 1}');
    const out = join(root, 'reuse-out');
    expect(cli(['quantize', a, '-o', out, '--format', 'nvfp4']).code).toBe(0);
    expect(readdirSync(out)).toContain('tokenizer.json');
    await expectCompleteRun(out); // the summary lists every file, the copied tokenizer.json too
    // the second input is a single file: no index, no tokenizer
    const b = join(root, 'reuse-b.safetensors');
    await writeSafetensors(b, [{ name: 'x.weight', dtype: 'F32', shape: [32, 128], data: f32(32 * 128, 9) }]);
    const r = cli(['quantize', b, '-o', out, '--format', 'mxfp4']);
    expect(r.code, r.stderr).toBe(0);
    const summary = await expectCompleteRun(out);
    expect(summary.input).toBe(b);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'fp4kit-summary.json', 'reuse-b.safetensors'].filter((n) => n !== 'config.json' || existsSync(join(out, n))).sort());
    expect(siblingsOf(out)).toEqual([]);
  });

  it('a folder that holds something else is refused unless --force', () => {
    const out = join(root, 'reuse-foreign');
    mkdirSync(out);
    writeFileSync(join(out, 'precious.txt'), 'keep me');
    let r = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not empty and holds no earlier fp4kit output/);
    expect(readdirSync(out)).toEqual(['precious.txt']);
    r = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).not.toContain('precious.txt');
  });

  it('an output merged from --shard parts lists every file, copied ones too, so the next run replaces it without --force', async () => {
    const input = join(root, 'parts-in');
    await sharded(input, 2, 2, 32, 128, 61);
    writeFileSync(join(input, 'tokenizer.json'), '{"t": 1}');
    const out = join(root, 'parts-out');
    for (const part of ['0/2', '1/2']) {
      const r = cli(['quantize', input, '-o', out, '--format', 'mxfp4', '--shard', part]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(readdirSync(out)).toContain('tokenizer.json');
    await expectCompleteRun(out);
    const r = cli(['quantize', input, '-o', out, '--format', 'nvfp4']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8')).format).toBe('nvfp4');
    expect(siblingsOf(out)).toEqual([]);
  });

  it('files added to an earlier output are not replaced without --force', () => {
    const out = join(root, 'added-out');
    expect(cli(['quantize', tiny, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    writeFileSync(join(out, 'NOTES.md'), 'mine');
    const before = hashDir(out);
    let r = cli(['quantize', tiny, '-o', out, '--format', 'nvfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not empty and holds files the earlier fp4kit run did not write \(NOTES\.md\); .*--force/);
    expect(hashDir(out)).toBe(before);
    expect(siblingsOf(out)).toEqual([]);
    r = cli(['quantize', tiny, '-o', out, '--format', 'nvfp4', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).not.toContain('NOTES.md');
  });

  it('a folder, link or FIFO put in an earlier output under a name its summary lists is not replaced without --force', async () => {
    const out = join(root, 'listed-folder-out');
    expect(cli(['quantize', tiny, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    rmSync(join(out, 'config.json'));
    mkdirSync(join(out, 'config.json'));
    writeFileSync(join(out, 'config.json', 'precious.txt'), 'mine');
    const r = cli(['quantize', tiny, '-o', out, '--format', 'nvfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds files the earlier fp4kit run did not write \(config\.json\)/);
    expect(readFileSync(join(out, 'config.json', 'precious.txt'), 'utf8')).toBe('mine');
    expect(siblingsOf(out)).toEqual([]);
  });

  it('an input\'s own quantization descriptors (hf_quant_config.json, fp4kit-summary.json) are not copied into the output', async () => {
    const input = join(root, 'descriptor-in');
    await sharded(input, 1, 2);
    writeFileSync(join(input, 'hf_quant_config.json'), '{"quantization": {"quant_algo": "FP8"}}');
    writeFileSync(join(input, 'fp4kit-summary.json'), '{"tool": "fp4kit", "files": []}');
    writeFileSync(join(input, 'tokenizer.json'), '{}');
    const out = join(root, 'descriptor-out');
    const r = cli(['quantize', input, '-o', out, '--format', 'mxfp4']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).not.toContain('hf_quant_config.json');
    expect(readdirSync(out)).toContain('tokenizer.json');
    expect(JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8')).input).toBe(input);
    await expectCompleteRun(out);
  });

  it('folders created for the output are removed again when nothing is published (an error, one SIGTERM, a forced exit)', async () => {
    const bad = join(root, 'parents-bad');
    mkdirSync(bad);
    const nan = gaussian(32 * 64, 3);
    nan[7] = NaN;
    await writeSafetensors(join(bad, 'model.safetensors'), [{ name: 'x.weight', dtype: 'F32', shape: [32, 64], data: new Uint8Array(nan.buffer) }]);
    const r = cli(['quantize', bad, '-o', join(root, 'parents-1', 'a', 'b', 'out'), '--format', 'nvfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NaN/);
    expect(existsSync(join(root, 'parents-1'))).toBe(false);

    const input = join(root, 'parents-in');
    await sharded(input, 2, 3, 64, 256, 71);
    for (const [fault, top] of [['slow-writes', 'parents-2'], ['hang-writes', 'parents-3']] as const) {
      const run = startCli(['quantize', input, '-o', join(root, top, 'a', 'out'), '--format', 'nvfp4'], fault);
      await until(run.stderr, fault === 'slow-writes' ? /\b[1-9]\d*\/6 tensors/ : /file writes hang from now on/, 30_000);
      expect(existsSync(join(root, top, 'a'))).toBe(true);
      run.child.kill('SIGTERM');
      expect(await exitOf(run.child, 20_000)).toEqual({ code: 143, signal: null });
      expect(existsSync(join(root, top)), fault).toBe(false);
    }
    // a parent that held something before the run is kept
    mkdirSync(join(root, 'parents-4'));
    writeFileSync(join(root, 'parents-4', 'keep.txt'), 'x');
    expect(cli(['quantize', bad, '-o', join(root, 'parents-4', 'a', 'out'), '--format', 'nvfp4']).code).toBe(1);
    expect(readdirSync(join(root, 'parents-4'))).toEqual(['keep.txt']);
  });

  it('a SIGKILL between the two publishing renames: old and new outputs are whole, and the next run puts the old one back first', async () => {
    const a = join(root, 'window-a');
    await sharded(a, 2, 2, 32, 128, 31);
    const b = join(root, 'window-b');
    await sharded(b, 2, 2, 32, 128, 32);
    const out = join(root, 'window-out');
    expect(cli(['quantize', a, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    const old = hashDir(out);
    let r = cli(['quantize', b, '-o', out, '--format', 'nvfp4'], 60_000, 'kill-between-renames');
    expect(r.signal).toBe('SIGKILL');
    expect(existsSync(out)).toBe(false); // the one instant a loader finds no output, never a mixed one
    const aside = siblingsOf(out).filter((n) => n.includes('.old-'));
    const staged = siblingsOf(out).filter((n) => n.includes('.tmp-'));
    expect(aside).toHaveLength(1);
    expect(staged).toHaveLength(1);
    expect(hashDir(join(root, aside[0]))).toBe(old);
    expect((await expectCompleteRun(join(root, staged[0]))).input).toBe(b);
    // The next run fails after it started (NaN into nvfp4): the old output is back, nothing else is left.
    const bad = join(root, 'window-bad');
    mkdirSync(bad);
    const nan = gaussian(32 * 64, 3);
    nan[5] = NaN;
    await writeSafetensors(join(bad, 'model.safetensors'), [{ name: 'x.weight', dtype: 'F32', shape: [32, 64], data: new Uint8Array(nan.buffer) }]);
    r = cli(['quantize', bad, '-o', out, '--format', 'nvfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NaN/);
    expect(hashDir(out)).toBe(old);
    expect(siblingsOf(out)).toEqual([]);
  });

  it('a SIGKILL right after publishing: the new output is whole under its name; the next run removes the old one', async () => {
    const a = join(root, 'after-a');
    await sharded(a, 1, 2, 32, 128, 41);
    const b = join(root, 'after-b');
    await sharded(b, 2, 2, 32, 128, 42);
    const out = join(root, 'after-out');
    expect(cli(['quantize', a, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    const r = cli(['quantize', b, '-o', out, '--format', 'nvfp4'], 60_000, 'kill-after-publish');
    expect(r.signal).toBe('SIGKILL');
    expect((await expectCompleteRun(out)).input).toBe(b);
    expect(siblingsOf(out).filter((n) => n.includes('.old-'))).toHaveLength(1);
    expect(cli(['inspect', out]).code).toBe(0);
    expect(cli(['quantize', a, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    expect((await expectCompleteRun(out)).input).toBe(a);
    expect(siblingsOf(out)).toEqual([]);
  });

  it('a SIGKILL at any moment leaves the old complete output, the new complete output, or (between two renames) none', async () => {
    const oldInput = join(root, 'kill-old');
    await sharded(oldInput, 2, 2, 32, 128, 11);
    const newInput = join(root, 'kill-new');
    await sharded(newInput, 6, 4, 512, 1024, 12);
    const out = join(root, 'kill-out');
    expect(cli(['quantize', oldInput, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    const seen = new Set<string>();
    let killedMidRun = 0; // kills that left a staging folder: the run had started writing
    for (const delay of [300, 800, 1200, 1600, 2000, 2500, 3000, 3600, 4300, 5000, 6000, 8000]) {
      const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', newInput, '-o', out, '--format', 'nvfp4', '--backend', 'js'], { cwd: repo, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill('SIGKILL');
      await exited;
      if (siblingsOf(out).some((n) => n.includes('.tmp-'))) killedMidRun++;
      if (!existsSync(out)) {
        seen.add('none');
        // the complete old output waits under .old-…, the new one under .tmp-…
        expect(siblingsOf(out).length).toBeGreaterThan(0);
        continue;
      }
      const { input } = await expectCompleteRun(out);
      seen.add(input === oldInput ? 'old' : 'new');
      if (input === newInput) break;
    }
    expect(seen.has('old')).toBe(true);
    expect(killedMidRun).toBeGreaterThan(0);
    // the next run cleans up after the killed ones and publishes
    const r = cli(['quantize', newInput, '-o', out, '--format', 'nvfp4']);
    expect(r.code, r.stderr).toBe(0);
    expect((await expectCompleteRun(out)).input).toBe(newInput);
    expect(siblingsOf(out)).toEqual([]);
  }, 180_000);
});

describe('files that are not regular files, and places that take no bytes', () => {
  const mkfifo = (path: string) => spawnSync('mkfifo', [path]).status === 0;

  it('a FIFO named like a shard, an index or config.json is refused at once; a FIFO beside them is not copied', async () => {
    const dir = join(root, 'fifo-shard');
    mkdirSync(dir);
    expect(mkfifo(join(dir, 'model.safetensors'))).toBe(true);
    let r = cli(['quantize', dir, '-o', join(root, 'fifo-out-1'), '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull(); // no hang
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model\.safetensors: not a regular file \(a FIFO\)/);

    const dir2 = join(root, 'fifo-config');
    await sharded(dir2, 1, 1);
    rmSync(join(dir2, 'config.json'));
    expect(mkfifo(join(dir2, 'config.json'))).toBe(true);
    r = cli(['quantize', dir2, '-o', join(root, 'fifo-out-2'), '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/config\.json: not a regular file/);

    const dir3 = join(root, 'fifo-extra');
    await sharded(dir3, 1, 1);
    expect(mkfifo(join(dir3, 'tokenizer.json'))).toBe(true);
    r = cli(['quantize', dir3, '-o', join(root, 'fifo-out-3'), '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(root, 'fifo-out-3'))).not.toContain('tokenizer.json');

    const dir4 = join(root, 'fifo-index');
    mkdirSync(dir4);
    expect(mkfifo(join(dir4, 'model.safetensors.index.json'))).toBe(true);
    r = cli(['quantize', dir4, '-o', join(root, 'fifo-out-4'), '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/index\.json: not a regular file/);
  });

  it('a link to a device named like a shard, or a shard that is a link to a FIFO, is refused at once', async () => {
    const dir = join(root, 'device-shard');
    await sharded(dir, 1, 1);
    const shard = readdirSync(dir).find((n) => n.endsWith('.safetensors'))!;
    rmSync(join(dir, shard));
    symlinkSync('/dev/zero', join(dir, shard));
    let r = cli(['quantize', dir, '-o', join(root, 'device-shard-out'), '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\.safetensors: not a regular file \(a device\)/);
    rmSync(join(dir, shard));
    const fifo = join(root, 'device-shard-fifo');
    expect(mkfifo(fifo)).toBe(true);
    symlinkSync(fifo, join(dir, shard));
    r = cli(['inspect', dir], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\.safetensors: not a regular file \(a FIFO\)/);
    expect(existsSync(join(root, 'device-shard-out'))).toBe(false);
  });

  it('writeDecodedTensors refuses a FIFO named fp4kit-summary.json instead of waiting on it', () => {
    const dir = join(root, 'decode-fifo');
    mkdirSync(dir);
    expect(mkfifo(join(dir, 'fp4kit-summary.json'))).toBe(true);
    const script = `import { writeDecodedTensors } from './lib/checkpoint/decoded-tensors.ts';
      writeDecodedTensors(${JSON.stringify(dir)}, ${JSON.stringify(join(dir, 'decoded.safetensors'))}).then(() => process.exit(3), (e) => { console.error(e.message); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/fp4kit-summary\.json: writeDecodedTensors needs the fp4kit-summary\.json of an fp4kit output folder \(.*not a regular file \(a FIFO\)\)/);
    expect(readdirSync(dir)).toEqual(['fp4kit-summary.json']);
  });

  it('a device as the input, and -o under /proc, end with an error instead of spinning', () => {
    let r = cli(['quantize', '/dev/zero', '-o', join(root, 'dev-out'), '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a regular file or a folder/);
    r = cli(['quantize', tiny, '-o', '/proc/fp4kit-out', '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fp4kit: \/proc/);
    r = cli(['quantize', tiny, '-o', '/proc/self/fp4kit-out', '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
  });

  it('folders that cannot be made under /proc (where Node\'s recursive mkdir loops forever) end with an error naming them', async () => {
    const t0 = Date.now();
    let r = cli(['quantize', tiny, '-o', '/proc/fp4kit-nowhere/deeper/out', '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fp4kit: \/proc\/fp4kit-nowhere: cannot create this folder \(ENOENT\); its parent takes no new folders/);
    const ckpt = join(root, 'proc-plot-ckpt');
    expect(cli(['quantize', tiny, '-o', ckpt, '--format', 'fgmp']).code).toBe(0);
    r = cli(['inspect', ckpt, '--plot', '/proc/fp4kit-nowhere/plots'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\/proc\/fp4kit-nowhere: cannot create this folder/);
    expect(Date.now() - t0).toBeLessThan(30_000);
    // a file in the middle of the path, and folders made before a failure are removed again
    writeFileSync(join(root, 'a-file'), 'x');
    await expect(makeFolders(join(root, 'a-file', 'sub'))).rejects.toThrow(/a-file: exists and is not a folder|a part of this path is a file/);
    expect(await makeFolders(join(root, 'made', 'for', 'this'))).toBe(join(root, 'made'));
    expect(await makeFolders(join(root, 'made', 'for', 'this'))).toBeUndefined();
  });

  it('a FIFO named fp4kit-summary.json or config.json in the output or an inspected folder blocks nothing', async () => {
    const out = join(root, 'fifo-summary-out');
    mkdirSync(out);
    expect(mkfifo(join(out, 'fp4kit-summary.json'))).toBe(true);
    let r = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/fp4kit-summary\.json cannot be read \(not a regular file \(a FIFO\)\)/);
    expect(siblingsOf(out)).toEqual([]);
    for (const name of ['fp4kit-summary.json', 'config.json']) {
      const dir = join(root, `fifo-inspect-${name}`);
      await sharded(dir, 1, 1);
      rmSync(join(dir, name), { force: true });
      expect(mkfifo(join(dir, name))).toBe(true);
      r = cli(['inspect', dir], 20_000);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`${name.replace('.', '\\.')}: not a regular file \\(a FIFO\\)`));
    }
  });

  it('a file system that takes no bytes: a clear error at once, no spinning, nothing left', () => {
    const out = join(root, 'zero-out');
    const t0 = Date.now();
    const r = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4'], 20_000, 'zero-writes');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the file system accepted no bytes/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
  });

  it('a full disk: the error names the file being written, nothing is left', () => {
    const out = join(root, 'full-out');
    const r = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4'], 20_000, 'full-disk');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fp4kit: \S+\.safetensors: no space left on device$/m);
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
  });

  it('inspect --plot refuses the checkpoint folder itself (a plot could replace a shard)', () => {
    const out = join(root, 'plot-self');
    expect(cli(['quantize', tiny, '-o', out, '--format', 'fgmp']).code).toBe(0);
    const before = hashDir(out);
    const r = cli(['inspect', out, '--plot', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the plot folder is the checkpoint folder/);
    expect(hashDir(out)).toBe(before);
  });

  // Every output is written under a temporary name first; a name without room for its suffix
  // failed midway with the temporary name's raw ENAMETOOLONG (or a wrong "is the parent writable?").
  it('an output name or a shard name without room for its temporary name (255 bytes) is refused by name before anything is written', async () => {
    const longOut = join(root, 'o'.repeat(240));
    await expect(quantizeCheckpoint(tiny, longOut, { format: 'mxfp4' })).rejects.toThrow(/the name leaves no room for the staging folder beside it \(\.tmp-.*: \d+ bytes in all, file names hold 255\); choose a shorter output name/);
    expect(existsSync(longOut)).toBe(false);
    const dir = join(root, 'long-shard');
    mkdirSync(dir);
    const shard = `${'m'.repeat(235)}.safetensors`;
    await writeSafetensors(join(dir, 'short.safetensors'), [{ name: 'a.weight', dtype: 'F32', shape: [4, 32], data: new Uint8Array(512) }]);
    renameSync(join(dir, 'short.safetensors'), join(dir, shard)); // the writer's own temporary name would not fit either
    const out = join(root, 'long-shard-out');
    await expect(quantizeCheckpoint(dir, out, { format: 'mxfp4' })).rejects.toThrow(/a shard named with 247 bytes leaves no room for its temporary name \(21 bytes more; file names hold 255\)/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).filter((n) => n.startsWith('long-shard-out'))).toEqual([]);
  });

  // A container's output volume: renaming the staging folder onto it failed with EBUSY after all
  // the work. /proc is a mount point on every Linux (a test needs no privilege to make one).
  it('an output that is a mount point is refused before any work, with a folder inside it suggested', async () => {
    await expect(quantizeCheckpoint(tiny, '/proc', { format: 'mxfp4' })).rejects.toThrow(/^\/proc: the output is a mount point: .*EBUSY.*; give a folder inside it, e\.g\. -o \/proc\/model$/);
  });

  it('the API refuses a FIFO too, without blocking the event loop', async () => {
    const dir = join(root, 'fifo-api');
    mkdirSync(dir);
    expect(mkfifo(join(dir, 'model.safetensors'))).toBe(true);
    await expect(quantizeCheckpoint(dir, join(root, 'fifo-api-out'), { format: 'mxfp4' })).rejects.toThrow(/not a regular file \(a FIFO\)/);
  });

  it('a folder or a socket named like a shard is refused by name, and so is a folder named like the index', async () => {
    const folder = join(root, 'folder-shard');
    mkdirSync(join(folder, 'model.safetensors'), { recursive: true });
    await expect(quantizeCheckpoint(folder, join(root, 'folder-shard-out'), { format: 'mxfp4' })).rejects.toThrow(/model\.safetensors: not a regular file \(a folder\)/);
    const sock = join(root, 'socket-shard');
    mkdirSync(sock);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(sock, 'model.safetensors'), resolve));
    try {
      await expect(quantizeCheckpoint(sock, join(root, 'socket-shard-out'), { format: 'mxfp4' })).rejects.toThrow(/model\.safetensors: not a regular file \(a socket/);
    } finally {
      server.close();
    }
    const index = join(root, 'folder-index');
    await sharded(index, 1, 1);
    rmSync(join(index, 'model.safetensors.index.json'));
    mkdirSync(join(index, 'model.safetensors.index.json'));
    await expect(quantizeCheckpoint(index, join(root, 'folder-index-out'), { format: 'mxfp4' })).rejects.toThrow(/index\.json: not a regular file \(a folder\)/);
    for (const o of ['folder-shard-out', 'socket-shard-out', 'folder-index-out']) expect(existsSync(join(root, o))).toBe(false);
  });
});

describe.each(testedBackends())('one signal stops a CLI run on %s', (backend) => {
  const input = join(root, `signal-in-${backend}`);
  beforeAll(() => sharded(input, 3, 4, 64, 256, 51));

  it.each([['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const)('one %s mid-run: exit %i, the previous output untouched, no staging folder', async (sig, code) => {
    const out = join(root, `signal-out-${backend}-${sig}`);
    expect(cli(['quantize', input, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    const old = hashDir(out);
    // slow-writes: 30 ms per write, so the signal lands mid-run however fast the backend is
    const run = startCli(['quantize', input, '-o', out, '--format', 'nvfp4', '--backend', backend], 'slow-writes');
    await until(run.stderr, /\b[1-9]\d*\/12 tensors/, 30_000);
    run.child.kill(sig);
    expect(await exitOf(run.child, 30_000)).toEqual({ code, signal: null });
    expect(run.stderr()).toMatch(/interrupted; no output file was left under its final name/);
    expect(hashDir(out)).toBe(old);
    expect(siblingsOf(out)).toEqual([]);
  });

  it('a run blocked in a file write that never returns: one SIGTERM still ends it within 5 s, staging removed', async () => {
    const out = join(root, `hang-out-${backend}`);
    expect(cli(['quantize', input, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    const old = hashDir(out);
    const run = startCli(['quantize', input, '-o', out, '--format', 'nvfp4', '--backend', backend], 'hang-writes');
    await until(run.stderr, /file writes hang from now on/, 30_000);
    expect(siblingsOf(out).some((n) => n.includes('.tmp-'))).toBe(true); // the run is under way
    const t0 = Date.now();
    run.child.kill('SIGTERM');
    expect(await exitOf(run.child, 20_000)).toEqual({ code: 143, signal: null });
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect(run.stderr()).toMatch(/interrupted; no output file was left under its final name/);
    expect(hashDir(out)).toBe(old);
    expect(siblingsOf(out)).toEqual([]);
  });
});

describe('every loop ends', () => {
  it('the compressed-tensors tensor scale refuses an amax it cannot represent instead of halving Infinity forever', () => {
    const script = `import { powerOfTwoTensorScale } from './lib/checkpoint/layouts/compressed-tensors.ts';
      const out = [1, Infinity, Number.MAX_VALUE, NaN, -1, 2688 * 2 ** 116, 2688 * 2 ** 116 * (1 + 2 ** -20)].map((a) => { try { return powerOfTwoTensorScale(a); } catch (e) { return e.message; } });
      console.log(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const [one, ...rest] = JSON.parse(r.stdout) as [number, ...string[]];
    expect(one).toBe(2 ** -11); // 1 / 2688 rounded up to a power of two
    for (const m of rest.slice(0, 4)) expect(m).toMatch(/^powerOfTwoTensorScale: amax must be a number ≥ 0 within float32's range, got /);
    // The largest amax whose scale decodes finite, and the next: 2^117 made a block scale of 352 decode to +Inf.
    expect(rest[4]).toBe(2 ** 116);
    expect(rest[5]).toMatch(/^values up to .* need a power-of-two global scale of 1\.66\d*e\+35, whose NVFP4 values would decode to ±Inf in compressed-tensors/);
  });

  it('a side file that keeps growing is copied as it was when opened', async () => {
    const input = join(root, 'growing-in');
    await sharded(input, 1, 1);
    writeFileSync(join(input, 'train.log'), 'start\n');
    const out = join(root, 'growing-out');
    // endless-reads: every read at the end of a file finds more bytes (as if appended meanwhile)
    const r = cli(['quantize', input, '-o', out, '--format', 'mxfp4'], 30_000, 'endless-reads');
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(out, 'train.log'), 'utf8')).toBe('start\n');
  });
});

describe('one signal stops inspect --plot', () => {
  it('blocked in a plot write that never returns: one SIGTERM exits 143 at once and leaves no temporary file', async () => {
    const ckpt = join(root, 'plot-signal-ckpt');
    expect(cli(['quantize', tiny, '-o', ckpt, '--format', 'fgmp']).code).toBe(0);
    const plots = join(root, 'plot-signal-plots');
    // errors.svg and one precision map per FGMP tensor: the 4th plot write hangs
    const run = startCli(['inspect', ckpt, '--plot', plots], 'hang-writes');
    await until(run.stderr, /file writes hang from now on/, 30_000);
    expect(readdirSync(plots).some((n) => n.includes('.tmp-'))).toBe(true); // a plot is being written
    const t0 = Date.now();
    run.child.kill('SIGTERM');
    expect(await exitOf(run.child, 20_000)).toEqual({ code: 143, signal: null });
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(run.stderr()).toMatch(/interrupted; no plot was left half-written/);
    const left = readdirSync(plots);
    expect(left.filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(left.length).toBe(3); // the plots finished before the hang, each whole
    for (const n of left) expect(readFileSync(join(plots, n), 'utf8')).toMatch(/<\/svg>\s*$/);
  });
});

describe('the checkpoint API refuses bad arguments by name', () => {
  it('quantizeCheckpoint and writeSafetensors', async () => {
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), null as never)).rejects.toThrow('quantizeCheckpoint: options must be an object { format, layout?, … }, got null');
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), { format: 'toString' as never })).rejects.toThrow(/quantizeCheckpoint: options\.format must be one of mxfp4, .*fgmp, got "toString"/);
    await expect(quantizeCheckpoint(42 as never, join(root, 'api-1'), { format: 'mxfp4' })).rejects.toThrow('quantizeCheckpoint: input must be a path');
    // A TypeError for a value of the wrong kind, a RangeError for the right kind with a wrong value; named as given.
    await expect(quantizeCheckpoint(null as never, join(root, 'api-1'), { format: 'mxfp4' })).rejects.toMatchObject({ name: 'TypeError', message: 'quantizeCheckpoint: input must be a path (a non-empty string), got null' });
    await expect(quantizeCheckpoint('', join(root, 'api-1'), { format: 'mxfp4' })).rejects.toMatchObject({ name: 'RangeError', message: 'quantizeCheckpoint: input must be a path (a non-empty string), got ""' });
    await expect(quantizeCheckpoint(tiny, 7 as never, { format: 'mxfp4' })).rejects.toMatchObject({ name: 'TypeError', message: 'quantizeCheckpoint: outDir must be a path (a non-empty string), got 7' });
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), { format: 42 as never })).rejects.toThrow(TypeError);
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), { format: 'mxfp4', rounding: 1 as never })).rejects.toThrow(TypeError);
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), { format: 'mxfp4', rounding: 'up' as never })).rejects.toThrow(RangeError);
    expect(() => layoutByName(42 as never)).toThrow(new TypeError('layoutByName: unknown layout 42; expected one of fp4kit, compressed-tensors, modelopt, gpt-oss'));
    expect(() => layoutByName(4n as never)).toThrow('layoutByName: unknown layout 4n (a BigInt)');
    expect(() => layoutByName('vllm' as never)).toThrow(RangeError);
    expect(() => layoutByName('modelopt', { inputScale: 'x' } as never)).toThrow(TypeError);
    expect(() => layoutByName('modelopt', { inputScale: -1 })).toThrow(RangeError);
    expect(() => layoutByName('fp4kit', { inputScale: 0.5 })).toThrow(new RangeError('layoutByName: options.inputScale applies to the modelopt layout only (its input_scale)'));
    expect(() => layoutByName('modelopt', { inputScal: 0.5 } as never)).toThrow(new RangeError('layoutByName: unknown option "inputScal"; the options are inputScale'));
    expect(() => layoutByName('modelopt', 7 as never)).toThrow(TypeError);
    expect(layoutByName('modelopt', { inputScale: 0.5 }).name).toBe('modelopt');
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), { format: 'mxfp4' }, undefined, {} as never)).rejects.toThrow(/quantizeCheckpoint: signal \(its fifth argument\) must be an AbortSignal/);
    expect(existsSync(join(root, 'api-1'))).toBe(false);
    const p = join(root, 'api.safetensors');
    await expect(writeSafetensors(p, null as never)).rejects.toThrow('writeSafetensors: tensors must be an array');
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(4) }])).rejects.toThrow('writeSafetensors: tensors[0].data must hold 8 bytes for F32 × [2], got 4');
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F33', shape: [2], data: new Uint8Array(8) }])).rejects.toThrow(/tensors\[0\]\.dtype must be a safetensors dtype/);
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array(2) as never }])).rejects.toThrow('writeSafetensors: tensors[0].data must be a Uint8Array');
    expect(existsSync(p)).toBe(false);
  });

  // Found by an audit of the code API (eighteenth session): options checked only when a tensor
  // was quantized (after the staging folder was made), some never, and read many times.
  it('every option is checked before anything is written: types, ranges, typos, arguments put in the options', async () => {
    const out = join(root, 'api-opts');
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ format: 'nvfp4', layout: 'modelopt', inputScale: -1 }, 'RangeError: quantizeCheckpoint: options.inputScale must be a finite float32 ≥ 2^-126, got -1'],
      [{ format: 'nvfp4', layout: 'modelopt', inputScale: NaN }, 'RangeError: quantizeCheckpoint: options.inputScale must be a finite float32 ≥ 2^-126, got NaN'],
      [{ format: 'nvfp4', layout: 'modelopt', inputScale: 1e39 }, 'RangeError: quantizeCheckpoint: options.inputScale 1e+39 overflows float32'],
      [{ format: 'nvfp4', layout: 'modelopt', inputScale: 'x' }, 'TypeError: quantizeCheckpoint: options.inputScale must be a finite float32 ≥ 2^-126 (a Number), got "x"'],
      [{ format: 'nvfp4', layout: 'compressed-tensors', inputScale: 0.5 }, 'RangeError: quantizeCheckpoint: options.inputScale applies to the modelopt layout only (its input_scale)'],
      [{ format: 'mxfp4', rounding: 'stochastic', seed: NaN }, 'RangeError: quantizeCheckpoint: options.seed must be an integer in [0, 2^32), got NaN'],
      [{ format: 'mxfp4', rounding: 'stochastic', seed: 1.5 }, 'RangeError: quantizeCheckpoint: options.seed must be an integer in [0, 2^32), got 1.5'],
      [{ format: 'mxfp4', rounding: 'stochastic', seed: 2 ** 40 }, `RangeError: quantizeCheckpoint: options.seed must be an integer in [0, 2^32), got ${2 ** 40}`],
      [{ format: 'mxfp4', rounding: 'stochastic', seed: '7' }, 'TypeError: quantizeCheckpoint: options.seed must be an integer in [0, 2^32) (a Number), got "7"'],
      [{ format: 'mxfp4', rounding: 'stochastic', seed: 5n }, 'TypeError: quantizeCheckpoint: options.seed must be an integer in [0, 2^32) (a Number), got 5n (a BigInt)'],
      [{ format: 'mxfp4', rounding: 'up' }, `RangeError: quantizeCheckpoint: options.rounding must be 'nearest' or 'stochastic', got "up"`],
      [{ format: 'mxfp4', scaleRule: 'round' }, `RangeError: quantizeCheckpoint: options.scaleRule must be 'floor' or 'ceil', got "round"`],
      [{ format: 'fgmp', fp4Fraction: 2 }, 'RangeError: quantizeCheckpoint: options.fp4Fraction must be a number in [0, 1], got 2'],
      [{ format: 'fgmp', fp4Fraction: 1n }, 'TypeError: quantizeCheckpoint: options.fp4Fraction must be a number in [0, 1], got 1n (a BigInt)'],
      [{ format: 'mxfp4', measureError: 'no' }, 'TypeError: quantizeCheckpoint: options.measureError must be a boolean, got "no"'],
      [{ format: 'mxfp4', layout: 'vllm' }, 'RangeError: quantizeCheckpoint: options.layout must be one of fp4kit, compressed-tensors, modelopt, gpt-oss, got "vllm"'],
      [{ format: 'nvfp4', layuot: 'compressed-tensors' }, 'RangeError: quantizeCheckpoint: unknown option "layuot"; the options are format, layout, only, skip, rounding, seed, scaleRule, fisher, fp4Fraction, inputScale, measureError, overwrite'],
      [{ format: 'mxfp4', signal: AbortSignal.abort() }, 'TypeError: quantizeCheckpoint: signal is the fifth argument of quantizeCheckpoint, not an option'],
      [{ format: 'mxfp4', onProgress: () => {} }, 'TypeError: quantizeCheckpoint: onProgress is the fourth argument of quantizeCheckpoint, not an option'],
      // An option of another format: the checkpoint would silently lack it (as quantize() refuses them).
      [{ format: 'nvfp4', fp4Fraction: 0.5 }, 'RangeError: quantizeCheckpoint: options.fp4Fraction applies to the fgmp format only'],
      [{ format: 'nvfp4', scaleRule: 'ceil' }, 'RangeError: quantizeCheckpoint: options.scaleRule applies to the MX formats only'],
      [{ format: 'fgmp', rounding: 'stochastic' }, 'RangeError: quantizeCheckpoint: options.rounding applies to the block formats (fgmp rounds to nearest) only'],
    ];
    for (const [options, want] of refused) {
      const got = await quantizeCheckpoint(tiny, out, options as never).then(() => 'no error', (e: Error) => `${e.constructor.name}: ${e.message}`);
      expect(got, JSON.stringify(options, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))).toBe(want);
      expect(existsSync(out)).toBe(false);
      expect(siblingsOf(out)).toEqual([]);
    }
  });

  it('options are read once: a getter that answers differently later cannot make the run use another value than the one checked', async () => {
    const out = join(root, 'api-getter');
    const reads: Record<string, number> = {};
    const options = new Proxy({ format: 'nvfp4', layout: 'modelopt', rounding: 'nearest', seed: 3 } as Record<string, unknown>, {
      get(t, key, r) {
        if (typeof key === 'string') reads[key] = (reads[key] ?? 0) + 1;
        // The first read says nvfp4; any later one would say mxfp4 (which modelopt does not hold).
        if (key === 'format' && reads[key] > 1) return 'mxfp4';
        return Reflect.get(t, key, r);
      },
    });
    const summary = await quantizeCheckpoint(tiny, out, options as never);
    expect(summary.format).toBe('nvfp4');
    expect(reads.format).toBe(1);
    expect(Object.values(reads).every((n) => n === 1), JSON.stringify(reads)).toBe(true);
  });

  it('a progress callback whose Promise rejects fails the run like one that throws: the staging folder is removed', async () => {
    const out = join(root, 'api-progress');
    await expect(quantizeCheckpoint(tiny, out, { format: 'mxfp4' }, async () => { throw new Error('progress sink failed'); })).rejects.toThrow('progress sink failed');
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
  });
});

// Found by an audit with hand-made checkpoints (seventeenth session): each was a run that ended
// well and left an output that was wrong, unreadable by inspect, or missing a field.
describe('outputs that must be right even when the input is odd', () => {
  it('an output name taken by a copied tensor, in another shard or the same one, is refused before anything is written', async () => {
    const dir = join(root, 'name-taken');
    mkdirSync(dir, { recursive: true });
    await writeSafetensors(join(dir, 'model-1.safetensors'), [{ name: 'l.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 5) }]);
    await writeSafetensors(join(dir, 'model-2.safetensors'), [{ name: 'l.weight_packed', dtype: 'U8', shape: [16, 32], data: new Uint8Array(16 * 32) }]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'l.weight': 'model-1.safetensors', 'l.weight_packed': 'model-2.safetensors' } }));
    const out = join(root, 'name-taken-out');
    const r = cli(['quantize', dir, '-o', out, '--format', 'nvfp4', '--layout', 'compressed-tensors']);
    expect(r.stderr).toMatch(/output tensor "l\.weight_packed" would be written twice, by quantizing "l\.weight" \(model-1\.safetensors\) and by copying "l\.weight_packed" \(model-2\.safetensors\)/);
    expect(r.code).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
    // the same within one file, in fp4kit's own layout
    const one = join(root, 'name-taken-one.safetensors');
    await writeSafetensors(one, [
      { name: 'a.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 6) },
      { name: 'a.weight.qdata', dtype: 'U8', shape: [4], data: new Uint8Array(4) },
    ]);
    const r2 = cli(['quantize', one, '-o', join(root, 'name-taken-one-out'), '--format', 'mxfp4']);
    expect(r2.stderr).toMatch(/name-taken-one\.safetensors: output tensor "a\.weight\.qdata" would be written twice, by quantizing "a\.weight" and by copying "a\.weight\.qdata"/);
    expect(r2.code).toBe(1);
  });

  it('a NaN weight in an MX format: the summary writes its errors as null, and inspect reads them back as NaN', async () => {
    const dir = join(root, 'nan-weight');
    mkdirSync(dir, { recursive: true });
    const x = gaussian(16 * 64, 7, 0.05);
    x[100] = NaN;
    await writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'a.weight', dtype: 'F32', shape: [16, 64], data: new Uint8Array(x.buffer) }]);
    const out = join(root, 'nan-weight-out');
    const r = cli(['quantize', dir, '-o', out, '--format', 'mxfp4']);
    expect(r.code, r.stderr).toBe(0);
    const t = JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8')).tensors[0];
    // No max error either: the NaN block has none, and a max over the others would mislead.
    expect([t.relRmse, t.maxAbsError]).toEqual([null, null]);
    const text = cli(['inspect', out]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/a\.weight\s+mxfp4\s+\[16, 64\]\s+\S+\s+NaN\s+NaN/);
    expect(cli(['inspect', out, '--json']).code).toBe(0);
  });

  it('only and skip given as RegExp objects with the g or y flag match every name alike', async () => {
    const dir = join(root, 'regex-flags');
    mkdirSync(dir, { recursive: true });
    const names = ['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj', 'down_proj'].map((n) => `layers.0.${n}.weight`);
    await writeSafetensors(join(dir, 'model.safetensors'), names.map((name, i) => ({ name, dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 10 + i) })));
    for (const only of [/proj/g, /proj/y, /proj/gy]) {
      const s = await quantizeCheckpoint(dir, join(root, `regex-flags-out-${only.flags}`), { format: 'nvfp4', only: only.flags === 'y' ? /.*proj/y : only });
      expect(s.tensors.filter((t) => t.action === 'quantized').map((t) => t.name).sort(), `only ${only}`).toEqual([...names].sort());
    }
    const skipped = await quantizeCheckpoint(dir, join(root, 'regex-flags-skip'), { format: 'nvfp4', skip: /proj/g });
    expect(skipped.tensors.every((t) => t.action === 'copied')).toBe(true);
    await expect(quantizeCheckpoint(dir, join(root, 'regex-flags-bad'), { format: 'nvfp4', only: 5 as never })).rejects.toThrow(/--only must be a RegExp or a string, got/);
  });

  it('the MX scale rule of a run is written in the fp4kit layout\'s metadata, and the tensors read back with it', async () => {
    const dir = join(root, 'scale-rule');
    mkdirSync(dir, { recursive: true });
    const x = gaussian(8 * 64, 12, 3);
    await writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'a.weight', dtype: 'F32', shape: [8, 64], data: new Uint8Array(x.buffer) }]);
    for (const rule of ['ceil', 'floor'] as const) {
      const out = join(root, `scale-rule-out-${rule}`);
      await quantizeCheckpoint(dir, out, { format: 'mxfp8_e4m3', scaleRule: rule });
      const f = await SafetensorsFile.open(join(out, 'model.safetensors'));
      try {
        const meta = JSON.parse(f.metadata.fp4kit).tensors['a.weight'];
        expect(meta).toEqual({ format: 'mxfp8_e4m3', shape: [8, 64], blockSize: 32, scaleRule: rule });
        const back = await readBackTensor('fp4kit', async (n) => f.read(f.tensor(n)!), 'a.weight', 'mxfp8_e4m3', [8, 64], meta.scaleRule);
        const want = quantize(x, { format: 'mxfp8_e4m3', shape: [8, 64], scaleRule: rule });
        expect(back).toMatchObject({ scaleRule: rule });
        expect(Buffer.compare((back as typeof want).scales, want.scales)).toBe(0);
        expect(firstBitDifference(dequantize(back), dequantize(want))).toBe(-1);
      } finally {
        await f.close();
      }
    }
    // the two rules give different scales here, so the check above tells them apart
    const [c, fl] = (['ceil', 'floor'] as const).map((rule) => quantize(x, { format: 'mxfp8_e4m3', shape: [8, 64], scaleRule: rule }).scales);
    expect(Buffer.compare(c, fl)).not.toBe(0);
  });

  it('NVFP4 serving layouts: a fused group partly quantized is refused, an embedding stays unpacked, modelopt\'s config.json names its exclusions "ignore"', async () => {
    // vLLM fuses q/k/v (and gate/up) into one layer and refuses a mix of schemes.
    for (const layout of ['compressed-tensors', 'modelopt']) {
      const out = join(root, `fused-mix-${layout}`);
      const r = cli(['quantize', tiny, '-o', out, '--format', 'nvfp4', '--layout', layout, '--skip', 'k_proj']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`model\\.layers\\.0\\.self_attn\\.qkv_proj: "model\\.layers\\.0\\.self_attn\\.q_proj\\.weight", "model\\.layers\\.0\\.self_attn\\.v_proj\\.weight" would be quantized but "model\\.layers\\.0\\.self_attn\\.k_proj\\.weight" copied \\(matches --skip\\); loaders of the ${layout} layout fuse them`));
      expect(existsSync(out)).toBe(false);
    }
    // Selecting an embedding does not pack it where loaders read Linear layers only.
    const emb = await quantizeCheckpoint(tiny, join(root, 'embed-ct'), { format: 'nvfp4', layout: 'compressed-tensors', only: /embed|proj/ });
    expect(emb.tensors.find((t) => t.name === 'model.embed_tokens.weight')).toMatchObject({ action: 'copied', reason: expect.stringMatching(/^an embedding/) });
    const mo = await quantizeCheckpoint(tiny, join(root, 'modelopt-ignore'), { format: 'nvfp4', layout: 'modelopt' });
    const qc = JSON.parse(readFileSync(join(root, 'modelopt-ignore', 'config.json'), 'utf8')).quantization_config;
    expect(qc.ignore).toEqual(qc.exclude_modules);
    expect(qc.ignore).toContain('lm_head');
    expect(mo.quantized).toBeGreaterThan(0);
  });

  it('quantize --help and inspect --help print the usage and exit 0', () => {
    for (const args of [['quantize', '--help'], ['inspect', '-h'], ['merge', '--help']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^usage:/);
    }
  });
});

describe('the Fisher file of an fgmp run is checked against the checkpoint before anything is written', () => {
  const dir = join(root, 'fisher-checks');
  const input = join(dir, 'model.safetensors');
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const weights = [
    { name: 'model.layers.0.mlp.up_proj.weight', shape: [32, 64] },
    { name: 'model.layers.0.mlp.down_proj.weight', shape: [64, 32] },
  ];
  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    await writeSafetensors(input, weights.map((w, i) => ({ name: w.name, dtype: 'F32', shape: w.shape, data: bytes(gaussian(2048, 900 + i)) })));
  });
  let n = 0;
  async function run(fisher: Array<{ name: string; dtype?: string; shape: number[]; values?: Float32Array }>) {
    const file = join(dir, `fisher-${n}.safetensors`);
    await writeSafetensors(file, fisher.map((f) => {
      const count = f.shape.reduce((a, b) => a * b, 1);
      const values = f.values ?? Float32Array.from({ length: count }, (_, i) => 1 + (i % 7));
      return f.dtype === 'BF16'
        ? { name: f.name, dtype: 'BF16', shape: f.shape, data: new Uint8Array(Uint16Array.from(new Uint32Array(values.buffer), (b) => b >>> 16).buffer) }
        : { name: f.name, dtype: 'F32', shape: f.shape, data: bytes(values) };
    }));
    const out = join(dir, `out-${n++}`);
    const result = quantizeCheckpoint(input, out, { format: 'fgmp', layout: 'fp4kit', fisher: file });
    return { file, out, result };
  }

  it('refuses a Fisher tensor of another shape than its weight (a transposed one would weight the wrong elements), naming the Fisher file', async () => {
    const { file, out, result } = await run([{ name: 'model.layers.0.mlp.up_proj.weight', shape: [64, 32] }]);
    await expect(result).rejects.toThrow(`${file}: Fisher tensor model.layers.0.mlp.up_proj.weight has shape [64, 32]; expected the weight's [32, 64] (one value per element, or [2048] flattened) or [64] (one per input channel)`);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a Fisher file whose names match none of the weights (the run would be unweighted without a word)', async () => {
    const { file, out, result } = await run([{ name: 'layers.0.mlp.up_proj.weight', shape: [32, 64] }]);
    await expect(result).rejects.toThrow(`${file}: none of the 2 tensors to quantize has a Fisher tensor here (the checkpoint's "model.layers.0.mlp.up_proj.weight"; this file holds "layers.0.mlp.up_proj.weight"): the Fisher file must use the checkpoint's tensor names`);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a NaN, infinite or negative Fisher value, naming the Fisher file and the element', async () => {
    for (const [bad, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-1, '-1']] as const) {
      const values = new Float32Array(64).fill(1);
      values[5] = bad;
      const { file, out, result } = await run([{ name: 'model.layers.0.mlp.up_proj.weight', shape: [64], values }]);
      await expect(result).rejects.toThrow(`${file}: Fisher tensor model.layers.0.mlp.up_proj.weight holds ${shown} at element 5; Fisher values must be finite and non-negative`);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('takes the weight\'s shape, the flattened values or one per input channel (F32 or BF16); a weight without a Fisher tensor uses plain error', async () => {
    const { out, result } = await run([
      { name: 'model.layers.0.mlp.up_proj.weight', shape: [32, 64], dtype: 'BF16' },
      { name: 'model.layers.0.mlp.down_proj.weight', shape: [32] },
    ]);
    expect((await result).quantized).toBe(2);
    const flat = await run([{ name: 'model.layers.0.mlp.up_proj.weight', shape: [2048] }]);
    const summary = await flat.result;
    expect(summary.quantized).toBe(2);
    // The summary says which tensors had Fisher values (the other one took plain error).
    expect(summary.tensors.map((t) => [t.name, t.fisherWeighted])).toEqual([['model.layers.0.mlp.up_proj.weight', true], ['model.layers.0.mlp.down_proj.weight', false]]);
    // The command line says so too.
    const r = cli(['quantize', input, '-o', join(dir, 'cli-partial'), '--format', 'fgmp', '--fisher', flat.file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Fisher-weighted: 1 of 2 tensors; the other 1 (e.g. model.layers.0.mlp.down_proj.weight) have no Fisher tensor in the file and were chosen by plain squared error');
    const both = await run([{ name: 'model.layers.0.mlp.up_proj.weight', shape: [32, 64] }, { name: 'model.layers.0.mlp.down_proj.weight', shape: [64, 32] }]);
    expect((await both.result).tensors.every((t) => t.fisherWeighted)).toBe(true);
    const full = cli(['quantize', input, '-o', join(dir, 'cli-full'), '--format', 'fgmp', '--fisher', both.file]);
    expect(full.code).toBe(0);
    expect(full.stdout).not.toContain('Fisher-weighted');
    rmSync(out, { recursive: true });
    rmSync(flat.out, { recursive: true });
  });
});
