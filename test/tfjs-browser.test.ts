// The fp4kit TensorFlow.js backend in a real browser: Debian's Chromium, headless, driven by
// playwright-core, loads a page bundled with esbuild from tfjs's browser builds and fp4kit's tfjs
// browser entry (lib/tfjs/browser.ts), with tfjs-backend-wasm's and fp4kit's .wasm files served
// from one folder. A dense MLP and a small CNN (tfjs-layers, fixed weights and inputs) predict and
// take one Adam step under every FP4KIT_WEIGHTS mode; every output byte must equal what the same
// cases give in Node on the 'fp4kit' backend with fp4kit's wasm kernels, and with the native addon.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { build, type Metafile } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableBackends, getBackend as getFp4kitBackend, setBackend as setFp4kitBackend, type BackendName } from '../lib/index.js';
import { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND, readCounters } from '../lib/tfjs/index.js';
import type { WasmPaths } from '../lib/tfjs/browser.js';
import { runTfjsCases, TFJS_WEIGHT_MODES, type TfjsResult, type TfjsWeightMode } from './browser/tfjs-cases.js';
import { haveChromium, launchChromium, serveFiles, type Site, type SiteFiles } from './helpers/headless-browser.js';


const ROOT = process.cwd();
const TFJS_WASM_DIST = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const TFJS_WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/** The same cases in this process: tfjs's `backend`, fp4kit's kernels on `kernels`. */
async function nodeRun(kernels: BackendName, backend: string, modes: readonly TfjsWeightMode[] = TFJS_WEIGHT_MODES): Promise<TfjsResult> {
  setFp4kitBackend(kernels);
  expect(await tf.setBackend(backend)).toBe(true);
  const k = getFp4kitBackend();
  return runTfjsCases(readCounters, `${k.name}/${k.simd}`, modes);
}

/** Keys whose bytes differ (or are missing on one side). */
function differences(got: TfjsResult, want: TfjsResult): string[] {
  const keys = new Set([...Object.keys(got.outputs), ...Object.keys(want.outputs)]);
  return [...keys].filter((k) => got.outputs[k] !== want.outputs[k]).sort();
}

/**
 * fp4kit's modules (lib/*.ts or dist/lib/*.js) that must never reach a browser bundle: the addon
 * loader and the Node entries. (A node: import anywhere would fail the browser build itself.)
 */
const NODE_ONLY = /(^|\/)lib\/(kernels\/(native|node-backends)|index|tfjs\/index)\.[jt]s$/;

function fp4kitInputs(meta: Metafile): string[] {
  return Object.keys(meta.inputs).filter((p) => !p.includes('node_modules'));
}

describe('package.json "exports": fp4kit/tfjs for browsers and for Node (the built dist/)', () => {
  // Resolves the package by its own name (self-reference through "exports") as a bundler does;
  // tfjs stays external. dist/ is what `npm ci` / `npm run build:ts` built.
  async function bundleInputs(source: string, platform: 'browser' | 'node'): Promise<string[]> {
    expect(existsSync(join(ROOT, 'dist', 'lib', 'tfjs', 'browser.js')), 'dist/ is built (npm run build:ts)').toBe(true);
    const out = await build({
      stdin: { contents: source, resolveDir: ROOT, loader: 'js' }, bundle: true, write: false, metafile: true, format: 'esm',
      platform, external: ['@tensorflow/*'], logLevel: 'silent',
    });
    return fp4kitInputs(out.metafile);
  }

  it("import 'fp4kit/tfjs' takes the browser entry under the \"browser\" condition, without a Node-only module", async () => {
    for (const source of ["import 'fp4kit/tfjs';", "import 'fp4kit/tfjs/browser';"]) {
      const inputs = await bundleInputs(source, 'browser');
      expect(inputs, source).toContain('dist/lib/tfjs/browser.js');
      expect(inputs, source).toContain('dist/lib/browser.js');
      expect(inputs.filter((p) => NODE_ONLY.test(p)), source).toEqual([]);
    }
  });

  it("import 'fp4kit/tfjs' in Node is the Node entry (the addon loader), unchanged", async () => {
    const inputs = await bundleInputs("import 'fp4kit/tfjs';", 'node');
    expect(inputs).toContain('dist/lib/tfjs/index.js');
    expect(inputs).toContain('dist/lib/kernels/node-backends.js');
    expect(inputs).not.toContain('dist/lib/tfjs/browser.js');
  });
});

