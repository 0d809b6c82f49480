// Small self-contained SVG plots for reports: line charts (loss curves), a horizontal bar chart on a log axis (error per
// tensor), a histogram on a log axis (how many tensors have each error), a histogram of counts by
// binade (how many elements have each error) and a precision map (FGMP's FP4/FP8 choice per block,
// downsampled to shades of grey).
// No dependency: the output is plain SVG text any browser or image viewer opens (a precision map
// holds its cells as one embedded greyscale PNG, gray-png.ts).

import { grayPng } from './gray-png.js';

function escapeXml(s: string): string {
  // Characters XML cannot hold at all (control characters, lone surrogates) become U+FFFD, so a
  // tensor named with one still gives a valid SVG.
  const xmlSafe = s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  return xmlSafe.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export interface Bar {
  label: string;
  value: number;
}

/** A label cut to `max` characters in the middle (both ends of a tensor name say the most). */
function shortLabel(label: string, max: number): string {
  if (label.length <= max) return label;
  const head = Math.ceil((max - 1) / 2);
  return `${label.slice(0, head)}…${label.slice(label.length - (max - 1 - head))}`;
}

/** Whether a value has a place on a log axis. */
const onLogAxis = (v: number) => v > 0 && Number.isFinite(v);

/** [min, max] of `values`, or `empty` when there are none. A loop, not Math.min(...values): a
 *  spread of 10^5 values overflows the stack. */
function extent(values: readonly number[], empty: [number, number]): [number, number] {
  if (values.length === 0) return empty;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
}

/** Bars of positive values on a log10 axis, one row per bar, largest first; a value of 0 ("exact")
 *  or not a number (NaN: the tensor holds NaN or Inf) gets a row of its own, in words, at the end. */
export function logBarChart(title: string, axisLabel: string, bars: Bar[]): string {
  const positive = bars.filter((b) => onLogAxis(b.value)).sort((a, b) => b.value - a.value);
  const exact = bars.filter((b) => b.value === 0);
  const notNumbers = bars.filter((b) => !Number.isFinite(b.value));
  const rows = [...positive, ...exact, ...notNumbers];
  const maxLabel = 64;
  let longest = 8;
  for (const b of rows) longest = Math.max(longest, Math.min(maxLabel, b.label.length));
  const [min, max] = extent(positive.map((b) => b.value), [Infinity, 0]);
  const labelWidth = 12 + 6.5 * longest;
  const plotWidth = 420;
  const rowHeight = 16;
  const top = 40;
  const plotHeight = Math.max(1, rows.length) * rowHeight;
  const height = top + plotHeight + 50;
  const width = labelWidth + plotWidth + 30;
  const lo = positive.length > 0 ? Math.floor(Math.log10(Math.min(min, 1))) : -3;
  const hi = positive.length > 0 ? Math.ceil(Math.log10(max)) : 0;
  const span = Math.max(1, hi - lo);
  const x = (v: number) => labelWidth + ((Math.log10(v) - lo) / span) * plotWidth;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  ];
  for (let d = lo; d <= hi; d++) {
    const gx = x(10 ** d);
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + plotHeight}" stroke="#ddd"/>`);
    // Decades above the rows as well as below: a long chart is read from its top.
    out.push(`<text x="${gx}" y="${top - 8}" text-anchor="middle">1e${d}</text>`);
    out.push(`<text x="${gx}" y="${top + plotHeight + 14}" text-anchor="middle">1e${d}</text>`);
  }
  if (rows.length === 0) out.push(`<text x="${labelWidth + 6}" y="${top + 11}">no value to plot</text>`);
  rows.forEach((b, i) => {
    const y = top + i * rowHeight;
    out.push(`<text x="${labelWidth - 6}" y="${y + 11}" text-anchor="end">${escapeXml(shortLabel(b.label, maxLabel))}<title>${escapeXml(b.label)}</title></text>`);
    if (onLogAxis(b.value)) {
      out.push(`<rect x="${labelWidth}" y="${y + 2}" width="${Math.max(1, x(b.value) - labelWidth)}" height="${rowHeight - 4}" fill="#4878a8"><title>${escapeXml(`${b.label}: ${b.value.toExponential(3)}`)}</title></rect>`);
    } else if (b.value === 0) {
      out.push(`<text x="${labelWidth + 4}" y="${y + 11}" fill="#2a7a2a">0 (exact)</text>`);
    } else {
      out.push(`<text x="${labelWidth + 4}" y="${y + 11}" fill="#c0392b">${escapeXml(String(b.value))} (the tensor holds NaN or Inf)</text>`);
    }
  });
  out.push(`<text x="${labelWidth + plotWidth / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(axisLabel)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** A histogram of positive values on a log10 axis (`binsPerDecade` bins a decade): how many
 *  tensors have each error, readable for a model of thousands of tensors where one bar per tensor
 *  is not. Zero and not-a-number values are counted in the caption. */
export function logHistogram(title: string, axisLabel: string, values: number[], binsPerDecade = 4): string {
  const positive = values.filter(onLogAxis);
  const zeros = values.filter((v) => v === 0).length;
  const notNumbers = values.length - positive.length - zeros;
  const [min, max] = extent(positive, [Infinity, 0]);
  const lo = positive.length > 0 ? Math.floor(Math.log10(min)) : -3;
  const hi = positive.length > 0 ? Math.max(lo + 1, Math.ceil(Math.log10(max))) : 0;
  const bins = new Array<number>((hi - lo) * binsPerDecade).fill(0);
  for (const v of positive) {
    bins[Math.min(bins.length - 1, Math.max(0, Math.floor((Math.log10(v) - lo) * binsPerDecade)))]++;
  }
  const tallest = bins.reduce((a, b) => Math.max(a, b), 1);
  const [left, top, plotW, plotH] = [50, 36, 480, 220];
  const width = left + plotW + 20;
  const height = top + plotH + 60;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  ];
  const barW = plotW / bins.length;
  bins.forEach((n, k) => {
    const h = (n / tallest) * plotH;
    if (n > 0) out.push(`<rect x="${(left + k * barW).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${Math.max(1, barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#4878a8"><title>${n} in [1e${(lo + k / binsPerDecade).toFixed(2)}, 1e${(lo + (k + 1) / binsPerDecade).toFixed(2)})</title></rect>`);
  });
  for (let d = lo; d <= hi; d++) {
    const gx = left + (d - lo) * binsPerDecade * barW;
    out.push(`<line x1="${gx}" y1="${top + plotH}" x2="${gx}" y2="${top + plotH + 4}" stroke="#444"/>`);
    out.push(`<text x="${gx}" y="${top + plotH + 16}" text-anchor="middle">1e${d}</text>`);
  }
  out.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#444"/>`);
  out.push(`<text x="${left - 6}" y="${top + 10}" text-anchor="end">${tallest}</text>`);
  out.push(`<text x="${left - 6}" y="${top + plotH}" text-anchor="end">0</text>`);
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">${escapeXml(axisLabel)}</text>`);
  const notes = [`${values.length} tensors`, ...(zeros > 0 ? [`${zeros} exact (0, not shown)`] : []), ...(notNumbers > 0 ? [`${notNumbers} NaN (NaN or Inf in the tensor, not shown)`] : [])];
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 52}" text-anchor="middle"${notNumbers > 0 ? ' fill="#c0392b"' : ''}>${escapeXml(notes.join('; '))}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/**
 * A histogram of counts by binade: bar i counts the values in [2^(firstBinade + i), 2^(firstBinade + i + 1)),
 * on a log10 count axis (an error histogram's tails are thousands of times lower than its peak,
 * and a bar of 1 still shows), each bar's count and share of `total` in its tooltip. `notes` go
 * in the caption (what the bars leave out), in red when `alarm`.
 */
