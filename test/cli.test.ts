// The fp4kit command line, spawned as a user runs it (node --import tsx lib/checkpoint/cli.ts): exit codes,
// --json summary, inspect, one-line errors, and Ctrl-C (SIGINT) leaving no output behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { embeddedGrayPng } from './helpers/svg-png.js';

const repo = join(__dirname, '..');
const tiny = join(repo, 'examples', 'tiny-model');
const root = mkdtempSync(join(tmpdir(), 'fp4kit-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), ...args], {
    cwd: repo, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('fp4kit quantize / inspect', () => {
  it('inspect --plot draws the error per tensor and an FGMP precision map per tensor', () => {
    const out = join(root, 'fgmp-plots');
    expect(cli(['quantize', tiny, '-o', out, '--format', 'fgmp', '--fp4-fraction', '0.7']).code).toBe(0);
    const plots = join(root, 'plots');
    const r = cli(['inspect', out, '--plot', plots]);
    expect(r.code).toBe(0);
    const files = readdirSync(plots).sort();
    expect(files).toContain('errors.svg');
    // Every quantized element's error relative to its tensor's RMS: the summary's run-level
    // histogram counts each element of the 14 quantized tensors once, and the plot draws it.
    const summary = JSON.parse(readFileSync(join(out, 'fp4kit-summary.json'), 'utf8'));
    const quantizedElements = summary.tensors.filter((t: { action: string }) => t.action === 'quantized')
      .reduce((a: number, t: { shape: number[] }) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const h = summary.errorHistogram;
    expect(h).toMatchObject({ format: 'fgmp', tensors: 14, elements: quantizedElements, infinite: 0, nan: 0, unscaled: 0 });
    expect(h.exact + h.counts.reduce((a: number, b: number) => a + b, 0)).toBe(quantizedElements);
    expect(files).toContain('element-error-histogram.svg');
    expect(readFileSync(join(plots, 'element-error-histogram.svg'), 'utf8')).toMatch(/^<svg [^]*<rect [^]*<\/svg>\n?$/);
    const maps = files.filter((f) => f.startsWith('precision-'));
    expect(maps).toHaveLength(14);
    const errors = readFileSync(join(plots, 'errors.svg'), 'utf8');
    expect(errors).toMatch(/^<svg /);
    expect(errors.match(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="12" fill="#4878a8">/g)).toHaveLength(14);
    const map = readFileSync(join(plots, maps[0]), 'utf8');
    // black cells are FP8 blocks; the caption states the FP8 share, which FGMP set to 30 %
    expect(map).toMatch(/FP8 3\d\.\d % of \d+ blocks|FP8 29\.\d % of \d+ blocks/);
    expect(embeddedGrayPng(map).pixels.some((v) => v === 0)).toBe(true);
  });

  it('quantizes the bundled model with --json and inspect reads it back', () => {
    const out = join(root, 'nvfp4');
    const r = cli(['quantize', tiny, '-o', out, '--format', 'nvfp4', '--layout', 'compressed-tensors', '--json']);
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('fp4kit: ') )).toEqual([]);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ tool: 'fp4kit', format: 'nvfp4', layout: 'compressed-tensors', quantized: 14, copied: 7 });
    for (const t of summary.tensors) {
      if (t.action === 'quantized') {
        expect(t.relRmse).toBeGreaterThan(0.01);
        expect(t.relRmse).toBeLessThan(0.2);
        expect(t.maxAbsError).toBeGreaterThan(0);
        expect(t.bitsPerElement).toBeCloseTo(4.5, 1);
      }
    }
    // Not a TTY: quiet line-based progress on stderr.
    expect(r.stderr).toMatch(/^fp4kit: 100% .* 21\/21 tensors/m);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'fp4kit-summary.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);

    const i = cli(['inspect', out]);
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/quant_method=compressed-tensors format=nvfp4-pack-quantized/);
    expect(i.stdout).toMatch(/model\.layers\.0\.mlp\.down_proj\.weight\s+nvfp4\s+\[128, 384\]\s+4\.50\d\s+\d\.\d+e-2/);
    const ij = cli(['inspect', out, '--json']);
    expect(JSON.parse(ij.stdout).summary.format).toBe('nvfp4');
  });

  it('fgmp with a Fisher file and the js backend', async () => {
    const fisher = join(root, 'fisher.safetensors');
    const f = new Float32Array(384).fill(1);
    f[3] = 100;
    await writeSafetensors(fisher, [{ name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F32', shape: [384], data: new Uint8Array(f.buffer) }]);
    const out = join(root, 'fgmp');
    const r = cli(['quantize', tiny, '-o', out, '--format', 'fgmp', '--fisher', fisher, '--fp4-fraction', '0.7', '--only', 'layers\\.0\\.mlp', '--json', '--backend', 'js']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.backend).toBe('js');
    expect(s.quantized).toBe(3);
    for (const t of s.tensors.filter((x: { action: string }) => x.action === 'quantized')) expect(t.fp4Fraction).toBeCloseTo(0.7, 2);
  });

  it('usage errors exit 2', () => {
    for (const args of [[], ['quantize', tiny], ['quantize', tiny, '-o', join(root, 'u')], ['quantize', tiny, '-o', join(root, 'u'), '--format', 'fp5'],
      ['quantize', tiny, '-o', join(root, 'u'), '--format', 'mxfp4', '--layout', 'modelopt'], ['quantize', tiny, '-o', join(root, 'u'), '--format', 'nvfp4', '--only', '('],
      ['frobnicate'], ['quantize', tiny, '-o', join(root, 'u'), '--format', 'nvfp4', '--bogus']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^fp4kit: /);
      expect(r.stderr).toMatch(/usage:/);
    }
  });

  it('a long error reaches a pipe whole before the exit (process.exit dropped what the pipe had not taken: the usage after 64 KiB)', () => {
    const pattern = `(${'a'.repeat(100_000)}`; // an invalid regex: the message quotes it
    const args = ['quantize', tiny, '-o', join(root, 'u'), '--format', 'nvfp4', '--only', pattern];
    expect(cli(args).code).toBe(2);
    // A reader that starts late (a pager, a busy log collector): the pipe fills before the exit.
    const r = spawnSync('sh', ['-c', '"$@" 2>&1 >/dev/null | { sleep 1; cat; }', 'sh', process.execPath, '--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), ...args], {
      cwd: repo, encoding: 'utf8', timeout: 120_000,
    });
    expect(r.stdout.startsWith('fp4kit: --only: invalid regular expression')).toBe(true);
    expect(r.stdout).toContain(pattern);
    expect(r.stdout.trimEnd().endsWith('layouts: fp4kit, compressed-tensors, modelopt, gpt-oss (default fp4kit)')).toBe(true);
  });

  it('a flag that does not apply to the format or layout is a usage error, not ignored (a run that ignored --input-scale published W4A16)', () => {
    const u = join(root, 'na');
    const cases: Array<[string[], string]> = [
      [['--format', 'nvfp4', '--layout', 'compressed-tensors', '--input-scale', '0.5'], 'quantize: --input-scale applies to the modelopt layout only (its input_scale)'],
      [['--format', 'nvfp4', '--layout', 'modelopt', '--input-scale', '1e39'], 'quantize: --input-scale 1e+39 overflows float32'],
      [['--format', 'nvfp4', '--layout', 'modelopt', '--input-scale', '1e-50'], 'quantize: --input-scale must be a finite float32 ≥ 2^-126, got 1e-50'],
      [['--format', 'mxfp4', '--seed', '5'], 'quantize: --seed applies to --rounding stochastic only'],
      [['--format', 'nvfp4', '--scale-rule', 'ceil'], 'quantize: --scale-rule applies to the MX formats only'],
      [['--format', 'nvfp4', '--fp4-fraction', '0.5'], 'quantize: --fp4-fraction applies to the fgmp format only'],
      [['--format', 'fgmp', '--rounding', 'stochastic'], 'quantize: --rounding applies to the block formats (fgmp rounds to nearest) only'],
      [['--format', 'mxfp4', '--fisher', 'f.safetensors'], 'quantize: --fisher applies to the fgmp format only'],
      [['--format', 'fp5'], 'quantize: --format must be one of mxfp4, '],
      [['--format', 'mxfp4', '--layout', 'bogus'], 'quantize: --layout must be one of '],
      [['--format', 'mxfp4', '--rounding', 'up'], "quantize: --rounding must be 'nearest' or 'stochastic', got \"up\""],
      [['--format', 'mxfp4', '--scale-rule', 'round'], "quantize: --scale-rule must be 'floor' or 'ceil', got \"round\""],
    ];
    for (const [flags, message] of cases) {
      const r = cli(['quantize', tiny, '-o', u, ...flags]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr, flags.join(' ')).toContain(message);
      expect(existsSync(u)).toBe(false);
    }
  });

  it('malformed input: one line naming the file, exit 1', () => {
    const d = join(root, 'bad');
    mkdirSync(d);
    const bad = join(d, 'model.safetensors');
    writeFileSync(bad, Buffer.from([1, 2, 3]));
    const r = cli(['quantize', bad, '-o', join(root, 'bad-out'), '--format', 'nvfp4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`fp4kit: ${bad}: truncated file: 3 bytes, shorter than the 8-byte header length\n`);
    const m = cli(['inspect', join(root, 'does-not-exist')]);
    expect(m.code).toBe(1);
    expect(m.stderr.trim().split('\n')).toHaveLength(1);
    expect(m.stderr).toMatch(/does-not-exist: no such file or folder/);
  });
});

// The queue's flags are checked before Redis is asked (port 1: nothing listens, so a flag let
// through would end in "cannot reach Redis", exit 1, instead of the usage error).
describe('fp4kit quantize --queue / worker flags', () => {
  const noRedis = 'redis://127.0.0.1:1';
  it('--prefix: only with --queue, a key prefix of 1..64 safe characters; the usage lists it for both commands', () => {
    const u = join(root, 'q');
    const cases: Array<[string[], string]> = [
      [['quantize', tiny, '-o', u, '--format', 'mxfp4', '--prefix', 'team-a'], 'fp4kit: --prefix applies to --queue only'],
      [['quantize', tiny, '-o', u, '--format', 'mxfp4', '--shard', '0/2', '--prefix', 'team-a'], 'fp4kit: --prefix applies to --queue only'],
      [['quantize', tiny, '-o', u, '--format', 'mxfp4', '--queue', noRedis, '--prefix', 'team a'], 'fp4kit: --prefix: expected 1 to 64 letters, digits or ._:{}- (a Redis key prefix such as fp4kit-team-a), got "team a"'],
      [['quantize', tiny, '-o', u, '--format', 'mxfp4', '--queue', noRedis, '--prefix', 'bull*'], 'got "bull*"'],
      [['worker', '--queue', noRedis, '--prefix', ''], 'fp4kit: --prefix: expected 1 to 64 letters'],
      [['worker', '--queue', noRedis, '--prefix', 'p'.repeat(65)], 'fp4kit: --prefix: expected 1 to 64 letters'],
    ];
    for (const [args, message] of cases) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.stderr).toMatch(/usage:/);
    }
    expect(existsSync(u)).toBe(false);
    // A good prefix passes the flag checks and meets the missing Redis.
    const ok = cli(['worker', '--queue', noRedis, '--prefix', '{fp4kit}:team-a.1']);
    expect(ok.code).toBe(1);
    expect(ok.stderr).toMatch(/^fp4kit: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 /);
    const help = cli(['--help']);
    expect(help.stdout).toContain('[--shard i/n | --queue redis://host:port [--parts n] [--prefix p]]');
    expect(help.stdout).toContain('fp4kit worker --queue redis://host:port [--prefix p] ');
  });
});

describe('Ctrl-C', () => {
  let big = '';
  beforeAll(async () => {
    // Enough work on the js backend to be interrupted mid-run: 16 tensors of 1M elements.
    big = join(root, 'big');
    mkdirSync(big);
    const tensors = [];
    for (let i = 0; i < 16; i++) {
      const h = new Uint16Array(1024 * 1024);
      for (let j = 0; j < h.length; j++) h[j] = 0x3c00 + ((j * 2654435761 + i) >>> 22); // bf16 values in [2^-7, 2^-6)·k
      tensors.push({ name: `layers.${i}.proj.weight`, dtype: 'BF16', shape: [1024, 1024], data: new Uint8Array(h.buffer) });
    }
    await writeSafetensors(join(big, 'model.safetensors'), tensors);
  });

  it('SIGINT aborts, removes partial files, exits 130', async () => {
    const out = join(root, 'interrupted');
    const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', big, '-o', out, '--format', 'nvfp4', '--backend', 'js'], { cwd: repo });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Interrupt once the first tensor is done (a temporary file exists by then).
      if (!sent && /\b([1-9]|1[0-4])\/16 tensors/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted; no output file was left under its final name/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).filter((n) => n.startsWith('interrupted.'))).toEqual([]);
  });
});

