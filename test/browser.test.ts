// The browser entry in a real browser: Debian's Chromium, headless, driven by playwright-core,
// loads a page bundled with esbuild from lib/browser.ts and the shipped .wasm, and must produce
// the bytes the pure-TypeScript reference produces in Node for every format and rounding mode —
// on both builds of the module (lib/kernels/wasm-builds.ts): Chromium runs relaxed SIMD, so this is
// where fp4kit-relaxed.wasm's kernels are checked (Node 20 cannot run them).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { encode, matmul, quantize, quantizeGradient, setBackend } from '../lib/index.js';
import { browserCases, type BrowserResult } from './browser/cases.js';
import { MATMUL_CASES, caseName, referenceOutputs } from './browser/matmul-cases.js';
import { haveChromium, launchChromium, serveFiles, type Site, type SiteFiles } from './helpers/headless-browser.js';

const BUILD_WASM = join(process.cwd(), 'build-wasm');

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
      // The same page under a Content-Security-Policy that allows scripts but not WebAssembly.
      '/csp/': [join(dir, 'index.html'), 'text/html', { 'content-security-policy': "script-src 'self'" }],
      // Where initWasm's default URL points from /page.js (lib/browser.ts: ../../build-wasm/).
      '/build-wasm/fp4kit.wasm': [join(BUILD_WASM, 'fp4kit.wasm'), 'application/wasm'],
      '/build-wasm/fp4kit-relaxed.wasm': [join(BUILD_WASM, 'fp4kit-relaxed.wasm'), 'application/wasm'],
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

  async function openPage(initScript?: () => void) {
    const page = await browser.newPage();
    if (initScript) await page.addInitScript(initScript);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(origin + '/');
    await page.waitForFunction(() => typeof (window as unknown as { runChecks?: unknown }).runChecks === 'function');
    return { page, errors };
  }

  it('initWasm says why it failed: a page whose Content-Security-Policy forbids WebAssembly, a fetch that fails, a 404', async () => {
    const csp = await browser.newPage();
    await csp.goto(origin + '/csp/');
    await csp.waitForFunction(() => typeof (window as unknown as { initWasmOutcome?: unknown }).initWasmOutcome === 'function');
    const disallowed = "this page may not compile WebAssembly (is there a Content-Security-Policy without 'wasm-unsafe-eval'?); the js backend stays in use";
    expect(await csp.evaluate(() => window.initWasmOutcome(undefined, 'auto'))).toBe(`Error: initWasm: ${disallowed}`);
    expect(await csp.evaluate(() => window.initWasmOutcome(undefined, 'relaxed'))).toBe(`Error: initWasm: options.build: ${disallowed}`);
    expect(await csp.evaluate(() => window.relaxedSimdWorks())).toBe(false);
    await csp.close();
    const { page, errors } = await openPage();
    const unreachable = 'http://127.0.0.1:9/fp4kit.wasm';
    expect(await page.evaluate((u) => window.initWasmOutcome(u, 'auto'), unreachable)).toBe(`Error: initWasm: fetching ${unreachable} failed: Failed to fetch`);
    expect(await page.evaluate(() => window.initWasmOutcome('/missing.wasm', 'auto'))).toBe('Error: initWasm: fetching /missing.wasm failed: HTTP 404');
    expect(await page.evaluate(() => window.initWasmOutcome(undefined, 'simd128'))).toBe('ok wasm');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('runs relaxed SIMD as specified (the probe), so both builds are checked below', async () => {
    const { page, errors } = await openPage();
    expect(await page.evaluate(() => window.relaxedSimdWorks())).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('matmulAsync and quantizeAsync (with an AbortSignal) work in the page, on js and on wasm, with the bytes of their synchronous twins', async () => {
    const { page, errors } = await openPage();
    const got = await page.evaluate(() => window.runAsyncChecks());
    await page.close();
    expect(errors).toEqual([]);
    expect(got).toEqual({ jsBackend: 'js', jsMatmul: true, jsQuantize: true, abort: 'stop', matmulAbort: 'stop', wasmBackend: 'wasm', wasmMatmul: true, wasmQuantize: true });
  }, 120_000);

  it('a page whose polyfill defines a `process` without `env` runs the same (it threw a TypeError before initWasm)', async () => {
    const { page, errors } = await openPage(() => { (window as unknown as { process: object }).process = { browser: true }; });
    const got = await page.evaluate(() => window.runAsyncChecks());
    await page.close();
    expect(errors).toEqual([]);
    expect(got).toEqual({ jsBackend: 'js', jsMatmul: true, jsQuantize: true, abort: 'stop', matmulAbort: 'stop', wasmBackend: 'wasm', wasmMatmul: true, wasmQuantize: true });
  }, 120_000);

  it.each([
    ['simd128', 'simd128'],
    ['relaxed', 'relaxed-simd'],
    ['auto', 'relaxed-simd'],
  ] as const)('quantizes, encodes and multiplies with the bytes of the js reference (build %s)', async (build, simd) => {
    const { page, errors } = await openPage();
    const got = (await page.evaluate((b) => window.runChecks(b), build)) as BrowserResult;
    await page.close();
    expect(errors).toEqual([]);
    expect(got.backend).toEqual({ name: 'wasm', simd, matmulSimd: simd });
    expect(got.available.find((b) => b.name === 'native')?.available).toBe(false);
    setBackend('js');
    const want = browserCases({ quantize, encode, matmul, quantizeGradient }, { name: 'wasm', simd }, []);
    expect(Object.keys(got.outputs).sort()).toEqual(Object.keys(want.outputs).sort());
    for (const key of Object.keys(want.outputs)) expect(got.outputs[key], key).toBe(want.outputs[key]);
  }, 120_000);

  it.each([
    ['fp4kit.wasm', 'simd128'],
    ['fp4kit-relaxed.wasm', 'relaxed-simd'],
  ])('%s: FP4 × INT8 products on its kernels give the reference bytes (rows 1–13 and 601 in two chunks, odd shapes, FGMP FP8 lanes, extreme codes)', async (file, simd) => {
    const { page, errors } = await openPage();
    const got = await page.evaluate((url) => window.runMatmulCases(url), `/build-wasm/${file}`);
    await page.close();
    expect(errors).toEqual([]);
    expect(got.matmulSimd).toBe(simd);
    const want = referenceOutputs();
    expect(Object.keys(got.outputs)).toEqual(MATMUL_CASES.map(caseName));
    for (const key of Object.keys(want)) expect(got.outputs[key], key).toBe(want[key]);
  }, 120_000);
});