export function logBinadeHistogram(title: string, axisLabel: string, firstBinade: number, counts: readonly number[], notes: string[], alarm = false): string {
  const total = counts.reduce((a, b) => a + b, 0);
  let smallest = Infinity;
  let largest = 0;
  for (const n of counts) {
    if (n > 0) smallest = Math.min(smallest, n);
    largest = Math.max(largest, n);
  }
  // Decades of the count axis: from one below the smallest count (a bar of 1 is a decade tall)
  // to the one above the largest.
  const lo = largest > 0 ? Math.floor(Math.log10(smallest)) - 1 : 0;
  const hi = largest > 0 ? Math.max(lo + 1, Math.ceil(Math.log10(largest))) : 1;
  const bins = Math.max(1, counts.length);
  const [left, top, plotW, plotH] = [60, 36, Math.max(480, Math.min(1200, 12 * bins)), 220];
  const width = left + plotW + 20;
  const height = top + plotH + 66;
  const barW = plotW / bins;
  const y = (n: number) => top + plotH - ((Math.log10(n) - lo) / (hi - lo)) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  ];
  for (let d = lo; d <= hi; d++) {
    out.push(`<line x1="${left}" y1="${y(10 ** d).toFixed(1)}" x2="${left + plotW}" y2="${y(10 ** d).toFixed(1)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${left - 6}" y="${(y(10 ** d) + 4).toFixed(1)}" text-anchor="end">1e${d}</text>`);
  }
  if (total === 0) out.push(`<text x="${left + 6}" y="${top + plotH / 2}">no finite nonzero error to plot</text>`);
  counts.forEach((n, i) => {
    if (n === 0) return;
    const b = firstBinade + i;
    const h = top + plotH - y(n);
    out.push(`<rect x="${(left + i * barW).toFixed(1)}" y="${y(n).toFixed(1)}" width="${Math.max(1, barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#4878a8"><title>${n} (${((100 * n) / total).toPrecision(3)} %) in [2^${b}, 2^${b + 1})</title></rect>`);
  });
  // A label every few bins, at least 44 px apart (a label such as 2^-126 is about 36 px wide).
  const every = Math.max(1, Math.ceil(44 / barW));
  for (let i = 0; i < counts.length; i += every) {
    const gx = left + i * barW;
    out.push(`<line x1="${gx.toFixed(1)}" y1="${top + plotH}" x2="${gx.toFixed(1)}" y2="${top + plotH + 4}" stroke="#444"/>`);
    out.push(`<text x="${gx.toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">2^${firstBinade + i}</text>`);
  }
  out.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#444"/>`);
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">${escapeXml(axisLabel)}</text>`);
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 54}" text-anchor="middle"${alarm ? ' fill="#c0392b"' : ''}>${escapeXml(notes.join('; '))}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/**
 * FGMP precision map: one cell per block (rows × blocks per row, bit set = FP8), averaged down to
 * at most `maxCells` per side; white = all FP4, black = all FP8.
 */
