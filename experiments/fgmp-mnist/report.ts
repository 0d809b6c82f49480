// The write-up of run.ts's results: the markdown tables of docs/fgmp-mnist.md and the
// hand-written SVG plot docs/fgmp-mnist.svg (test loss and KL vs FP4 fraction).

import { mean, pairedDifference, rowsOf, type ExperimentResult, type Row } from './experiment.js';

const f5 = (x: number) => x.toFixed(5);
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
const sd = (xs: number[]) => { const m = mean(xs); return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1)); };

function find(result: ExperimentResult, config: string): Row {
  const r = result.rows.find((x) => x.config === config);
  if (!r) throw new Error(`no row ${config}`);
  return r;
}

/** The full table of one experiment (one trained model). */
export function mainTable(result: ExperimentResult): string {
  const fp32 = find(result, 'fp32');
  const lines = [
    '| configuration | FP4 blocks | bits/element | test loss | Δ loss vs FP32 (± paired s.e.) | accuracy | KL(FP32 ‖ quantized) | g_test·Δw | ½ΣF_test·Δw² | FP4 share per layer |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const line = (label: string, rows: Row[]) => {
    const r = rows[0];
    const loss = rows.length > 1 ? `${f5(mean(rows.map((x) => x.loss)))} ± ${f5(sd(rows.map((x) => x.loss)))}` : f5(r.loss);
    const d = rows.map((x) => pairedDifference(x.losses, fp32.losses));
    const delta = rows.length > 1 ? `${(mean(d.map((x) => x.mean)) >= 0 ? '+' : '')}${f5(mean(d.map((x) => x.mean)))} (mean of ${rows.length})`
      : `${d[0].mean >= 0 ? '+' : ''}${f5(d[0].mean)} ± ${f5(d[0].se)}`;
    const acc = rows.length > 1 ? pct(mean(rows.map((x) => x.accuracy))) : pct(r.accuracy);
    const kl = rows.length > 1 ? `${mean(rows.map((x) => x.kl)).toExponential(2)}` : r.kl.toExponential(2);
    const avg = (k: 'firstOrder' | 'secondOrder') => mean(rows.map((x) => x[k]));
    const fo = `${avg('firstOrder') >= 0 ? '+' : ''}${avg('firstOrder').toFixed(5)}`;
    const so = avg('secondOrder').toFixed(5);
    const layers = r.layerFp4.map((v) => v.toFixed(2)).join(' / ');
    lines.push(`| ${label} | ${pct(r.fp4Fraction)} | ${r.bits.toFixed(3)} | ${loss} | ${delta} | ${acc} | ${kl} | ${fo} | ${so} | ${rows.length > 1 ? '≈ uniform' : layers} |`);
  };
  line('FP32 (trained model)', [fp32]);
  line('MXFP8 E4M3 (`mxfp8_e4m3`)', [find(result, 'mxfp8_e4m3')]);
  line('**all-FP8**: FGMP, p = 0 (E4M3, per-tensor scale)', [find(result, 'fgmp all-FP8 (p=0)')]);
  line('**all-NVFP4** (`nvfp4`, absmax scales)', [find(result, 'nvfp4')]);
  line('all-FP4: FGMP, p = 1 (NVFP4 + Fisher-weighted clipping)', [find(result, 'fgmp all-FP4 (p=1)')]);
  line('all-FP4: no-Fisher, p = 1 (NVFP4 + plain-error clipping)', [find(result, 'noFisher all-FP4 (p=1)')]);
  for (const p of result.options.fractions) {
    line(`**FGMP** ${p} (empirical Fisher)`, rowsOf(result, 'fgmp', p));
    const tf = rowsOf(result, 'fgmp', p, 'true');
    if (tf.length) line(`FGMP ${p} (true Fisher)`, tf);
    line(`no-Fisher ${p} (F = 1)`, rowsOf(result, 'noFisher', p));
    line(`random ${p} (${result.options.randomSeeds.length} seeds, mean ± sd)`, rowsOf(result, 'random', p));
    const ab1 = rowsOf(result, 'fgmpNoClip', p);
    if (ab1.length) line(`ablation ${p}: Fisher selection, absmax FP4 scales`, ab1);
    const ab2 = rowsOf(result, 'noFisherClipF', p);
    if (ab2.length) line(`ablation ${p}: plain-error selection, Fisher clipping`, ab2);
  }
  return lines.join('\n');
}

