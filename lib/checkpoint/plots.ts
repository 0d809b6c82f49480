// Small self-contained SVG plots for reports: a horizontal bar chart on a log axis (error per
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
