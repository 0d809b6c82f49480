// The addon's exports called directly, as a caller that skips the facade would: arguments another
// thread rewrites while a call runs must not move a kernel past the lengths the call checked, and a
// too-short array is refused in the words the js and wasm kernels use (lib/kernels/kernel-guards.ts).
// The calls that once crashed run in a child process, so a crash fails one test, not the runner.
// (.scratch-napifuzz/ in a working copy held the fuzz harness these cases came from.)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { availableBackends } from '../lib/index.js';
import type { Kernels } from '../lib/kernels/contract.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { mxArgs, mxOutArgs } from './helpers/block-args.js';

const native = availableBackends().find((b) => b.name === 'native')?.available === true;
// The addon file this run loads (FP4KIT_NATIVE_BUILD: the cmake-js or sanitizer build), for child processes.
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const addonPath = process.env.FP4KIT_NATIVE_BUILD
  ? join(repoRoot, process.env.FP4KIT_NATIVE_BUILD, 'Release', 'fp4kit.node')
  : (createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }).path(repoRoot);

describe.runIf(native)('the addon under hostile callers', () => {
  // The mask says where each block lies in data and scales. It was read once to check data's length
  // and again by the kernel's walk, so a SharedArrayBuffer mask another thread turned FP8 in between
  // read FP4 bytes as FP8 ones and walked past data: wrong values, or SIGSEGV (found by the fuzz
  // harness). Every call that is not refused must now
  // decode the FP4 stream it was checked against (data 0x22: E2M1 1.0 in both nibbles, scales E4M3
  // 1.0, so every output is 1; an FP8 block would read 0x22 as E4M3 0.15625).
  it('dequantizeFgmp: a shared mask another thread rewrites during the call is refused or decoded as checked, never walked past data', () => {
    const script = `
      const addon = require(process.argv[1]);
      const { Worker } = require('node:worker_threads');
      const rows = 2048, cols = 1024, blocks = rows * cols / 16;
      const shared = new SharedArrayBuffer(blocks / 8);
      const mask = new Uint8Array(shared);
      const data = new Uint8Array(blocks * 8).fill(0x22), scales = new Uint8Array(blocks).fill(0x38), out = new Float32Array(rows * cols);
      // All FP4 for a millisecond, all FP8 for one, and so on: data holds the FP4 stream only.
      const flipper = new Worker(\`
        const { workerData } = require('node:worker_threads');
        const m = new Uint8Array(workerData), pause = new Int32Array(new SharedArrayBuffer(4));
        for (;;) { m.fill(0); Atomics.wait(pause, 0, 0, 1); m.fill(0xff); Atomics.wait(pause, 0, 0, 1); }\`, { eval: true, workerData: shared });
      let decoded = 0, refused = 0, wrong = 0;
      const until = Date.now() + 8000;
      setTimeout(() => {
        while (decoded < 40 && Date.now() < until) {
          out.fill(0);
          try {
            addon.dequantizeFgmp({ mask, data, scales, cols, rowBegin: 0, rowEnd: rows, tensorScale: 1, fp8Scale: 1, out });
          } catch (e) {
            if (!(e instanceof RangeError) || !/^dequantizeFgmp: data holds \\d+ \\w+, \\d+ needed$/.test(e.message)) throw e;
            refused++;
            continue;
          }
          decoded++;
          if (!out.every((v) => v === 1)) wrong++;
        }
        flipper.terminate().then(() => console.log(JSON.stringify({ decoded, refused, wrong })));
      }, 20);`;
    const run = spawnSync(process.execPath, ['-e', script, addonPath], { encoding: 'utf8', timeout: 60_000 });
    expect(run.signal, run.stderr).toBeNull();
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as { decoded: number; refused: number; wrong: number };
    expect(result.wrong).toBe(0);
    expect(result.decoded, 'calls whose mask was all FP4 when checked').toBeGreaterThan(0);
  });
});

