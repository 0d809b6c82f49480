// The browser entry in a real browser: Debian's Chromium, headless, driven by playwright-core,
// loads a page bundled with esbuild from lib/browser.ts and the shipped .wasm, and must produce
// the bytes the pure-TypeScript reference produces in Node for every format and rounding mode.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { encode, matmul, quantize, quantizeGradient, setBackend } from '../lib/index.js';
import { browserCases, type BrowserResult } from './browser/cases.js';
import { haveChromium, launchChromium, serveFiles, type Site, type SiteFiles } from './helpers/headless-browser.js';

const WASM = join(process.cwd(), 'build-wasm', 'fp4kit.wasm');

describe.runIf(haveChromium)('browser entry in headless Chromium (wasm backend)', () => {
  let dir: string;
  let site: Site | undefined;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fp4kit-browser-'));
    await build({ entryPoints: ['test/browser/page.ts'], bundle: true, format: 'esm', platform: 'browser', outfile: join(dir, 'page.js'), logLevel: 'silent' });
    await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>');
    const files: SiteFiles = {
      '/': [join(dir, 'index.html'), 'text/html'],
      '/page.js': [join(dir, 'page.js'), 'text/javascript'],
      '/fp4kit.wasm': [WASM, 'application/wasm'],
    };
    site = await serveFiles(files);
    origin = site.origin;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    site?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('quantizes, encodes and multiplies with the bytes of the js reference', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(origin + '/');
    await page.waitForFunction(() => typeof (window as unknown as { runChecks?: unknown }).runChecks === 'function');
    const got = (await page.evaluate(() => (window as unknown as { runChecks(): Promise<unknown> }).runChecks())) as BrowserResult;
    expect(errors).toEqual([]);
    expect(got.backend).toEqual({ name: 'wasm', simd: 'simd128', matmulSimd: 'simd128' });
    expect(got.available.find((b) => b.name === 'native')?.available).toBe(false);
    setBackend('js');
    const want = browserCases({ quantize, encode, matmul, quantizeGradient }, { name: 'wasm', simd: 'simd128' }, []);
    expect(Object.keys(got.outputs).sort()).toEqual(Object.keys(want.outputs).sort());
    for (const key of Object.keys(want.outputs)) expect(got.outputs[key], key).toBe(want.outputs[key]);
  }, 120_000);
});