/** Weights and activations quantized (W+A): one trained model. */
export function mainTableWA(result: ExperimentResult): string {
  const fp32 = find(result, 'fp32');
  const lines = [
    '| configuration | FP4 weight blocks | FP4 activation blocks (test) | test loss | Δ loss vs FP32 (± paired s.e.) | accuracy | KL(FP32 ‖ quantized) |',
    '|---|---|---|---|---|---|---|',
  ];
  const line = (label: string, rows: Row[]) => {
    const d = rows.map((x) => pairedDifference(x.losses, fp32.losses));
    const m = mean(d.map((x) => x.mean));
    const loss = rows.length > 1 ? `${f5(mean(rows.map((x) => x.loss)))} ± ${f5(sd(rows.map((x) => x.loss)))}` : f5(rows[0].loss);
    const delta = rows.length > 1 ? `${m >= 0 ? '+' : ''}${f5(m)} (mean of ${rows.length})` : `${m >= 0 ? '+' : ''}${f5(m)} ± ${f5(d[0].se)}`;
    lines.push(`| ${label} | ${pct(mean(rows.map((x) => x.fp4Fraction)))} | ${pct(mean(rows.map((x) => x.activationFp4 ?? 0)))} | ${loss} | ${delta} | ${pct(mean(rows.map((x) => x.accuracy)))} | ${mean(rows.map((x) => x.kl)).toExponential(2)} |`);
  };
  line('MXFP8 E4M3 weights and activations', [find(result, 'W+A mxfp8_e4m3')]);
  line('**all-FP8**: FGMP, p = 0', [find(result, 'W+A fgmp all-FP8 (p=0)')]);
  line('**all-NVFP4** weights and activations', [find(result, 'W+A nvfp4')]);
  for (const p of result.options.fractions) {
    line(`**FGMP** ${p}`, rowsOf(result, 'fgmp', p, 'empirical', 'W+A'));
    line(`no-Fisher ${p} (F = 1)`, rowsOf(result, 'noFisher', p, 'empirical', 'W+A'));
    line(`random ${p} (${result.options.randomSeeds.length} seeds, mean ± sd)`, rowsOf(result, 'random', p, 'empirical', 'W+A'));
  }
  return lines.join('\n');
}

/** FGMP against the baselines at each fraction, for every trained model. */
export function seedTable(results: ExperimentResult[], target: 'W' | 'W+A' = 'W'): string {
  const lines = target === 'W' ? [
    '| model seed | p | FGMP loss | no-Fisher loss | FGMP − no-Fisher (± s.e.) | random loss (mean) | FGMP < random (seeds) | FGMP KL | no-Fisher KL | random KL (mean) | FGMP (true F) loss | g_test·Δw FGMP / no-Fisher | ½ΣF_test·Δw² FGMP / no-Fisher |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ] : [
    '| model seed | p | FGMP loss | no-Fisher loss | FGMP − no-Fisher (± s.e.) | random loss (mean) | FGMP < random (seeds) | FGMP KL | no-Fisher KL | random KL (mean) | FP4 activation blocks FGMP / no-Fisher / random |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    for (const p of r.options.fractions) {
      const g = rowsOf(r, 'fgmp', p, 'empirical', target)[0];
      const n = rowsOf(r, 'noFisher', p, 'empirical', target)[0];
      const rs = rowsOf(r, 'random', p, 'empirical', target);
      const d = pairedDifference(g.losses, n.losses);
      const common = `| ${r.options.modelSeed} | ${p} | ${f5(g.loss)} | ${f5(n.loss)} | ${d.mean >= 0 ? '+' : ''}${f5(d.mean)} ± ${f5(d.se)} | ${f5(mean(rs.map((x) => x.loss)))} | ${rs.filter((x) => g.loss < x.loss).length}/${rs.length} | ${g.kl.toExponential(2)} | ${n.kl.toExponential(2)} | ${mean(rs.map((x) => x.kl)).toExponential(2)} |`;
      if (target === 'W') {
        const tf = rowsOf(r, 'fgmp', p, 'true')[0];
        lines.push(`${common} ${tf ? f5(tf.loss) : '–'} | ${g.firstOrder.toFixed(5)} / ${n.firstOrder.toFixed(5)} | ${g.secondOrder.toFixed(5)} / ${n.secondOrder.toFixed(5)} |`);
      } else {
        lines.push(`${common} ${pct(g.activationFp4!)} / ${pct(n.activationFp4!)} / ${pct(mean(rs.map((x) => x.activationFp4!)))} |`);
      }
    }
  }
  return lines.join('\n');
}