// One short array per call, on every backend that has the kernel: the length errors count what the
// array holds in the same unit — bytes for a Uint8Array, values for other typed arrays, elements
// for a tensor's source — and name the same numbers (the addon said "elements" for every array).
describe.runIf(native)('a too-short array is refused in the same words on every backend', () => {
  const ABSENT = Symbol('no such kernel on this backend');
  const f32 = (n: number) => new Float32Array(n), u8 = (n: number) => new Uint8Array(n), f64 = (n: number) => new Float64Array(n);
  const gradient = (short: Record<string, unknown>) => ({ src: f32(8), rows: 2, cols: 4, bits: 2, groups: 1, prune: 0, seed: 1, codes: u8(8), scales: f32(2), zeros: f32(2), mask: u8(2), keepProbability: f32(2), ...short });
  const fgmpStream = (short: Record<string, unknown>) => ({ mask: u8(1), data: u8(16), scales: u8(2), cols: 32, rowBegin: 0, rowEnd: 1, tensorScale: 1, fp8Scale: 1, out: f32(32), ...short });
  const cases: Array<[string, string, (k: Kernels) => unknown]> = [
    ['quantizeBlocks src', 'holds 63 elements, 64 needed', (k) => k.quantizeBlocks(mxArgs(f32(63), 0, 1, 64, 0, 0, 0, 0, u8(32), u8(2)))],
    ['quantizeBlocks data', 'holds 31 bytes, 32 needed', (k) => k.quantizeBlocks(mxArgs(f32(64), 0, 1, 64, 0, 0, 0, 0, u8(31), u8(2)))],
    ['quantizeBlocks scales', 'holds 1 bytes, 2 needed', (k) => k.quantizeBlocks(mxArgs(f32(64), 0, 1, 64, 0, 0, 0, 0, u8(32), u8(1)))],
    ['dequantizeBlocks out', 'holds 63 values, 64 needed', (k) => k.dequantizeBlocks(mxOutArgs(u8(32), u8(2), 1, 64, 0, f32(63)))],
    ['encodeElements out', 'holds 7 bytes, 8 needed', (k) => k.encodeElements(f32(8), 0, 3, 0, 0, u8(7))],
    ['decodeElements out', 'holds 7 values, 8 needed', (k) => k.decodeElements(u8(8), 3, f32(7))],
    ['errorSums decoded', 'holds 7 values, 8 needed', (k) => k.errorSums(f32(8), 0, f32(7), 1, 8, f64(3))],
    ['errorSums sums', 'holds 2 values, 3 needed', (k) => k.errorSums(f32(8), 0, f32(8), 1, 8, f64(2))],
    ['quantizeGradient codes', 'holds 7 bytes, 8 needed', (k) => k.quantizeGradient(gradient({ codes: u8(7) }) as never)],
    ['quantizeGradient scales', 'holds 1 values, 2 needed', (k) => k.quantizeGradient(gradient({ scales: f32(1) }) as never)],
    ['dequantizeGradient out', 'holds 7 values, 8 needed', (k) => k.dequantizeGradient({ codes: u8(8), scales: f32(2), zeros: f32(2), mask: u8(2), rows: 2, cols: 4, groups: 1, out: f32(7) })],
    ['packSigns out', 'holds 56 bytes, 64 needed', (k) => k.packSigns({ src: f32(8), rows: 1, cols: 8, transpose: false, ternary: false, out: u8(56) })],
    ['bitplaneMatmul outInt', 'holds 3 values, 4 needed', (k) => k.bitplaneMatmul({ planes: u8(16), m: 2, bits: 1, signs: u8(64), n: 2, length: 8, ternary: false, rowsPerGroup: 2, mask: null, scales: null, zeros: null, outInt: new Int32Array(3), outFloat: null })],
    ['dequantizeFgmp mask', 'holds 0 bytes, 1 needed', (k) => k.dequantizeFgmp(fgmpStream({ mask: u8(0) }))],
    ['dequantizeFgmp out', 'holds 31 values, 32 needed', (k) => k.dequantizeFgmp(fgmpStream({ out: f32(31) }))],
    ['repackFp4Weights nibbles', 'holds 31 bytes, 32 needed', (k) => (k.matmul ? k.matmul.repackFp4Weights(u8(31), f32(2), null, null, 2, 32, 32) : ABSENT)],
    ['repackFp4Weights blockScales', 'holds 1 values, 2 needed', (k) => (k.matmul ? k.matmul.repackFp4Weights(u8(32), f32(1), null, null, 2, 32, 32) : ABSENT)],
    ['matmulDecoded out', 'holds 3 values, 4 needed', (k) => (k.matmul?.matmulDecoded ? k.matmul.matmulDecoded(f32(64), f32(2), 2, 32, f32(64), f32(2), 2, 32, 32, null, f32(3)) : ABSENT)],
    ['fgmpCandidates impacts', 'holds 1 values, 2 needed', (k) => (k.fgmpCandidates ? k.fgmpCandidates(f32(32), 0, 1, 32, null, false, 1, 1, false, f64(1), u8(32), u8(2), u8(32)) : ABSENT)],
    ['fgmpCandidates fp4Scales', 'holds 1 bytes, 2 needed', (k) => (k.fgmpCandidates ? k.fgmpCandidates(f32(32), 0, 1, 32, null, false, 1, 1, false, f64(2), u8(32), u8(1), u8(32)) : ABSENT)],
  ];
  const backends = availableBackends().filter((b) => b.available).map((b) => b.name);
  it.each(cases)('%s', (_, words, call) => {
    const refusing: string[] = [];
    for (const backend of backends) {
      let thrown: unknown = ABSENT;
      try {
        if (call(kernelsFor(backend)!) === ABSENT) continue;  // a backend without this kernel (js has no matmul kernels)
      } catch (e) {
        thrown = e;
      }
      expect(thrown, backend).toBeInstanceOf(RangeError);
      expect((thrown as Error).message, backend).toMatch(new RegExp(`\\b${words}$`));
      refusing.push(backend);
    }
    expect(refusing).toContain('native');
    expect(refusing.length, 'the backends compared').toBeGreaterThan(1);
  });
});
