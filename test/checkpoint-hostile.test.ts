// Hostile files and folders for the checkpoint tool (issue 13): names that are special on a plain
// object, outputs that alias the input, shard names that collide with side files, a reused output
// folder, kills at any moment of a run, FIFOs and devices, a file system that takes no bytes, and
// one SIGTERM. The CLI runs as a child process with a timeout, so a hang fails the test.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quantizeCheckpoint } from '../lib/checkpoint.js';
import { openCheckpoint, closeCheckpoint } from '../lib/safetensors/checkpoint-files.js';
import { writeSafetensors } from '../lib/safetensors/write.js';
import { gaussian } from './helpers/data.js';

const repo = join(__dirname, '..');
const tiny = join(repo, 'examples', 'tiny-model');
const root = mkdtempSync(join(tmpdir(), 'fp4kit-hostile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const python = process.env.PYTHON ?? 'python3';
const havePython = spawnSync(python, ['-c', 'import numpy, safetensors'], { encoding: 'utf8' }).status === 0;
if (!havePython && process.env.CI === 'true') throw new Error(`CI=true but ${python} cannot import numpy and safetensors`);

function cli(args: string[], timeout = 60_000) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'cli.ts'), ...args], { cwd: repo, encoding: 'utf8', timeout });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
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
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(names.map((n) => [n, 'model-00001-of-00001.safetensors'])) }));
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
    await closeCheckpoint(written);
    expect([...stored].sort()).toEqual([...expected].sort());
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

describe('shard names that collide with the files written beside them', () => {
  it.each(['fp4kit-summary.json', 'config.json', 'tokenizer.json'])('a shard named %s is refused; nothing is written', async (name) => {
    const dir = join(root, `collide-${name}`);
    mkdirSync(dir, { recursive: true });
    await writeSafetensors(join(dir, name), [{ name: 'a.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 3) }]);
    await writeSafetensors(join(dir, 'model-b.safetensors'), [{ name: 'b.weight', dtype: 'F32', shape: [16, 64], data: f32(16 * 64, 4) }]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'a.weight': name, 'b.weight': 'model-b.safetensors' } }));
    if (name === 'tokenizer.json') writeFileSync(join(dir, 'other.txt'), 'x');
    const out = join(root, `collide-out-${name}`);
    const r = cli(['quantize', dir, '-o', out, '--format', 'mxfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`a shard named ${name.replace('.', '\\.')} would collide`));
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
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
      const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'cli.ts'), 'quantize', newInput, '-o', out, '--format', 'nvfp4', '--backend', 'js'], { cwd: repo, stdio: 'ignore' });
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

  it('the API refuses a FIFO too, without blocking the event loop', async () => {
    const dir = join(root, 'fifo-api');
    mkdirSync(dir);
    expect(mkfifo(join(dir, 'model.safetensors'))).toBe(true);
    await expect(quantizeCheckpoint(dir, join(root, 'fifo-api-out'), { format: 'mxfp4' })).rejects.toThrow(/not a regular file \(a FIFO\)/);
  });
});

describe('one SIGTERM', () => {
  it('stops a run cleanly: exit 143, no output and no staging folder left', async () => {
    const input = join(root, 'term-in');
    await sharded(input, 4, 3, 128, 512, 21);
    const out = join(root, 'term-out');
    const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'cli.ts'), 'quantize', input, '-o', out, '--format', 'nvfp4', '--backend', 'js'], { cwd: repo });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /\b[1-9]\d*\/12 tensors/.test(stderr)) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(-1), 30_000);
      child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    expect(sent).toBe(true);
    expect(code).toBe(143);
    expect(stderr).toMatch(/interrupted; no output file was left under its final name/);
    expect(existsSync(out)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
  });
});

describe('the checkpoint API refuses bad arguments by name', () => {
  it('quantizeCheckpoint and writeSafetensors', async () => {
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), null as never)).rejects.toThrow('quantizeCheckpoint: options must be an object { format, layout?, … }, got null');
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), { format: 'toString' as never })).rejects.toThrow(/quantizeCheckpoint: options\.format must be one of mxfp4, .*fgmp, got "toString"/);
    await expect(quantizeCheckpoint(42 as never, join(root, 'api-1'), { format: 'mxfp4' })).rejects.toThrow('quantizeCheckpoint: input must be a path');
    await expect(quantizeCheckpoint(tiny, join(root, 'api-1'), { format: 'mxfp4' }, undefined, {} as never)).rejects.toThrow(/quantizeCheckpoint: options\.signal must be an AbortSignal/);
    expect(existsSync(join(root, 'api-1'))).toBe(false);
    const p = join(root, 'api.safetensors');
    await expect(writeSafetensors(p, null as never)).rejects.toThrow('writeSafetensors: tensors must be an array');
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(4) }])).rejects.toThrow('writeSafetensors: tensors[0].data must hold 8 bytes for F32 × [2], got 4');
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F33', shape: [2], data: new Uint8Array(8) }])).rejects.toThrow(/tensors\[0\]\.dtype must be a safetensors dtype/);
    await expect(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array(2) as never }])).rejects.toThrow('writeSafetensors: tensors[0].data must be a Uint8Array');
    expect(existsSync(p)).toBe(false);
  });
});