/** Mean over trained models of a per-model difference, with its standard error across models. */
export function acrossModels(values: number[]): { mean: number; se: number } {
  return { mean: mean(values), se: values.length > 1 ? sd(values) / Math.sqrt(values.length) : NaN };
}

/** FGMP against both baselines, over every trained model, at each fraction. */
export function verdictTable(results: ExperimentResult[], target: 'W' | 'W+A'): string {
  const lines = [
    '| p | FGMP loss < no-Fisher (models) | FGMP − no-Fisher, mean over models ± s.e. | FGMP loss < random mean (models) | FGMP − random, mean over models ± s.e. | FGMP KL < no-Fisher | FGMP KL < random |',
    '|---|---|---|---|---|---|---|',
  ];
  const fmt = (x: { mean: number; se: number }) => `${x.mean >= 0 ? '+' : ''}${f5(x.mean)} ± ${f5(x.se)}`;
  for (const p of results[0].options.fractions) {
    const g = results.map((r) => rowsOf(r, 'fgmp', p, 'empirical', target)[0]);
    const n = results.map((r) => rowsOf(r, 'noFisher', p, 'empirical', target)[0]);
    const rnd = results.map((r) => rowsOf(r, 'random', p, 'empirical', target));
    const rLoss = rnd.map((rs) => mean(rs.map((x) => x.loss)));
    const rKl = rnd.map((rs) => mean(rs.map((x) => x.kl)));
    const m = results.length;
    const count = (f: (i: number) => boolean) => `${results.filter((_, i) => f(i)).length}/${m}`;
    lines.push(`| ${p} | ${count((i) => g[i].loss < n[i].loss)} | ${fmt(acrossModels(g.map((x, i) => x.loss - n[i].loss)))} | ${count((i) => g[i].loss < rLoss[i])} | ${fmt(acrossModels(g.map((x, i) => x.loss - rLoss[i])))} | ${count((i) => g[i].kl < n[i].kl)} | ${count((i) => g[i].kl < rKl[i])} |`);
  }
  return lines.join('\n');
}

// ---- SVG ----

interface Series { label: string; color: string; dash?: string; points: { x: number; y: number; lo?: number; hi?: number }[] }

function panel(
  ox: number, oy: number, w: number, h: number, title: string, yLabel: string,
  series: Series[], refs: { label: string; y: number; color: string }[], yFmt: (v: number) => string,
): string {
  const ys = [...series.flatMap((s) => s.points.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y])), ...refs.map((r) => r.y)];
  let yMin = Math.min(...ys);
  let yMax = Math.max(...ys);
  const pad = (yMax - yMin) * 0.08 || 1e-6;
  yMin -= pad;
  yMax += pad;
  const X = (x: number) => ox + ((x - 0.4) / 0.6) * w;
  const Y = (y: number) => oy + h - ((y - yMin) / (yMax - yMin)) * h;
  const out: string[] = [];
  out.push(`<rect x="${ox}" y="${oy}" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${ox + w / 2}" y="${oy - 10}" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`);
  for (const x of [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]) {
    out.push(`<line x1="${X(x)}" y1="${oy + h}" x2="${X(x)}" y2="${oy + h + 5}" stroke="#333"/>`);
    out.push(`<text x="${X(x)}" y="${oy + h + 18}" text-anchor="middle" font-size="11">${Math.round(x * 100)} %</text>`);
  }
  out.push(`<text x="${ox + w / 2}" y="${oy + h + 38}" text-anchor="middle" font-size="12">fraction of blocks in FP4 (target)</text>`);
  for (let k = 0; k <= 5; k++) {
    const v = yMin + ((yMax - yMin) * k) / 5;
    out.push(`<line x1="${ox - 5}" y1="${Y(v)}" x2="${ox}" y2="${Y(v)}" stroke="#333"/>`);
    out.push(`<line x1="${ox}" y1="${Y(v)}" x2="${ox + w}" y2="${Y(v)}" stroke="#eee"/>`);
    out.push(`<text x="${ox - 8}" y="${Y(v) + 4}" text-anchor="end" font-size="10">${yFmt(v)}</text>`);
  }
  out.push(`<text x="${ox - 62}" y="${oy + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${ox - 62} ${oy + h / 2})">${yLabel}</text>`);
  for (const r of refs) {
    out.push(`<line x1="${ox}" y1="${Y(r.y)}" x2="${ox + w}" y2="${Y(r.y)}" stroke="${r.color}" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${ox + 4}" y="${Y(r.y) - 4}" font-size="10" fill="${r.color}">${r.label}</text>`);
  }
  for (const s of series) {
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    for (const p of s.points) {
      if (p.lo !== undefined && p.hi !== undefined) out.push(`<line x1="${X(p.x)}" y1="${Y(p.lo)}" x2="${X(p.x)}" y2="${Y(p.hi)}" stroke="${s.color}"/>`);
      out.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
    }
  }
  return out.join('\n');
}

