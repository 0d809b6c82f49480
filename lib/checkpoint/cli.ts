#!/usr/bin/env node
// The fp4kit command line: `fp4kit quantize` turns a safetensors checkpoint into a quantized one,
// `fp4kit inspect` shows what a checkpoint holds; `worker` and `merge` (and quantize's --shard and
// --queue) are the distributed mode of lib/checkpoint/cli-distributed.ts. Errors are one line, `fp4kit: <file>: <problem>`,
// exit code 1 (2 for usage errors, 130 after SIGINT, 143 after SIGTERM, 129 after SIGHUP).

import { existsSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setBackend, type BackendName } from '../index.js';
import { QUANT_FORMAT_NAMES } from '../core/formats.js';
import { quantizeCheckpoint, SUMMARY_NAME, type CheckpointOptions, type CheckpointProgress, type CheckpointSummary } from './quantize-checkpoint.js';
import { checkCheckpointOptions } from './checkpoint-options.js';
import { LAYOUT_NAMES, type LayoutName, type QuantFormat } from './layouts/index.js';
import { SafetensorsError } from './safetensors/header.js';
import { removeStagingSync } from './safetensors/output-folder.js';
import { makeFolders } from './safetensors/make-folders.js';
import { removeTempFilesSync, writeFileAtomic } from './safetensors/atomic-file.js';
import { readRegularTextFile } from './safetensors/regular-file.js';
import { closeCheckpoint, openCheckpoint, type CheckpointFiles } from './safetensors/checkpoint-files.js';
import { logBarChart, logHistogram, precisionMap } from './plots.js';
import { elementErrorHistogramPlot } from './error-histogram.js';
import { hasTensorHistograms, runErrorHistogramLines, tensorHistogramCells } from './error-histogram-text.js';
import { FlagError, QUEUE_DETACHED, parseDistributedFlags, quantizeDistributed, runMerge, runWorker } from './cli-distributed.js';
import { NotQueuedError } from './queue-url.js';
import { repeatedFlag } from './cli-flags.js';
import { packageVersion } from '../core/package-manifest.js';

const FORMATS: readonly QuantFormat[] = QUANT_FORMAT_NAMES;

const USAGE = `usage:
  fp4kit quantize <in> -o <out> --format <fmt> [--layout <layout>] [--fisher <file.safetensors> --fp4-fraction 0.7]
                  [--only <regex>] [--skip <regex>] [--rounding nearest|stochastic] [--seed n]
                  [--scale-rule floor|ceil] [--input-scale x] [--no-error-stats] [--json] [--backend native|wasm|js]
                  [--force]   (replace an output folder that is not an earlier fp4kit output)
                  [--shard i/n | --queue redis://host:port [--parts n] [--prefix p]]
  fp4kit worker --queue redis://host:port [--prefix p] [--lock-duration ms] [--stalled-interval ms] [--backend native|wasm|js]
  fp4kit merge <out> [--unlock] [--json]
  fp4kit inspect <dir|file> [--json] [--plot <dir>]
  fp4kit --version

distributed runs (docs/distributed.md, in the package's docs/ folder): every machine sees <in> and <out> at the same path;
  a worker takes only runs of its own fp4kit version; --prefix (BullMQ's key prefix, default bull) must be the same on the producer and its workers

formats: ${FORMATS.join(', ')}
layouts: ${LAYOUT_NAMES.join(', ')} (default fp4kit)`;

class UsageError extends Error {}

const FORCED_EXIT_MS = 5000;

/** The signals that stop a command, with the exit status a shell reports for each (128 + number). */
const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

/** Route every stop signal to `handler` until the returned function is called. */
function onStopSignals(handler: (signal: StopSignal) => void): () => void {
  const names = Object.keys(STOP_SIGNALS) as StopSignal[];
  const listener = (signal: NodeJS.Signals) => handler(signal as StopSignal);
  for (const name of names) process.on(name, listener);
  return () => {
    for (const name of names) process.off(name, listener);
  };
}

