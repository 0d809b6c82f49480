// fp4kit's WebAssembly matmul in a real browser (Debian's Chromium, headless): each build of the
// module — fp4kit.wasm (SIMD128) and fp4kit-relaxed.wasm (relaxed SIMD's i8 dot, which Node 20
// cannot run: lib/kernels/wasm-builds.ts) — against the peer measured in the same page and run,
// tfjs-backend-wasm's float32 matMul (XNNPACK, one thread). matmul(x, w) on prepared weights, so
// each figure includes quantizing the activations, as a model's call does; weights stay resident.
// ms per product (median), GFLOP/s = 2·m·n·k / t, ratios to tfjs-wasm and relaxed ÷ simd128, and
// whether both builds gave the same output bytes (they must). Then a whole model in the browser:
// model.predict of a dense stack (--width, --layers, --batch) on the 'fp4kit' tfjs backend
// (lib/tfjs/browser.ts, each weight mode; it loads the build the probe picks) against tfjs's wasm.
//
//   npm run bench:wasm-browser
//   npm run bench:wasm-browser -- --shapes=1x4096x4096,16x4096x4096,64x4096x4096 --formats=mxfp4,nvfp4 --seconds=2
//   npm run bench:wasm-browser -- --width=4096 --layers=4 --batch=64 --modes=nvfp4,mxfp4,fgmp,mxfp8_e4m3 (--modes= skips it)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { haveChromium, launchChromium, serveFiles, type SiteFiles } from '../test/helpers/headless-browser.js';
import type { Shape, Timing } from './browser/matmul-page.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const SHAPES: Shape[] = (arg('shapes') ?? '1x4096x4096,16x4096x4096,64x4096x4096,64x1024x1024').split(',').map((s) => {
  const [m, n, k] = s.split('x').map(Number);
  return { m, n, k };
});
const FORMATS = (arg('formats') ?? 'mxfp4,nvfp4,fgmp,mxfp8_e4m3').split(',');
const SECONDS = Number(arg('seconds') ?? 1.5);
const WIDTH = Number(arg('width') ?? 4096);
const LAYERS = Number(arg('layers') ?? 4);
const BATCH = Number(arg('batch') ?? 64);
const MODES = (arg('modes') ?? 'nvfp4,mxfp4,fgmp,mxfp8_e4m3').split(',').filter(Boolean);
const PREDICT_REPS = 5;