/** Test loss and KL against the FP4 fraction, averaged over the trained models (bars: ± s.e. across models). */
export function plot(results: ExperimentResult[], target: 'W' | 'W+A'): string {
  const ps = results[0].options.fractions;
  const point = (p: number, perModel: number[]) => {
    const a = acrossModels(perModel);
    return { x: p, y: a.mean, lo: a.mean - (a.se || 0), hi: a.mean + (a.se || 0) };
  };
  // The loss panel shows each model's loss increase over its own FP32 loss, so the bars show the
  // spread of that increase, not the spread of the models' base losses.
  const value = (r: ExperimentResult, row: Row, metric: 'loss' | 'kl') => (metric === 'loss' ? row.loss - find(r, 'fp32').loss : row.kl);
  const series = (metric: 'loss' | 'kl'): Series[] => [
    { label: 'FGMP (empirical Fisher)', color: '#d62728', points: ps.map((p) => point(p, results.map((r) => value(r, rowsOf(r, 'fgmp', p, 'empirical', target)[0], metric)))) },
    { label: 'no-Fisher (F = 1)', color: '#1f77b4', dash: '5 3', points: ps.map((p) => point(p, results.map((r) => value(r, rowsOf(r, 'noFisher', p, 'empirical', target)[0], metric)))) },
    { label: 'random blocks', color: '#7f7f7f', dash: '2 3', points: ps.map((p) => point(p, results.map((r) => mean(rowsOf(r, 'random', p, 'empirical', target).map((x) => value(r, x, metric)))))) },
  ];
  const ref = (config: string, metric: 'loss' | 'kl') => mean(results.map((r) => value(r, find(r, config), metric)));
  const fp8 = target === 'W' ? 'fgmp all-FP8 (p=0)' : 'W+A fgmp all-FP8 (p=0)';
  const nv = target === 'W' ? 'nvfp4' : 'W+A nvfp4';
  const refs = (metric: 'loss' | 'kl') => [
    { label: 'all-FP8 (E4M3)', y: ref(fp8, metric), color: '#2ca02c' },
    { label: 'all-NVFP4', y: ref(nv, metric), color: '#9467bd' },
    ...(metric === 'loss' ? [{ label: 'FP32', y: ref('fp32', 'loss'), color: '#000' }] : []),
  ];
  const what = target === 'W' ? 'weights' : 'weights + activations';
  const m = results.length;
  const W = 980;
  const H = 440;
  const legend = series('loss').map((s, i) =>
    `<line x1="${40 + i * 235}" y1="${H - 22}" x2="${70 + i * 235}" y2="${H - 22}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>` +
    `<text x="${76 + i * 235}" y="${H - 18}" font-size="12">${s.label}</text>`).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    panel(90, 40, 360, 300, `Test loss increase, ${what} (mean of ${m} models)`, 'test loss − FP32 test loss', series('loss'), refs('loss'), (v) => v.toFixed(4)),
    panel(580, 40, 360, 300, `KL(FP32 ‖ quantized), ${what}`, 'mean KL (nats)', series('kl'), refs('kl'), (v) => v.toExponential(1)),
    legend,
    '</svg>',
  ].join('\n');
}