/** Text from a file (tensor names, summary fields) as a terminal shows it: control characters and
 *  bidirectional overrides become \u escapes, so a hostile name cannot move the cursor, recolour
 *  the terminal or reorder what is printed around it. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Print the error (and the usage, for a usage error) and exit once stderr has taken all of it: on a
 *  pipe, writes past its 64 KiB are queued, and process.exit() right away would drop them. */
function fail(message: string, code: number): Promise<never> {
  const text = `fp4kit: ${printable(message)}\n${code === 2 ? `${USAGE}\n` : ''}`;
  return new Promise<never>(() => {
    process.stderr.write(text, () => process.exit(code)); // called on EPIPE too (the reader went away)
  });
}

function human(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${v.toFixed(v >= 100 || u === 0 ? 0 : 1)} ${units[u]}`;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** A progress bar on a terminal; one line every few seconds otherwise. */
function progressPrinter(): { update: (p: CheckpointProgress) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  let lastPercent = -1;
  const line = (p: CheckpointProgress) => {
    // The whole run's reads: the shared-scale pass (when there is one) and then every tensor.
    const read = p.sharedScaleBytesDone + p.bytesDone;
    const total = p.sharedScaleBytesTotal + p.bytesTotal;
    const frac = total === 0 ? 1 : read / total;
    const rate = p.elapsedSeconds > 0 ? read / p.elapsedSeconds : 0;
    const eta = rate > 0 ? (total - read) / rate : Infinity;
    const what = p.phase === 'shared-scales'
      ? `shared scales: ${human(p.sharedScaleBytesDone)}/${human(p.sharedScaleBytesTotal)} of q/k/v, gate/up read`
      : `${human(p.bytesDone)}/${human(p.bytesTotal)}  ${p.tensorsDone}/${p.tensorCount} tensors`;
    return { frac, text: `${what}  ${human(rate)}/s  ETA ${duration(eta)}` };
  };
  return {
    update(p) {
      const { frac, text } = line(p);
      const now = Date.now();
      if (tty) {
        if (now - lastLine < 100 && p.tensorsDone !== p.tensorCount) return;
        lastLine = now;
        // Fitted to the terminal: a line that wraps leaves a row behind at every redraw (\r and
        // erase-line reach only the last row). The bar gives way first, then the text is cut.
        const columns = process.stderr.columns > 0 ? process.stderr.columns : 80;
        const percent = `${(frac * 100).toFixed(0).padStart(3)}%  `;
        const width = Math.max(0, Math.min(24, columns - 1 - percent.length - text.length - 1));
        const filled = Math.round(frac * width);
        const bar = width >= 8 ? `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ` : '';
        process.stderr.write(`\r\x1b[K${`${bar}${percent}${text}`.slice(0, columns - 1)}`);
      } else {
        const percent = Math.floor(frac * 10) * 10;
        if (percent === lastPercent && now - lastLine < 5000) return;
        lastPercent = percent;
        lastLine = now;
        process.stderr.write(`fp4kit: ${(frac * 100).toFixed(0)}%  ${text}\n`);
      }
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}

function printQuantizeSummary(s: CheckpointSummary): void {
  const q = s.tensors.filter((t) => t.action === 'quantized');
  const measured = q.filter((t) => t.relRmse !== undefined);
  // A NaN error (NaN or Inf weights) is the worst of all, and said so; unmeasured tensors say nothing.
  const worst = measured.reduce((a, t) => (Number.isNaN(a) || t.relRmse === null || Number.isNaN(t.relRmse!) ? NaN : Math.max(a, t.relRmse!)), 0);
  const elements = q.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const bits = elements === 0 ? 0 : q.reduce((a, t) => a + t.outputBytes * 8, 0) / elements;
  process.stdout.write(
    `${s.output}: ${q.length} tensors quantized to ${s.format} (${s.layout} layout, ${bits.toFixed(3)} bits/element), ${s.copied} copied\n` +
      `  ${human(s.inputBytes)} → ${human(s.outputBytes)} in ${s.seconds.toFixed(2)} s (${human(s.inputBytes / Math.max(s.seconds, 1e-9))}/s, ${s.backend} backend)\n` +
      (q.length === 0 ? ''
        : measured.length === 0 ? '  error statistics not measured (--no-error-stats)\n'
        : `  worst relative RMSE ${Number.isNaN(worst) ? 'NaN (a tensor holds NaN or Inf)' : worst.toExponential(3)}; per-tensor errors in ${join(s.output, SUMMARY_NAME)}\n`) +
      fisherCoverage(q) +
      (s.notCopied?.length ? `  not copied: ${s.notCopied.join(', ')} (the same weights in another format)\n` : ''),
  );
}

/** With --fisher, the tensors the file did not cover (chosen by plain squared error) are named. */
function fisherCoverage(q: CheckpointSummary['tensors']): string {
  const selected = q.filter((t) => t.fisherWeighted !== undefined); // the fgmp tensors of a --fisher run
  const unweighted = selected.filter((t) => !t.fisherWeighted);
  if (unweighted.length === 0) return '';
  return `  Fisher-weighted: ${selected.length - unweighted.length} of ${selected.length} tensors; the other ${unweighted.length} (e.g. ${printable(unweighted[0].name)}) have no Fisher tensor in the file and were chosen by plain squared error\n`;
}

async function runQuantize(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      tokens: true,
      options: {
        output: { type: 'string', short: 'o' },
        format: { type: 'string', short: 'f' },
        layout: { type: 'string', short: 'l' },
        fisher: { type: 'string' },
        'fp4-fraction': { type: 'string' },
        only: { type: 'string' },
        skip: { type: 'string' },
        rounding: { type: 'string' },
        seed: { type: 'string' },
        'scale-rule': { type: 'string' },
        'input-scale': { type: 'string' },
        'no-error-stats': { type: 'boolean' },
        json: { type: 'boolean' },
        backend: { type: 'string' },
        force: { type: 'boolean' },
        shard: { type: 'string' },
        queue: { type: 'string' },
        parts: { type: 'string' },
        prefix: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  givenOnce(parsed.tokens);
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'quantize needs an input checkpoint' : `quantize takes one input, got ${positionals.length}`);
  if (!v.output) throw new UsageError('quantize needs an output folder: -o <out>');
  if (!v.format) throw new UsageError('quantize needs --format');
  const number = (flag: string, s: string | undefined, ok: (x: number) => boolean): number | undefined => {
    if (s === undefined) return undefined;
    const x = Number(s);
    // Decimal notation only: Number() also takes '0x1', '0b1' and ' 1 '.
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) || !ok(x)) throw new UsageError(`${flag}: invalid value ${JSON.stringify(s)}`);
    return x;
  };
  // Strings as given: checkCheckpointOptions (strict) checks every value and whether it applies.
  const options: CheckpointOptions = {
    format: v.format as QuantFormat,
    layout: v.layout as LayoutName | undefined,
    fisher: v.fisher,
    fp4Fraction: number('--fp4-fraction', v['fp4-fraction'], (x) => x >= 0 && x <= 1),
    rounding: v.rounding as CheckpointOptions['rounding'],
    seed: number('--seed', v.seed, (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32),
    scaleRule: v['scale-rule'] as CheckpointOptions['scaleRule'],
    inputScale: number('--input-scale', v['input-scale'], (x) => x > 0 && Number.isFinite(x)),
    measureError: !v['no-error-stats'],
    overwrite: v.force === true,
  };
  for (const flag of ['only', 'skip'] as const) {
    const src = v[flag];
    if (src === undefined) continue;
    try {
      options[flag] = new RegExp(src);
    } catch (err) {
      throw new UsageError(`--${flag}: invalid regular expression (${(err as Error).message})`);
    }
  }
  try {
    checkCheckpointOptions('quantize', options, true); // a flag that does not apply to the format or layout is refused, not ignored
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (v.backend !== undefined) {
    if (!['native', 'wasm', 'js'].includes(v.backend)) throw new UsageError(`--backend: expected native, wasm or js`);
    setBackend(v.backend as BackendName);
  }
  let distributed;
  try {
    distributed = parseDistributedFlags(v);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  // One SIGINT, SIGTERM or SIGHUP stops the run: the work is aborted and the staging folder
  // removed. If that has not finished within FORCED_EXIT_MS (a file operation that does not
  // return), the staging folder is removed synchronously and the process exits anyway; a second
  // signal does the same at once. Exit status 130, 143 or 129, as a shell reports them.
  const controller = new AbortController();
  let exitCode = 130;
  const interrupted = (publishedAlready: boolean) => `fp4kit: ${v.output}: ${distributed?.queue ? QUEUE_DETACHED
    : `interrupted; ${publishedAlready ? 'the output had already been published whole' : 'no output file was left under its final name'}`}\n`;
  const leaveNow = () => {
    removeTempFilesSync();
    const published = removeStagingSync();
    process.stderr.write(interrupted(published.includes(resolve(v.output!))));
    process.exit(exitCode);
  };
  const stopListening = onStopSignals((signal) => {
    if (controller.signal.aborted) leaveNow();
    exitCode = STOP_SIGNALS[signal];
    controller.abort();
    setTimeout(leaveNow, FORCED_EXIT_MS).unref();
  });
  const progress = progressPrinter();
  try {
    const summary = distributed
      ? await quantizeDistributed(positionals[0], v.output, options, distributed, progress.update, controller.signal)
      : await quantizeCheckpoint(positionals[0], v.output, options, progress.update, controller.signal);
    progress.done();
    if (controller.signal.aborted) {
      // The signal came while the finished output was being published: it is complete.
      if (summary !== null) process.stderr.write(interrupted(true));
      return exitCode;
    }
    if (summary === null) return 0; // a --shard part; the merge comes later
    if (v.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else printQuantizeSummary(summary);
    return 0;
  } catch (err) {
    progress.done();
    if (controller.signal.aborted) {
      process.stderr.write(err instanceof NotQueuedError ? `fp4kit: ${v.output}: ${err.message}\n` : interrupted(false));
      return exitCode;
    }
    throw err;
  } finally {
    stopListening();
  }
}

/** Refuse a flag with a value given twice (cli-flags.ts). */
function givenOnce(tokens: Parameters<typeof repeatedFlag>[0]): void {
  const message = repeatedFlag(tokens);
  if (message !== null) throw new UsageError(message);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** A JSON side file of a checkpoint folder, or null when there is none. */
async function readJson(path: string): Promise<unknown> {
  const text = await readRegularTextFile(path);
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SafetensorsError(path, `not JSON (${(err as Error).message})`);
  }
}

/** --plot: the error of every quantized tensor, and a precision map of every FGMP tensor. */
async function writePlots(dir: string, checkpointDir: string, ckpt: CheckpointFiles, summary: CheckpointSummary | null): Promise<void> {
  const existed = existsSync(dir);
  await makeFolders(dir); // not Node's recursive mkdir, which spins under /proc
  // Plots beside the checkpoint's own files could replace one of them (a shard may have any name).
  const same = (a: string, b: string) => { const x = statSync(a); const y = statSync(b); return x.dev === y.dev && x.ino === y.ino; };
  if (same(dir, checkpointDir)) throw new SafetensorsError(dir, 'the plot folder is the checkpoint folder; give --plot a folder of its own');
  const written: string[] = [];
  const used = new Set<string>();
  const save = async (base: string, svg: string) => {
    // Tensor names that differ only in characters a file name cannot hold must not share a plot.
    let name = `${base}.svg`;
    for (let k = 2; used.has(name); k++) name = `${base}-${k}.svg`;
    used.add(name);
    const path = join(dir, name);
    await writeFileAtomic(path, svg);
    written.push(path);
  };
  const quantized = summary?.tensors.filter((t) => t.action === 'quantized' && t.relRmse !== undefined) ?? [];
  if (quantized.length > 0) {
    await save('errors', logBarChart(`relative RMSE per tensor (${summary!.format}, ${summary!.layout} layout)`, 'relative RMSE = ‖x − Q(x)‖ / ‖x‖', quantized.map((t) => ({ label: t.name, value: t.relRmse! }))));
    await save('error-histogram', logHistogram(`relative RMSE of ${quantized.length} tensors (${summary!.format}, ${summary!.layout} layout)`, 'relative RMSE = ‖x − Q(x)‖ / ‖x‖ (4 bins a decade)', quantized.map((t) => t.relRmse!)));
    // Every element's error relative to its tensor's RMS (absent from summaries of runs before it).
    let elements: string | null;
    try {
      elements = elementErrorHistogramPlot(summary!.format, summary!.layout, summary!.tensors);
    } catch (err) {
      if (err instanceof RangeError) throw new SafetensorsError(join(checkpointDir, SUMMARY_NAME), err.message);
      throw err;
    }
    if (elements !== null) await save('element-error-histogram', elements);
  }
  for (const t of summary?.tensors ?? []) {
    if (t.format !== 'fgmp' || t.action !== 'quantized') continue;
    const info = ckpt.shards.flatMap((s) => s.tensors.map((x) => ({ shard: s, x }))).find((e) => e.x.name === `${t.name}.mask`);
    if (!info) continue;
    // The summary's shape must describe the stored mask (one bit per block of 16 along the last
    // axis): a hand-edited shape would draw a wrong map, or ask for a map of 2^53 rows.
    const cols = t.shape[t.shape.length - 1] ?? 0;
    const rows = cols > 0 ? t.shape.reduce((a, b) => a * b, 1) / cols : 0;
    const blocks = rows * Math.ceil(cols / 16);
    const maskBytes = info.x.end - info.x.begin;
    if (t.shape.length < 2 || blocks === 0 || Math.ceil(blocks / 8) !== maskBytes) {
      throw new SafetensorsError(join(checkpointDir, SUMMARY_NAME), `tensor ${t.name}: shape [${t.shape.join(', ')}] does not match its stored mask (${maskBytes} bytes)`);
    }
    // a file name holds 255 bytes: long names are cut (save() keeps cut names apart)
    await save(`precision-${t.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 200)}`, precisionMap(`FGMP precision map: ${t.name}`, await info.shard.read(info.x), rows, Math.ceil(cols / 16)));
  }
  const why = summary === null ? 'no fp4kit summary in this folder'
    : !summary.tensors.some((t) => t.action === 'quantized') ? 'no tensor was quantized'
    : 'no quantized tensor has error statistics (the run had --no-error-stats) and none is fgmp';
  process.stderr.write(written.length > 0 ? `plots: ${written.join(', ')}\n` : `plots: nothing to plot (${why})\n`);
  if (written.length === 0 && !existed) rmdirSync(dir); // no empty folder left for nothing
}

async function runInspect(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, tokens: true, options: { json: { type: 'boolean' }, plot: { type: 'string' } } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  givenOnce(parsed.tokens);
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('inspect takes one checkpoint folder or file');
  const target = positionals[0];
  // inspect only reads, but --plot writes: a stop signal removes any plot still under its
  // temporary name (each plot is renamed into place whole) and exits at once.
  const stopListening = onStopSignals((signal) => {
    removeTempFilesSync();
    process.stderr.write(`fp4kit: ${target}: interrupted; no plot was left half-written\n`);
    process.exit(STOP_SIGNALS[signal]);
  });
  try {
    return await inspectCheckpoint(target, values);
  } finally {
    stopListening();
  }
}

async function inspectCheckpoint(target: string, values: { json?: boolean; plot?: string }): Promise<number> {
  const ckpt = await openCheckpoint(target);
  try {
    const dir = existsSync(target) && statSync(target).isDirectory() ? target : dirname(target);
    // Side files are read without ever blocking on a FIFO named like them (regular-file.ts).
    const summary = checkSummary(join(dir, SUMMARY_NAME), await readJson(join(dir, SUMMARY_NAME)));
    const config = (await readJson(join(dir, 'config.json'))) as { quantization_config?: unknown } | null;
    const quantConfig = config?.quantization_config ?? null;
    const stored = ckpt.shards.flatMap((s) => s.tensors.map((t) => ({ file: s.path, ...t, bytes: t.end - t.begin })));
    if (values.plot !== undefined) await writePlots(values.plot, dir, ckpt, summary);
    const totalBytes = stored.reduce((a, t) => a + t.bytes, 0);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ path: target, files: ckpt.shards.map((s) => s.path), totalBytes, quantizationConfig: quantConfig, summary, tensors: stored.map(({ name, dtype, shape, bytes }) => ({ name, dtype, shape, bytes })) }, null, 2)}\n`);
      return 0;
    }
    const out: string[] = [];
    out.push(`${target}: ${ckpt.shards.length} file(s), ${stored.length} stored tensors, ${human(totalBytes)}`);
    if (quantConfig && typeof quantConfig === 'object') {
      const qc = quantConfig as Record<string, unknown>;
      out.push(`quantization_config: quant_method=${String(qc.quant_method)}${qc.format ? ` format=${String(qc.format)}` : ''}${qc.quant_algo ? ` quant_algo=${String(qc.quant_algo)}` : ''}`);
    }
    if (summary) {
      out.push(`fp4kit summary: ${summary.format} in the ${summary.layout} layout, from ${summary.input} (${human(summary.inputBytes)} → ${human(summary.outputBytes)})`);
      // The per-element error histogram (absent from summaries of older runs and --no-error-stats
      // ones, which print as before with a line saying so); a damaged one names the summary.
      const histograms = hasTensorHistograms(summary.tensors);
      try {
        out.push(...runErrorHistogramLines(summary.format, summary.tensors));
        if (histograms) out.push('  per tensor: exact = share with x = Q(x); p99 < and max < bound its 99th-percentile and largest |x − Q(x)| / RMS');
      } catch (err) {
        if (err instanceof RangeError) throw new SafetensorsError(join(dir, SUMMARY_NAME), err.message);
        throw err;
      }
      // Names escaped before the columns are measured (an escape is wider than its character).
      const w = Math.min(60, summary.tensors.reduce((m, t) => Math.max(m, printable(t.name).length), 6));
      const histogramHeader = histograms ? `  ${pad('exact', 6)}  ${pad('p99 <', 7)}  max <` : '';
      out.push(`${pad('tensor', w)}  ${pad('format', 10)}  ${pad('shape', 16)}  ${pad('bits/el', 7)}  ${pad('rel RMSE', 10)}  ${histograms ? pad('max |err|', 10) : 'max |err|'}${histogramHeader}`);
      for (const t of summary.tensors) {
        const fmt = t.action === 'quantized' ? t.format! : t.dtype.toLowerCase();
        const bits = ((t.outputBytes * 8) / Math.max(1, t.shape.reduce((a, b) => a * b, 1))).toFixed(3);
        const err = t.relRmse !== undefined ? t.relRmse.toExponential(3) : '-';
        const maxErr = t.maxAbsError !== undefined ? t.maxAbsError.toExponential(3) : '-';
        const cells = histograms ? tensorHistogramCells(t) : null; // checked by runErrorHistogramLines above
        const histogramCells = cells ? `  ${pad(cells.exact, 6)}  ${pad(cells.p99, 7)}  ${cells.max}` : '';
        out.push(`${pad(printable(t.name), w)}  ${pad(fmt, 10)}  ${pad(`[${t.shape.join(', ')}]`, 16)}  ${pad(bits, 7)}  ${pad(err, 10)}  ${cells ? pad(maxErr, 10) : maxErr}${histogramCells}`);
      }
    } else {
      const w = Math.min(60, stored.reduce((m, t) => Math.max(m, printable(t.name).length), 6));
      out.push(`${pad('tensor', w)}  ${pad('dtype', 8)}  ${pad('shape', 16)}  bytes`);
      for (const t of stored) out.push(`${pad(printable(t.name), w)}  ${pad(t.dtype, 8)}  ${pad(`[${t.shape.join(', ')}]`, 16)}  ${t.bytes}`);
    }
    process.stdout.write(`${out.map(printable).join('\n')}\n`);
    return 0;
  } finally {
    await closeCheckpoint(ckpt);
  }
}