if (!haveChromium) throw new Error('bench:wasm-browser needs Chromium (apt-get install chromium, or CHROMIUM_PATH)');
const root = process.cwd();
const dir = await mkdtemp(join(tmpdir(), 'fp4kit-bench-browser-'));
for (const [entry, name] of [['bench/browser/matmul-page.ts', 'page'], ['bench/browser/tfjs-predict-page.ts', 'predict']]) {
  await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', outfile: join(dir, `${name}.js`), logLevel: 'silent' });
  await writeFile(join(dir, `${name}.html`), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/${name}.js"></script>`);
}
const tfjsWasm = join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const files: SiteFiles = {
  '/': [join(dir, 'page.html'), 'text/html'],
  '/page.js': [join(dir, 'page.js'), 'text/javascript'],
  '/predict': [join(dir, 'predict.html'), 'text/html'],
  '/predict.js': [join(dir, 'predict.js'), 'text/javascript'],
  '/fp4kit.wasm': [join(root, 'build-wasm', 'fp4kit.wasm'), 'application/wasm'],
  '/fp4kit-relaxed.wasm': [join(root, 'build-wasm', 'fp4kit-relaxed.wasm'), 'application/wasm'],
};
for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) files[`/${f}`] = [join(tfjsWasm, f), 'application/wasm'];
const site = await serveFiles(files);
const browser = await launchChromium();
try {
  /** A fresh page per measurement: one module, one backend, nothing left from another. */
  async function inPage<T>(run: (page: import('playwright-core').Page) => Promise<T>, path = '/'): Promise<T> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(site.origin + path);
    await page.waitForFunction(() => typeof window.benchFp4kit === 'function' || typeof window.benchPredict === 'function');
    const result = await run(page);
    await page.close();
    if (errors.length) throw new Error(errors.join('\n'));
    return result;
  }
  const peer = await inPage((p) => p.evaluate(([s, t]) => window.benchTfjs(s, t), [SHAPES, SECONDS] as const));
  // Each build in two fresh pages, alternating, and the faster figure of the two: the same page's
  // figures swing by up to 1.6× from one page to the next on this shared host (E4M3's 32–64 MB of
  // int16 planes most), whichever build runs first.
  const measure = (build: 'simd128' | 'relaxed') => inPage((p) => p.evaluate(([b, s, f, t]) => window.benchFp4kit(b, s, f, t), [build, SHAPES, FORMATS, SECONDS] as const));
  const faster = (x: Awaited<ReturnType<typeof measure>>, y: Awaited<ReturnType<typeof measure>>) =>
    ({ kernels: x.kernels, timings: x.timings.map((t, i) => (y.timings[i].digest !== t.digest ? { ...t, digest: 'differs between pages' } : y.timings[i].ms < t.ms ? y.timings[i] : t)) });
  const runs = { simd128: [] as Array<Awaited<ReturnType<typeof measure>>>, relaxed: [] as Array<Awaited<ReturnType<typeof measure>>> };
  for (const build of ['simd128', 'relaxed', 'relaxed', 'simd128'] as const) runs[build].push(await measure(build));
  const simd128 = faster(runs.simd128[0], runs.simd128[1]);
  const relaxed = faster(runs.relaxed[0], runs.relaxed[1]);
  const version = browser.version();
  console.log(`Chromium ${version}; fp4kit kernels ${simd128.kernels} and ${relaxed.kernels}; peer tfjs backend '${peer.backend}' (float32 matMul, one thread)`);
  console.log('ms per product (median over ~' + SECONDS + ' s; fp4kit: the faster of two pages per build), GFLOP/s = 2·m·n·k / t; matmul(x, prepared weights): activations quantized per call');
  console.log('');
  console.log('| weights | m × n × k | simd128 ms | relaxed ms | relaxed GFLOP/s | tfjs-wasm f32 ms | relaxed ÷ simd128 speed | relaxed ÷ tfjs speed | same bytes |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---|');
  const key = (t: Timing) => `${t.what}/${t.shape.m}x${t.shape.n}x${t.shape.k}`;
  const simdBy = new Map(simd128.timings.map((t) => [key(t), t]));
  const peerBy = new Map(peer.timings.map((t) => [`${t.shape.m}x${t.shape.n}x${t.shape.k}`, t]));
  let mismatches = 0;
  for (const r of relaxed.timings) {
    const s = simdBy.get(key(r))!;
    const { m, n, k } = r.shape;
    const q = peerBy.get(`${m}x${n}x${k}`)!;
    const same = s.digest === r.digest;
    if (!same) mismatches++;
    console.log(`| ${r.what} | ${m} × ${n} × ${k} | ${s.ms.toFixed(2)} | ${r.ms.toFixed(2)} | ${((2 * m * n * k) / r.ms / 1e6).toFixed(1)} | ${q.ms.toFixed(2)} | ${(s.ms / r.ms).toFixed(2)}× | ${(q.ms / r.ms).toFixed(2)}× | ${same ? 'yes' : 'NO'} |`);
  }
  if (mismatches) throw new Error(`${mismatches} products differ between the two builds`);

  if (MODES.length) {
    const predict = (backend: string, modes: string[]) =>
      inPage((p) => p.evaluate(([b, m, w, l, n, r]) => window.benchPredict(b, m, w, l, n, r), [backend, modes, WIDTH, LAYERS, BATCH, PREDICT_REPS] as const), '/predict');
    const peer = (await predict('wasm', ['float32']))[0];
    const ours = await predict('fp4kit', MODES);
    console.log('');
    console.log(`model.predict of ${LAYERS} dense layers ${WIDTH} × ${WIDTH} (relu between) at batch ${BATCH}, in the page; median of ${PREDICT_REPS} after the first`);
    console.log('');
    console.log('| backend | weights | kernels | first predict ms | predict ms | vs tfjs wasm |');
    console.log('|---|---|---|---:|---:|---:|');
    console.log(`| tfjs wasm | float32 | XNNPACK | ${peer.firstMs.toFixed(1)} | ${peer.ms.toFixed(1)} | 1× |`);
    for (const t of ours) console.log(`| fp4kit | ${t.mode} | ${t.kernels} | ${t.firstMs.toFixed(1)} | ${t.ms.toFixed(1)} | ${(peer.ms / t.ms).toFixed(2)}× |`);
  }
} finally {
  await browser.close();
  site.close();
  await rm(dir, { recursive: true, force: true });
}