export function precisionMap(title: string, mask: Uint8Array, rows: number, blocksPerRow: number, maxCells = 256): string {
  if (!(Number.isSafeInteger(rows) && rows > 0 && Number.isSafeInteger(blocksPerRow) && blocksPerRow > 0) || mask.length * 8 < rows * blocksPerRow) {
    throw new RangeError(`precisionMap: ${rows} rows × ${blocksPerRow} blocks do not fit a mask of ${mask.length} bytes`);
  }
  const ry = Math.max(1, Math.ceil(rows / maxCells));
  const rx = Math.max(1, Math.ceil(blocksPerRow / maxCells));
  const h = Math.ceil(rows / ry);
  const w = Math.ceil(blocksPerRow / rx);
  const cell = Math.max(1, Math.min(8, Math.floor(512 / Math.max(h, w))));
  const top = 30;
  // Wide enough for the title and the caption (about 6.5 px a character at these sizes).
  const svgWidth = Math.max(w * cell + 20, 20 + 7.5 * title.length, 760);
  const svgHeight = h * cell + top + 30;
  const out: string[] = [
    // xlink:href, which every SVG reader takes (SVG 2's plain href is newer).
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${svgWidth}" height="${svgHeight}" viewBox="0 0 ${svgWidth} ${svgHeight}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="13">${escapeXml(title)}</text>`,
  ];
  let fp8Total = 0;
  const shades = new Uint8Array(w * h);
  for (let cy = 0; cy < h; cy++) {
    for (let cx = 0; cx < w; cx++) {
      let fp8 = 0;
      let n = 0;
      for (let r = cy * ry; r < Math.min(rows, (cy + 1) * ry); r++) {
        for (let b = cx * rx; b < Math.min(blocksPerRow, (cx + 1) * rx); b++) {
          const i = r * blocksPerRow + b;
          fp8 += (mask[i >> 3] >> (i & 7)) & 1;
          n++;
        }
      }
      fp8Total += fp8;
      shades[cy * w + cx] = Math.round(255 * (1 - fp8 / Math.max(1, n)));
    }
  }
  // One greyscale image of the cells, drawn without smoothing (a cell per pixel, scaled up).
  const png = grayPng(w, h, shades).toString('base64');
  out.push(`<image x="10" y="${top}" width="${w * cell}" height="${h * cell}" preserveAspectRatio="none" style="image-rendering:pixelated" xlink:href="data:image/png;base64,${png}"/>`);
  out.push(`<rect x="10" y="${top}" width="${w * cell}" height="${h * cell}" fill="none" stroke="#888"/>`);
  const blocks = rows * blocksPerRow;
  out.push(`<text x="10" y="${top + h * cell + 18}">rows ↓ × blocks of 16 →; black = FP8, white = FP4; FP8 ${(100 * fp8Total / Math.max(1, blocks)).toFixed(1)} % of ${blocks} blocks${ry > 1 || rx > 1 ? ` (cells average ${ry}×${rx} blocks)` : ''}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

export interface LineSeries {
  label: string;
  /** CSS colour of the line and its band. */
  color: string;
  /** [x, y] in increasing x; non-finite y values break the line (a diverged run stops). */
  points: [number, number][];
  /** Optional shaded band [x, low, high] around the line (e.g. mean ± standard error). */
  band?: [number, number, number][];
  /** SVG stroke-dasharray of the line (e.g. '5,3'); solid when absent. */
  dash?: string;
}

export interface LineChartOptions {
  xLabel: string;
  yLabel: string;
  /** The y range shown; values outside are clipped to the plot area. Default: the data's. */
  yRange?: [number, number];
  width?: number;
  height?: number;
}

/** "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `count` of them. */
function ticks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return Number.isFinite(lo) ? [lo] : [];
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  // Bounded: a range of a few ulps has a step that no longer moves v.
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length <= 4 * count + 2; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Lines on linear axes with a legend: loss curves and the like. */
export function lineChart(title: string, series: LineSeries[], o: LineChartOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 400;
  const left = 60;
  const right = 20;
  const top = 36;
  const bottom = 46;
  const legendHeight = 16 * series.length + 8;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  // Points with a non-finite x are left out (there is nowhere to draw them).
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).filter(Number.isFinite);
  const ys = series.flatMap((s) => [...s.points.map((p) => p[1]), ...(s.band ?? []).flatMap((b) => [b[1], b[2]])]).filter(Number.isFinite);
  const [x0, x1] = extent(xs, [0, 1]);
  let [y0, y1] = o.yRange ?? extent(ys, [0, 1]);
  // An empty or almost empty range (a constant series, values a few ulps apart) is widened.
  if (!(y1 - y0 > 1e-9 * Math.max(Math.abs(y0), Math.abs(y1)))) [y0, y1] = [y0 - 0.5 * Math.max(1, Math.abs(y0) * 0.01), y0 + 0.5 * Math.max(1, Math.abs(y0) * 0.01)];
  const spanX = x1 > x0 ? x1 - x0 : 1;
  const px = (x: number) => left + ((x - x0) / spanX) * plotW;
  const py = (y: number) => top + (1 - (Math.min(y1, Math.max(y0, y)) - y0) / (y1 - y0)) * plotH;
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + legendHeight}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
    `<clipPath id="plot-area"><rect x="${left}" y="${top}" width="${plotW}" height="${plotH}"/></clipPath>`,
  ];
  for (const v of ticks(y0, y1, 6)) {
    out.push(`<line x1="${left}" y1="${f(py(v))}" x2="${left + plotW}" y2="${f(py(v))}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${left - 6}" y="${f(py(v) + 4)}" text-anchor="end">${v}</text>`);
  }
  for (const v of ticks(x0, x1, 8)) {
    out.push(`<line x1="${f(px(v))}" y1="${top}" x2="${f(px(v))}" y2="${top + plotH}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${f(px(v))}" y="${top + plotH + 14}" text-anchor="middle">${v}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  for (const s of series) {
    const color = escapeXml(s.color);
    if (s.band?.length) {
      const fin = s.band.filter((b) => Number.isFinite(b[1]) && Number.isFinite(b[2]));
      const path = [...fin.map((b) => `${f(px(b[0]))},${f(py(b[2]))}`), ...fin.reverse().map((b) => `${f(px(b[0]))},${f(py(b[1]))}`)];
      if (path.length) out.push(`<polygon points="${path.join(' ')}" fill="${color}" fill-opacity="0.18" stroke="none" clip-path="url(#plot-area)"/>`);
    }
    // One polyline per finite run of points.
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) out.push(`<polyline points="${run.join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : ''} clip-path="url(#plot-area)"/>`);
      else if (run.length === 1) out.push(`<circle cx="${run[0].split(',')[0]}" cy="${run[0].split(',')[1]}" r="2" fill="${color}"/>`);
      run = [];
    };
    for (const [x, y] of s.points) {
      if (Number.isFinite(y) && Number.isFinite(x)) run.push(`${f(px(x))},${f(py(y))}`);
      else flush();
    }
    flush();
  }
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 32}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  out.push(`<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const y = height + 4 + 16 * i;
    out.push(`<line x1="${left}" y1="${y}" x2="${left + 24}" y2="${y}" stroke="${escapeXml(s.color)}" stroke-width="2"${s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : ''}/>`);
    out.push(`<text x="${left + 30}" y="${y + 4}">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
