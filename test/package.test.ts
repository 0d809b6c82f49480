// The package as a user receives it (found by an audit of an installed tarball, twenty-fifth
// session): what `npm pack` puts in it, the CLI's version, and fp4kit/tfjs without its optional peer.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(__dirname, '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string; main: string; types: string; bin: Record<string, string>; exports: Record<string, unknown>;
};

/** Every string leaf of package.json's exports: the files its entry points name. */
function exportTargets(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(exportTargets);
  return [];
}

it('npm pack holds every file package.json points at, the wasm builds, the docs the README links to, LICENSE, and nothing of the tests or scratch folders', () => {
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as [{ files: { path: string }[] }];
  const files = new Set(packed.files.map((f) => f.path));
  const named = [manifest.main, manifest.types, ...Object.values(manifest.bin), ...exportTargets(manifest.exports)].map((p) => p.replace(/^\.\//, ''));
  expect(named.filter((p) => !files.has(p))).toEqual([]);
  for (const f of ['LICENSE', 'README.md', 'build-wasm/fp4kit.wasm', 'build-wasm/fp4kit-relaxed.wasm', 'scripts/install-native.cjs', 'binding.gyp', 'CMakeLists.txt', 'cmake/aarch64-linux-gnu.cmake']) expect(files.has(f), f).toBe(true);
  // Every docs/ page the README links to (`fp4kit --help` names docs/distributed.md too).
  const linked = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/\]\((docs\/[^)#]+)/g)].map((m) => m[1]);
  expect(linked.length).toBeGreaterThan(3);
  expect(linked.filter((p) => !files.has(p))).toEqual([]);
  expect([...files].filter((p) => /^(test|bench|\.scratch|\.ci|examples\/out)/.test(p))).toEqual([]);
});

it('fp4kit --version prints the package version', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'checkpoint', 'cli.ts'), '--version'], { cwd: root, encoding: 'utf8' });
  expect(out).toBe(`${manifest.version}\n`);
});

// npm does not install an optional peer by itself: the import was a bare ERR_MODULE_NOT_FOUND.
it('importing fp4kit/tfjs without @tensorflow/tfjs-backend-wasm says what to install', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--require', './test/fixtures/missing-peer/require-hook.cjs', '-e', "await import('./lib/tfjs/index.ts')"], {
    cwd: root, encoding: 'utf8', env: { ...process.env, FP4KIT_TEST_MISSING: '@tensorflow/tfjs-backend-wasm' },
  });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/Error: fp4kit\/tfjs needs @tensorflow\/tfjs-backend-wasm \(the base of the fp4kit backend\) beside @tensorflow\/tfjs: npm install @tensorflow\/tfjs@4\.22\.0 @tensorflow\/tfjs-backend-wasm@4\.22\.0/);
});

// BullMQ and ioredis took ~0.2 s of every command's start (half of it); only --queue and worker use them.
it('fp4kit commands without a queue run without BullMQ or ioredis loaded', () => {
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', '--import', './test/fixtures/missing-peer/register.mjs', join(root, 'lib', 'checkpoint', 'cli.ts'), ...args], {
    cwd: root, encoding: 'utf8', env: { ...process.env, FP4KIT_TEST_MISSING: 'bullmq,ioredis' },
  });
  const version = run(['--version']);
  expect(version.status, version.stderr).toBe(0);
  const inspect = run(['inspect', join(root, 'examples', 'tiny-model'), '--json']);
  expect(inspect.status, inspect.stderr).toBe(0);
  expect(JSON.parse(inspect.stdout)).toBeTypeOf('object');
  // and --queue does need them (so the hook is in force): its flags are checked first, then BullMQ is loaded
  const queued = run(['worker', '--queue', 'redis://127.0.0.1:1']);
  expect(queued.status).toBe(1);
  expect(queued.stderr).toMatch(/Cannot find package 'bullmq'/);
});

// A top-level await (how the peer was loaded for a day) made require('fp4kit/tfjs') throw
// ERR_REQUIRE_ASYNC_MODULE; Node 20.19+ can require() ES modules without one (found by a review).
it.runIf(existsSync(join(root, 'dist', 'lib', 'tfjs', 'index.js')))('fp4kit/tfjs loads with require() as well as import', () => {
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(join(root, 'dist', 'lib', 'tfjs', 'index.js'))}); if (typeof m.layers?.fp4Dense !== 'function') process.exit(3)`], { cwd: root, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
});
