// The SVG plots of `fp4kit inspect --plot` and the experiment reports (lib/checkpoint/plots.ts)
// on degenerate data: every plot is well-formed and finite, and none hangs or overflows the stack.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { lineChart, logBarChart, logBinadeHistogram, logHistogram, precisionMap } from '../lib/checkpoint/plots.js';
import { embeddedGrayPng } from './helpers/svg-png.js';

const python = process.env.PYTHON ?? 'python3';
/** Parses as XML (when Python is here) and holds no NaN, Infinity or undefined. */
function wellFormed(svg: string): void {
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  const r = spawnSync(python, ['-c', 'import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.read())'], { input: svg, encoding: 'utf8' });
  if (r.error === undefined) expect(r.status, r.stderr).toBe(0);
}

describe('logBarChart (errors.svg)', () => {
  it('shows an exact tensor (0) and a NaN one in words instead of leaving them out', () => {
    const svg = logBarChart('t', 'x', [{ label: 'a', value: 0.1 }, { label: 'zero', value: 0 }, { label: 'nan', value: NaN }]);
    expect(svg).toContain('>0 (exact)<');
    expect(svg).toContain('NaN (the tensor holds NaN or Inf)');
    expect(svg.match(/fill="#4878a8"/g)).toHaveLength(1);
    expect(svg.replace(/NaN \(the tensor holds NaN or Inf\)|<title>nan<\/title>/g, '')).not.toMatch(/NaN/);
    const empty = logBarChart('t', 'x', []);
    expect(empty).toContain('no value to plot');
    wellFormed(empty);
  });

  it('200 000 bars and labels of 300 characters: no stack overflow, labels cut in the middle with the full name as a tooltip', () => {
    const bars = Array.from({ length: 200_000 }, (_, i) => ({ label: `t${i}`, value: 1e-3 * (1 + (i % 97)) }));
    expect(() => logBarChart('t', 'x', bars)).not.toThrow();
    const long = `model.${'x'.repeat(300)}.weight`;
    const svg = logBarChart('t', 'x', [{ label: long, value: 0.01 }]);
    expect(svg).toContain(`<title>${long}</title>`);
    expect(svg).toMatch(/>model\.x+…x+\.weight</);
    wellFormed(svg);
  });
});

describe('logHistogram (error-histogram.svg)', () => {
  it('counts values per quarter decade and names the exact and NaN ones in its caption', () => {
    const svg = logHistogram('t', 'x', [0.011, 0.012, 0.09, 0.1, 0, NaN]);
    wellFormed(svg.replace('NaN (NaN or Inf in the tensor, not shown)', ''));
    expect(svg).toContain('6 tensors; 1 exact (0, not shown); 1 NaN (NaN or Inf in the tensor, not shown)');
    const counts = [...svg.matchAll(/<title>(\d+) in \[/g)].map((m) => Number(m[1]));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(Math.max(...counts)).toBe(2); // 0.011 and 0.012 share a bin
    wellFormed(logHistogram('t', 'x', []));
  });
});

describe('logBinadeHistogram (element-error-histogram.svg)', () => {
  it('one bar per binade with a count, its count and share in the tooltip, heights on a log axis; the notes in the caption', () => {
    const svg = logBinadeHistogram('t', 'x', -5, [1, 0, 1000, 10], ['2 NaN'], true);
    wellFormed(svg.replace('2 NaN', ''));
    const bars = [...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="#4878a8"><title>(\d+) \(([\d.]+) %\) in \[2\^(-?\d+), 2\^(-?\d+)\)<\/title>/g)];
    expect(bars.map((m) => [Number(m[3]), Number(m[5]), Number(m[6])])).toEqual([[1, -5, -4], [1000, -3, -2], [10, -2, -1]]);
    expect(bars.map((m) => m[4])).toEqual(['0.0989', '98.9', '0.989']); // of 1011
    // Log heights: a bar of 1 is a decade tall, 10 two, 1000 four.
    const [one, thousand, ten] = bars.map((m) => Number(m[2]));
    expect(thousand / one).toBeCloseTo(4, 1);
    expect(ten / one).toBeCloseTo(2, 1);
    expect(svg).toMatch(/fill="#c0392b">2 NaN</);
    expect(svg).toContain('>2^-5<');
  });

  it('nothing to count, and 278 binades (every one a difference can have), stay well-formed and bounded', () => {
    const empty = logBinadeHistogram('t', 'x', 0, [], ['0 elements']);
    wellFormed(empty);
    expect(empty).toContain('no finite nonzero error to plot');
    const all = logBinadeHistogram('t', 'x', -149, Array.from({ length: 278 }, (_v, i) => 1 + i * 1e6), []);
    wellFormed(all);
    expect(all.match(/fill="#4878a8"/g)).toHaveLength(278);
    // Labels every few bins, never on top of each other.
    const labels = [...all.matchAll(/<text x="([\d.]+)" y="[\d.]+" text-anchor="middle">2\^-?\d+</g)].map((m) => Number(m[1]));
    expect(labels.length).toBeGreaterThan(10);
    for (let i = 1; i < labels.length; i++) expect(labels[i] - labels[i - 1]).toBeGreaterThanOrEqual(44);
    expect(Number(/width="([\d.]+)"/.exec(all)![1])).toBeLessThanOrEqual(1300);
  });
});

describe('lineChart (loss curves)', () => {
  it('an almost constant series (a few ulps apart) and a non-finite x draw finite coordinates and end', () => {
    const svg = lineChart('t', [{ label: 'a', color: 'red', points: [[0, 0.3], [1, 0.30000000000000004], [Infinity, 0.3]] }], { xLabel: 'x', yLabel: 'y' });
    wellFormed(svg);
    expect(svg.match(/<text[^>]*text-anchor="end">/g)!.length).toBeLessThan(40); // a bounded number of ticks
  });
});

describe('precisionMap', () => {
  it('refuses a shape that does not fit its mask instead of drawing a wrong map or looping over 2^53 rows', () => {
    const mask = new Uint8Array(8);
    expect(() => precisionMap('t', mask, 2 ** 53 - 1, 16)).toThrow(RangeError);
    expect(() => precisionMap('t', mask, 64, 16)).toThrow('precisionMap: 64 rows × 16 blocks do not fit a mask of 8 bytes');
    expect(() => precisionMap('t', mask, 0, 16)).toThrow(RangeError);
    const svg = precisionMap(`FGMP precision map: ${'m'.repeat(120)}`, mask.fill(0x0f), 4, 16);
    wellFormed(svg);
    const width = Number(/width="([\d.]+)"/.exec(svg)![1]);
    expect(width).toBeGreaterThanOrEqual(20 + 7.5 * 140); // the title fits
    expect(svg).toContain('FP8 50.0 % of 64 blocks');
    // One cell per block here: bits 0–3 of every mask byte set, so blocks 0–3 of each 8 are FP8 (black).
    const { width: w, height: h, pixels } = embeddedGrayPng(svg);
    expect([w, h]).toEqual([16, 4]);
    for (let i = 0; i < 64; i++) expect(pixels[i], `block ${i}`).toBe(i % 8 < 4 ? 0 : 255);
    // A 4096² weight's map (65 536 cells) is a few kilobytes, not one <rect> per cell (~4.5 MB).
    const big = new Uint8Array((4096 * 256) / 8).map((_, i) => (i * 37) & 0xff);
    expect(precisionMap('t', big, 4096, 256).length).toBeLessThan(200_000);
  });
});
