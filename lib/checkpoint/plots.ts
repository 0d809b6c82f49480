// Small self-contained SVG plots for reports: line charts (loss curves), a horizontal bar chart on a log axis (error per
// tensor) and a precision map (FGMP's FP4/FP8 choice per block, downsampled to shades of grey).
// No dependency: the output is plain SVG text any browser or image viewer opens.

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

/** Bars of positive values on a log10 axis, one row per bar, largest first. */
export function logBarChart(title: string, axisLabel: string, bars: Bar[]): string {
  const rows = bars.filter((b) => b.value > 0 && Number.isFinite(b.value)).sort((a, b) => b.value - a.value);
  const labelWidth = Math.min(420, 12 + 6.5 * Math.max(8, ...rows.map((b) => b.label.length)));
  const plotWidth = 420;
  const rowHeight = 16;
  const top = 40;
  const height = top + rows.length * rowHeight + 50;
  const width = labelWidth + plotWidth + 30;
  const lo = Math.floor(Math.log10(Math.min(...rows.map((b) => b.value), 1)));
  const hi = Math.ceil(Math.log10(Math.max(...rows.map((b) => b.value), 1e-300)));
  const span = Math.max(1, hi - lo);
  const x = (v: number) => labelWidth + ((Math.log10(v) - lo) / span) * plotWidth;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  ];
  for (let d = lo; d <= hi; d++) {
    const gx = x(10 ** d);
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + rows.length * rowHeight}" stroke="#ddd"/>`);
    out.push(`<text x="${gx}" y="${top + rows.length * rowHeight + 14}" text-anchor="middle">1e${d}</text>`);
  }
  rows.forEach((b, i) => {
    const y = top + i * rowHeight;
    out.push(`<text x="${labelWidth - 6}" y="${y + 11}" text-anchor="end">${escapeXml(b.label)}</text>`);
    out.push(`<rect x="${labelWidth}" y="${y + 2}" width="${Math.max(1, x(b.value) - labelWidth)}" height="${rowHeight - 4}" fill="#4878a8"><title>${escapeXml(`${b.label}: ${b.value.toExponential(3)}`)}</title></rect>`);
  });
  out.push(`<text x="${labelWidth + plotWidth / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(axisLabel)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/**
 * FGMP precision map: one cell per block (rows × blocks per row, bit set = FP8), averaged down to
 * at most `maxCells` per side; white = all FP4, black = all FP8.
 */
export function precisionMap(title: string, mask: Uint8Array, rows: number, blocksPerRow: number, maxCells = 256): string {
  const ry = Math.max(1, Math.ceil(rows / maxCells));
  const rx = Math.max(1, Math.ceil(blocksPerRow / maxCells));
  const h = Math.ceil(rows / ry);
  const w = Math.ceil(blocksPerRow / rx);
  const cell = Math.max(1, Math.min(8, Math.floor(512 / Math.max(h, w))));
  const top = 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(w * cell + 20, 560)}" height="${h * cell + top + 30}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="13">${escapeXml(title)}</text>`,
  ];
  let fp8Total = 0;
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
      const shade = Math.round(255 * (1 - fp8 / Math.max(1, n)));
      if (shade < 255) out.push(`<rect x="${10 + cx * cell}" y="${top + cy * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},${shade})"/>`);
    }
  }
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
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
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
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => [...s.points.map((p) => p[1]), ...(s.band ?? []).flatMap((b) => [b[1], b[2]])]).filter(Number.isFinite);
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  let [y0, y1] = o.yRange ?? [ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 0.5, y0 + 0.5];
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
      if (Number.isFinite(y)) run.push(`${f(px(x))},${f(py(y))}`);
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