/** An fp4kit-summary.json as inspect and --plot use it, or a clear error when it is not one
 *  (a hand-edited or foreign file must not end in "Cannot read properties of undefined"). */
function checkSummary(path: string, json: unknown): CheckpointSummary | null {
  if (json === null) return null;
  const s = json as Partial<CheckpointSummary>;
  const bad = (why: string) => new SafetensorsError(path, `not an fp4kit summary: ${why}`);
  if (typeof json !== 'object' || Array.isArray(json) || s.tool !== 'fp4kit') throw bad('"tool" is not "fp4kit"');
  if (typeof s.format !== 'string' || typeof s.layout !== 'string') throw bad('"format" and "layout" must be strings');
  if (!Array.isArray(s.tensors)) throw bad('"tensors" is not a list');
  s.tensors.forEach((t: unknown, i) => {
    const e = t as Partial<CheckpointSummary['tensors'][number]> | null;
    const ok = e !== null && typeof e === 'object' && typeof e.name === 'string' && typeof e.dtype === 'string'
      && Array.isArray(e.shape) && e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)
      && (e.action === 'quantized' || e.action === 'copied') && typeof e.outputBytes === 'number'
      && (e.action === 'copied' || typeof e.format === 'string')
      && [e.relRmse, e.maxAbsError].every((v) => v === undefined || v === null || typeof v === 'number');
    if (!ok) throw bad(`tensors[${i}] is not { name, dtype, shape, action, format, outputBytes, … }`);
    // JSON has no NaN: an error that is not a number (a NaN or Inf weight) is written as null.
    if (e.relRmse === null) e.relRmse = NaN;
    if (e.maxAbsError === null) e.maxAbsError = NaN;
  });
  if (typeof s.input !== 'string' || ![s.inputBytes, s.outputBytes].every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
    throw bad('"input" must be a path and "inputBytes", "outputBytes" byte counts');
  }
  return s as CheckpointSummary;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) throw new UsageError('missing command');
    // `fp4kit quantize --help` as well as `fp4kit --help` (a file named --help is ./--help).
    if (command === '--help' || command === '-h' || command === 'help' || rest.some((a) => a === '--help' || a === '-h')) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (command === '--version' || command === '-v' || command === 'version') {
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    }
    if (command === 'quantize') return await runQuantize(rest);
    if (command === 'inspect') return await runInspect(rest);
    if (command === 'worker') return await runWorker(rest);
    if (command === 'merge') return await runMerge(rest, printQuantizeSummary);
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof FlagError) return await fail(err.message, 2);
    if (err instanceof SafetensorsError) return await fail(err.message, 1);
    const e = err as NodeJS.ErrnoException;
    if (e && e.code && e.path) return await fail(`${e.path}: ${e.code === 'ENOENT' ? 'no such file or folder' : e.code === 'EACCES' ? 'permission denied' : e.code === 'ENOSPC' ? 'no space left on device' : e.message}`, 1);
    return await fail(e instanceof Error ? e.message : String(e), 1);
  }
}

// A reader of stdout that goes away (`fp4kit inspect out | head`) ends the command quietly, as
// for any Unix filter, instead of an unhandled EPIPE: whatever the command was doing is done or
// published (a quantize publishes before it prints its summary).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

// A reader of stderr that goes away (`fp4kit quantize … 2>&1 | head -1`, a log collector that
// died) loses the progress and status lines, not the run: an unhandled EPIPE there crashed the
// run with its staging folder left beside the output. The run goes on without them; its result
// still goes to stdout (and the output folder).
process.stderr.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
  throw err;
});

let finished = false;
main(process.argv.slice(2)).then((code) => {
  // Let stdout drain before exiting (piped output).
  finished = true;
  process.exitCode = code;
});
// The event loop emptied while the command was still waiting on a promise that nothing will
// settle (a library's, e.g. a connection that never answers): that is a failure, not success.
process.on('beforeExit', () => {
  if (finished) return;
  process.stderr.write('fp4kit: stopped while still waiting (an operation that never completes); the command did not finish\n');
  process.exit(1);
});