describe.runIf(haveChromium)('fp4kit/tfjs in headless Chromium: the same bytes as Node', () => {
  let dir: string;
  let site: Site | undefined;
  let browser: Browser;
  let origin: string;
  let bundleInputs: string[];
  const requests: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fp4kit-tfjs-browser-'));
    const out = await build({
      entryPoints: ['test/browser/tfjs-page.ts'], bundle: true, format: 'esm', platform: 'browser', outfile: join(dir, 'page.js'),
      metafile: true, logLevel: 'silent',
    });
    bundleInputs = Object.keys(out.metafile.inputs);
    await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>');
    const files: SiteFiles = {
      '/': [join(dir, 'index.html'), 'text/html'],
      '/page.js': [join(dir, 'page.js'), 'text/javascript'],
      '/wasm/fp4kit.wasm': [join(ROOT, 'build-wasm', 'fp4kit.wasm'), 'application/wasm'],
      '/wasm/fp4kit-relaxed.wasm': [join(ROOT, 'build-wasm', 'fp4kit-relaxed.wasm'), 'application/wasm'],
    };
    for (const f of TFJS_WASM_FILES) files[`/wasm/${f}`] = [join(TFJS_WASM_DIST, f), 'application/wasm'];
    site = await serveFiles(files, (url) => requests.push(url));
    origin = site.origin;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    site?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh page (fresh tfjs and fp4kit module state) running window.runTfjs. */
  async function inPage(paths: string | WasmPaths, backends: string[], modes: readonly TfjsWeightMode[] = TFJS_WEIGHT_MODES) {
    const page = await browser.newPage();
    const errors: string[] = [];
    const warnings: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
      if (m.type() === 'warning') warnings.push(m.text());
    });
    requests.length = 0;
    await page.goto(origin + '/');
    await page.waitForFunction(() => typeof window.runTfjs === 'function');
    const got = await page.evaluate(([p, b, m]) => window.runTfjs(p, b, m), [paths, backends, [...modes]] as const);
    const setWasmPathsErrors = await page.evaluate(() => window.setWasmPathsErrors());
    await page.close();
    return { ...got, setWasmPathsErrors, errors, warnings, requests: [...requests] };
  }

  it("the page's bundle holds fp4kit's browser modules only (no addon loader, no Node entry)", () => {
    const ours = bundleInputs.filter((p) => !p.includes('node_modules')).map((p) => relative(ROOT, join(ROOT, p)));
    expect(ours).toContain('lib/tfjs/browser.ts');
    expect(ours).toContain('lib/browser.ts');
    expect(ours.filter((p) => NODE_ONLY.test(p))).toEqual([]);
  });

  it('a dense MLP and a CNN predict and train one step with the bytes of Node (fp4kit wasm and native kernels), every weight mode', async () => {
    const got = await inPage('/wasm/', [FP4KIT_BACKEND]);
    expect(got.errors, got.requests.join(' ')).toEqual([]);
    expect(got.attempts).toEqual([{ name: FP4KIT_BACKEND, ok: true }]);
    // Both modules came from the folder given to setWasmPaths; tfjs chose its SIMD build (the page
    // is not cross-origin isolated, so no threads), the one Node's tfjs-backend-wasm runs too;
    // fp4kit its relaxed-SIMD build (Chromium runs relaxed SIMD), which Node 20 cannot run: the
    // bytes below are the other builds' and native's.
    expect(got.requests.filter((u) => u.endsWith('.wasm')).sort()).toEqual(['/wasm/fp4kit-relaxed.wasm', '/wasm/tfjs-backend-wasm-simd.wasm']);
    // Bad arguments are refused with the argument named; once fp4kit's module is loaded, a new
    // path for it is refused rather than silently ignored.
    expect(got.setWasmPathsErrors).toEqual([
      'TypeError: setWasmPaths: paths must be a folder URL (a string) or { tfjs?, fp4kit? }, got 42',
      'TypeError: setWasmPaths: paths must be a folder URL (a string) or { tfjs?, fp4kit? }, got null',
      'TypeError: setWasmPaths: paths must be a folder URL (a string) or { tfjs?, fp4kit? }, got an Array',
      'TypeError: setWasmPaths: paths must be a folder URL (a string) or { tfjs?, fp4kit? }, got Uint8Array',
      "RangeError: setWasmPaths: unknown key 'fp4' in paths; expected 'tfjs' and/or 'fp4kit'",
      'TypeError: setWasmPaths: paths.tfjs must be a folder URL (a string) or a map of file names to URLs, got 7',
      'TypeError: setWasmPaths: paths.fp4kit must be a URL (a string or URL) or the module\'s bytes, got an object',
      "Error: setWasmPaths: fp4kit's WebAssembly module is already loaded or loading; call setWasmPaths before tf.setBackend('fp4kit')",
    ]);
    const result = got.result!;
    expect(result.tfjsBackend).toBe(FP4KIT_BACKEND);
    expect(result.fp4kitKernels).toBe('wasm/relaxed-simd');
    expect(result.leakedTensors).toBe(0);
    // The products ran on fp4kit: quantized ones (the four quantizing modes) and float32 ones
    // ('none', and dW, which has no weight operand); and the mode changed what the models compute.
    expect(result.quantizedProducts).toBeGreaterThan(0);
    expect(result.floatProducts).toBeGreaterThan(0);
    for (const model of ['mlp', 'cnn']) {
      const predictions = new Set(TFJS_WEIGHT_MODES.map((mode) => result.outputs[`${model}/${mode}/predict`]));
      expect(predictions.size, model).toBe(TFJS_WEIGHT_MODES.length);
    }

    const kernels = availableBackends().filter((b) => b.available && b.name !== 'js').map((b) => b.name);
    expect(kernels).toContain('wasm');
    if (process.env.CI === 'true') expect(kernels).toContain('native');
    for (const name of kernels) {
      const want = await nodeRun(name, FP4KIT_BACKEND);
      expect(Object.keys(want.outputs).length).toBe(Object.keys(result.outputs).length);
      expect(differences(result, want), `browser vs Node with fp4kit's ${name} kernels`).toEqual([]);
    }
  });

  it("'fp4kit-cpu' (tfjs's cpu base) in the browser gives the bytes of Node's 'fp4kit-cpu', every weight mode", async () => {
    const got = await inPage('/wasm/', [FP4KIT_CPU_BACKEND]);
    expect(got.errors).toEqual([]);
    expect(got.attempts).toEqual([{ name: FP4KIT_CPU_BACKEND, ok: true }]);
    // fp4kit's module still loads (its kernels do the products); tfjs's is never fetched.
    expect(got.requests.filter((u) => u.endsWith('.wasm'))).toEqual(['/wasm/fp4kit-relaxed.wasm']);
    const result = got.result!;
    expect(result.tfjsBackend).toBe(FP4KIT_CPU_BACKEND);
    expect(result.fp4kitKernels).toBe('wasm/relaxed-simd');
    expect(result.leakedTensors).toBe(0);
    expect(differences(result, await nodeRun('wasm', FP4KIT_CPU_BACKEND))).toEqual([]);
  });

  it("without fp4kit.wasm, 'fp4kit' refuses to start and says why; 'fp4kit-cpu' runs on fp4kit's js kernels, with the bytes of Node", async () => {
    const got = await inPage({ tfjs: '/wasm/', fp4kit: '/missing/fp4kit.wasm' }, [FP4KIT_BACKEND, FP4KIT_CPU_BACKEND], ['nvfp4', 'none']);
    expect(got.attempts).toEqual([{ name: FP4KIT_BACKEND, ok: false }, { name: FP4KIT_CPU_BACKEND, ok: true }]);
    // tfjs reports a failed backend initialisation as a warning (the reason on its own line).
    expect(got.warnings.join('\n')).toContain("fp4kit tfjs backend: fp4kit's WebAssembly module did not load from /missing/fp4kit.wasm (initWasm: fetching /missing/fp4kit.wasm failed: HTTP 404)");
    expect(got.warnings.join('\n')).toContain("fp4kit tfjs backend 'fp4kit-cpu'");
    expect(got.errors.filter((e) => !e.includes('404'))).toEqual([]);
    const result = got.result!;
    expect(result.tfjsBackend).toBe(FP4KIT_CPU_BACKEND);
    expect(result.fp4kitKernels).toBe('js/none');
    expect(result.leakedTensors).toBe(0);
    const want = await nodeRun('js', FP4KIT_CPU_BACKEND, ['nvfp4', 'none']);
    expect(differences(result, want)).toEqual([]);
  });
});