describe('what quantize and inspect print, on odd runs and readers (from an audit of their output)', () => {
  it('a run with --no-error-stats says the errors were not measured (it printed "worst relative RMSE 0.000e+0"); --plot says why it has nothing to plot', () => {
    const out = join(root, 'no-stats');
    const r = cli(['quantize', tiny, '-o', out, '--format', 'nvfp4', '--no-error-stats']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('  error statistics not measured (--no-error-stats)\n');
    expect(r.stdout).not.toContain('worst relative RMSE');
    const p = cli(['inspect', out, '--plot', join(root, 'no-stats-plots')]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain('\nelement error histogram: absent (the run had --no-error-stats)\n');
    expect(p.stdout).toMatch(/^tensor +format +shape +bits\/el +rel RMSE +max \|err\|$/m); // no histogram columns
    expect(p.stderr).toContain('plots: nothing to plot (no quantized tensor has error statistics (the run had --no-error-stats) and none is fgmp)');
    expect(existsSync(join(root, 'no-stats-plots'))).toBe(false); // no empty folder left behind
    for (const bad of ['0x1', '0b1', ' 1 ', '1_0']) {
      const f = cli(['quantize', tiny, '-o', join(root, 'u'), '--format', 'fgmp', '--fp4-fraction', bad]);
      expect(f.code, bad).toBe(2);
      expect(f.stderr).toContain(`--fp4-fraction: invalid value ${JSON.stringify(bad)}`);
    }
  });

  it('inspect prints the per-element error histogram: the run\'s sparkline, exact share and bounds, each tensor\'s exact share, p99 and max bounds; an older summary without one still prints, saying so', () => {
    const out = join(root, 'histogram-text');
    expect(cli(['quantize', tiny, '-o', out, '--format', 'mxfp4']).code).toBe(0);
    const path = join(out, 'fp4kit-summary.json');
    type Tensor = { name: string; action: string; errorHistogram?: { firstBinade: number; counts: number[]; exact: number; infinite: number; nan: number; rmsBinade: number | null } };
    const summary = JSON.parse(readFileSync(path, 'utf8')) as { tensors: Tensor[]; errorHistogram?: unknown };
    const quantized = summary.tensors.filter((t) => t.action === 'quantized');
    // Every element's binade relative to its tensor's RMS, sorted (exact = -Infinity), worked out
    // here from the tensors' counts; a bound is the upper edge of the binade at nearest rank ⌈q·n⌉.
    const sorted = (ts: Tensor[]) => ts.flatMap((t) => {
      const h = t.errorHistogram!;
      return [...new Array<number>(h.exact).fill(-Infinity), ...h.counts.flatMap((n, i) => new Array<number>(n).fill(h.firstBinade + i - h.rmsBinade!))];
    }).sort((a, b) => a - b);
    const at = (all: number[], q: number) => all[Math.max(1, Math.ceil(q * all.length)) - 1];
    const upper = (b: number) => (b === -Infinity ? '0' : `2^${b + 1}`);
    const all = sorted(quantized);
    // A share as inspect writes it: one decimal, never rounded to 0 % or 100 % unless it is.
    const exactShare = (n: number, of: number) => (n === 0 ? '0 %' : n === of ? '100 %' : (100 * n) / of < 0.1 ? '<0.1 %' : (100 * n) / of > 99.9 ? '>99.9 %' : `${((100 * n) / of).toFixed(1)} %`);
    const exact = all.filter((b) => b === -Infinity).length;

    const r = cli(['inspect', out]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const head = lines.findIndex((l) => l.startsWith('element errors |x − Q(x)| / RMS of their tensor'));
    expect(head, r.stdout).toBeGreaterThan(0);
    expect(lines[head]).toContain(`${all.length} elements of ${quantized.length} tensors:`);
    // The sparkline spans the binades with counts, one column each, from the lowest edge to the highest.
    const finite = all.filter((b) => b > -Infinity);
    const spark = lines[head + 1].match(/^ {2}2\^(-?\d+) (.+) 2\^(-?\d+) {3}\(a column a binade, heights log count\)$/)!;
    expect(spark, lines[head + 1]).not.toBeNull();
    expect([Number(spark[1]), Number(spark[3])]).toEqual([finite[0], finite[finite.length - 1] + 1]);
    expect([...spark[2]]).toHaveLength(finite[finite.length - 1] - finite[0] + 1);
    expect(spark[2]).toContain('█');
    const phrase = (label: string, q: number) => (at(all, q) === -Infinity ? `${label} exact` : `${label} below ${upper(at(all, q))}`);
    expect(lines[head + 2]).toBe(`  exact ${exactShare(exact, all.length)}; ${phrase('50 %', 0.5)}, ${phrase('99 %', 0.99)}, ${phrase('99.9 %', 0.999)}, ${phrase('all', 1)}`);
    // Per tensor: the exact share and the bounds of its 99th percentile and its largest error.
    const header = lines.find((l) => l.startsWith('tensor '))!;
    expect(header).toMatch(/rel RMSE +max \|err\| +exact +p99 < +max <$/);
    for (const t of quantized) {
      const mine = sorted([t]);
      const h = t.errorHistogram!;
      const share = exactShare(h.exact, mine.length).replace(' ', '');
      const row = lines.find((l) => l.startsWith(`${t.name} `))!;
      expect(row.trimEnd().split(/\s+/).slice(-3), t.name).toEqual([share, upper(at(mine, 0.99)), upper(at(mine, 1))]);
    }
    expect(lines.filter((l) => / (bf16|f32|f16) /.test(l) && l.startsWith('model.')).every((l) => /-\s+-\s+-$/.test(l))).toBe(true); // copied: no histogram

    // The summary of an fp4kit from before the histograms: the table as it printed then, and a line saying there is none.
    for (const t of summary.tensors) delete t.errorHistogram;
    delete summary.errorHistogram;
    writeFileSync(path, JSON.stringify(summary));
    const old = cli(['inspect', out]);
    expect(old.code, old.stderr).toBe(0);
    expect(old.stdout).toContain('\nelement error histogram: absent (this summary was written by an fp4kit from before per-element histograms)\ntensor ');
    expect(old.stdout).toMatch(/^tensor +format +shape +bits\/el +rel RMSE +max \|err\|$/m);
    expect(old.stdout).toMatch(/^model\.layers\.0\.mlp\.down_proj\.weight +mxfp4 +\[128, 384\] +4\.25\d +\d\.\d{3}e-\d +\d\.\d{3}e-\d$/m);

    // A damaged histogram is refused naming the summary and the tensor.
    (summary.tensors.find((t) => t.action === 'quantized') as Tensor).errorHistogram = { firstBinade: -3, counts: [-1], exact: 0, infinite: 0, nan: 0, rmsBinade: 0 };
    writeFileSync(path, JSON.stringify(summary));
    const bad = cli(['inspect', out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/fp4kit-summary\.json: tensor "model\.[^"]+": errorHistogram is not/);
  });

  it('inspect --plot refuses a summary whose FGMP shape does not match the stored mask (it drew a wrong map, or looped over 2^53 rows without heeding Ctrl-C)', () => {
    const out = join(root, 'shape-vs-mask');
    expect(cli(['quantize', tiny, '-o', out, '--format', 'fgmp']).code).toBe(0);
    const path = join(out, 'fp4kit-summary.json');
    const summary = JSON.parse(readFileSync(path, 'utf8'));
    const t = summary.tensors.find((x: { format?: string }) => x.format === 'fgmp');
    const histogram = t.errorHistogram;
    for (const shape of [[2 ** 53 - 1, 256], [], [t.shape[0], t.shape[1] * 16]]) {
      t.shape = shape;
      // With its error histogram the summary is refused by the histogram's count first; without one
      // (a summary of an fp4kit from before them), by the stored mask.
      for (const withHistogram of [true, false]) {
        t.errorHistogram = withHistogram ? histogram : undefined;
        writeFileSync(path, JSON.stringify(summary));
        const r = cli(['inspect', out, '--plot', join(root, 'shape-vs-mask-plots')]);
        expect(r.code, JSON.stringify(shape)).toBe(1);
        expect(r.stderr).toContain(withHistogram
          ? `fp4kit-summary.json: tensor ${JSON.stringify(t.name)}: errorHistogram counts `
          : `fp4kit-summary.json: tensor ${t.name}: shape [${shape.join(', ')}] does not match its stored mask`);
      }
    }
  });

  it('a reader that closes stdout early (| head) ends the command quietly, not with an EPIPE stack trace', async () => {
    const dir = join(root, 'many-tensors');
    mkdirSync(dir);
    // More than a pipe holds (64 KiB) of inspect output: 3000 stored tensors.
    await writeSafetensors(join(dir, 'model.safetensors'), Array.from({ length: 3000 }, (_, i) => ({ name: `model.layers.${i}.norm.weight`, dtype: 'F32', shape: [4], data: new Uint8Array(16) })));
    const r = spawnSync('sh', ['-c', '"$@" | head -1', 'sh', process.execPath, '--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'inspect', dir], {
      cwd: repo, encoding: 'utf8', timeout: 120_000,
    });
    expect(r.stdout.split('\n')[0]).toMatch(/many-tensors: 1 file\(s\), 3000 stored tensors/);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|node:events/);
  });
});
