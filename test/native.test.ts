// The native addon on its own: the C++ argument checks (a bad call must throw, never crash),
// the Promise variants, and bit-identical results whatever the thread count or forced SIMD level.
// CI runs the whole shared suite again with FP4KIT_SIMD=scalar, =avx2 and =avx512 and on the cmake-js build.
import { mxArgs, mxOutArgs, nvfp4Args, nvfp4OutArgs } from './helpers/block-args.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { availableBackends, quantize } from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { repackWeights } from '../lib/kernels/matmul-glue.js';
import type { Kernels } from '../lib/kernels/contract.js';
import { gaussian } from './helpers/data.js';

const info = availableBackends().find((b) => b.name === 'native')!;
// The addon file this run loads (FP4KIT_NATIVE_BUILD: the cmake-js or sanitizer build), for child processes.
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const addonPath = process.env.FP4KIT_NATIVE_BUILD
  ? join(repoRoot, process.env.FP4KIT_NATIVE_BUILD, 'Release', 'fp4kit.node')
  : (createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }).path(repoRoot);
const native = info.available ? (kernelsFor('native') as Kernels) : null;
const maybe = native ? describe : describe.skip;
if (!native && process.env.CI === 'true') throw new Error(`native addon failed to load in CI: ${info.error}`);

maybe('native addon', () => {
  const k = native!;

  it('reports a SIMD level this CPU runs', () => {
    expect(['avx512', 'avx2', 'neon', 'scalar']).toContain(k.simd);
    expect(typeof k.matmul?.matmulSimd).toBe('string');
  });

  describe('argument checks in C++ (called directly, bypassing the TypeScript checks)', () => {
    const x = new Float32Array(64);
    const data = new Uint8Array(32);
    const scales = new Uint8Array(2);
    const call = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as Error;
      }
      return null;
    };

    // Outputs that share memory with an input or another output (finding 4 of the native fuzz
    // audit): 13 functions computed garbage without an error, and their Promise variants, which
    // snapshot the inputs, other bytes than the synchronous calls. Each case lays out one input
    // (filled by `fill`) and one output in one ArrayBuffer, the output over the input's first bytes
    // ('over'), or starting at the byte after the input's last ('beside'); or in two buffers ('apart').
    type Place = 'over' | 'beside' | 'apart';
    type ArrayKind = Float32Array | Float64Array | Uint8Array | Int32Array;
    const pair = <I extends ArrayKind, O extends ArrayKind>(
      place: Place, In: { new (b: ArrayBuffer, o: number, n: number): I; BYTES_PER_ELEMENT: number }, inLength: number, fill: (i: number) => number,
      Out: { new (b: ArrayBuffer, o: number, n: number): O; BYTES_PER_ELEMENT: number }, outLength: number,
    ): [I, O] => {
      const inBytes = inLength * In.BYTES_PER_ELEMENT, outBytes = outLength * Out.BYTES_PER_ELEMENT;
      const at = place === 'beside' ? Math.ceil(inBytes / 8) * 8 : 0;
      const buffer = new ArrayBuffer(place === 'apart' ? inBytes : Math.max(inBytes, at + outBytes));
      const input = new In(buffer, 0, inLength);
      for (let i = 0; i < inLength; i++) input[i] = fill(i);
      return [input, new Out(place === 'apart' ? new ArrayBuffer(outBytes) : buffer, at, outLength)];
    };
    const wave = (i: number) => Math.sin(i * 0.7) * 3;
    const byte = (i: number) => (i * 37 + 11) & 255;
    const nibble = (i: number) => (i * 7) & 15;
    const none = () => 0;
    const fp4Weights = () => k.matmul!.repackFp4Weights(Uint8Array.from({ length: 32 * 32 }, (_, i) => byte(i)), new Float32Array(64).fill(1), null, null, 32, 64, 32);
    const fgmp = (run: 'fgmpCandidates' | 'fgmpCandidatesAsync', x: Float32Array, impacts: Float64Array, fp4Codes: Uint8Array, fp8Codes: Uint8Array) =>
      k[run]!(x, 0, 1, 64, null, false, 1, 1, false, impacts, fp4Codes, new Uint8Array(4), fp8Codes);
    const gradientOutputs = ['codes', 'scales', 'zeros', 'mask', 'keepProbability'] as const;
    // [name, a call laid out at `place` → [its result (a Promise for the async variants), its outputs], message]
    const overlapCases: Array<[string, (place: Place) => [unknown, ArrayBufferView[]], RegExp]> = [
      ['encodeElements: out over src', (p) => {
        const [src, out] = pair(p, Float32Array, 64, wave, Uint8Array, 64);
        return [k.encodeElements(src, 0, 3, 0, 0, out), [out]];
      }, /^encodeElements: out shares memory with src$/],
      ['decodeElements: out over codes', (p) => {
        const [codes, out] = pair(p, Uint8Array, 64, byte, Float32Array, 64);
        return [k.decodeElements(codes, 3, out), [out]];
      }, /^decodeElements: out shares memory with codes$/],
      ...(['quantizeBlocks', 'quantizeBlocksAsync'] as const).map((run) => [`${run}: data over src`, (p: Place) => {
        const [src, out] = pair(p, Float32Array, 64, wave, Uint8Array, 32);
        const scales2 = new Uint8Array(2);
        return [k[run]!(mxArgs(src, 0, 1, 64, 0, 0, 0, 0, out, scales2)), [out, scales2]];
      }, /^quantizeBlocks: data shares memory with src$/] as [string, (place: Place) => [unknown, ArrayBufferView[]], RegExp]),
      ['quantizeBlocks: scales over data (two outputs)', (p) => {
        const [data2, scales2] = pair(p, Uint8Array, 32, none, Uint8Array, 2);
        return [k.quantizeBlocks(mxArgs(Float32Array.from({ length: 64 }, (_, i) => wave(i)), 0, 1, 64, 0, 0, 0, 0, data2, scales2)), [data2, scales2]];
      }, /^quantizeBlocks: data shares memory with scales$/],
      ['dequantizeBlocks: out over data', (p) => {
        const [data2, out] = pair(p, Uint8Array, 32, byte, Float32Array, 64);
        return [k.dequantizeBlocks(mxOutArgs(data2, new Uint8Array(2).fill(127), 1, 64, 0, out)), [out]];
      }, /^dequantizeBlocks: out shares memory with data$/],
      ...(['fgmpCandidates', 'fgmpCandidatesAsync'] as const).map((run) => [`${run}: fp4Codes over x`, (p: Place) => {
        const [x2, fp4Codes] = pair(p, Float32Array, 64, (i) => wave(i) * 0.01, Uint8Array, 64);
        const impacts = new Float64Array(4), fp8Codes = new Uint8Array(64);
        return [fgmp(run, x2, impacts, fp4Codes, fp8Codes), [impacts, fp4Codes, fp8Codes]];
      }, /^fgmpCandidates: fp4Codes shares memory with x$/] as [string, (place: Place) => [unknown, ArrayBufferView[]], RegExp]),
      ['fgmpCandidates: fp8Codes over impacts (two outputs)', (p) => {
        const [impacts, fp8Codes] = pair(p, Float64Array, 4, none, Uint8Array, 64);
        const fp4Codes = new Uint8Array(64);
        return [fgmp('fgmpCandidates', Float32Array.from({ length: 64 }, (_, i) => wave(i) * 0.01), impacts, fp4Codes, fp8Codes), [impacts, fp4Codes, fp8Codes]];
      }, /^fgmpCandidates: impacts shares memory with fp8Codes$/],
      ...(['matmulFp4Int8', 'matmulFp4Int8Async'] as const).map((run) => [`${run}: out over the activation codes`, (p: Place) => {
        const [codes, out] = pair(p, Uint8Array, 64, byte, Float32Array, 32);
        return [k.matmul![run]!(fp4Weights(), codes, new Float32Array(2).fill(1), 1, null, out), [out]];
      }, /^matmulFp4Int8: out shares memory with activation codes$/] as [string, (place: Place) => [unknown, ArrayBufferView[]], RegExp]),
      ['matmulFp4Int8: out over the activation scales', (p) => {
        const [aScales, out] = pair(p, Float32Array, 2, (i) => 2 ** i, Float32Array, 32);
        return [k.matmul!.matmulFp4Int8(fp4Weights(), Uint8Array.from({ length: 64 }, (_, i) => byte(i)), aScales, 1, null, out), [out]];
      }, /^matmulFp4Int8: out shares memory with activation scales$/],
      ['matmulDecoded: out over b values', (p) => {
        const [bValues, out] = pair(p, Float32Array, 64, wave, Float32Array, 4);
        const aValues = Float32Array.from({ length: 64 }, (_, i) => wave(i + 5));
        return [k.matmul!.matmulDecoded!(aValues, new Float32Array(2).fill(1), 2, 32, bValues, new Float32Array(2).fill(1), 2, 32, 32, null, out), [out]];
      }, /^matmulDecoded: out shares memory with b values$/],
      ...gradientOutputs.map((output) => [`quantizeGradient: ${output} over src`, (p: Place) => {
        const outs = { codes: new Uint8Array(128), scales: new Float32Array(2), zeros: new Float32Array(2), mask: new Uint8Array(2), keepProbability: new Float32Array(2) };
        const [src, out] = output === 'codes' || output === 'mask' ? pair(p, Float32Array, 128, wave, Uint8Array, outs[output].length) : pair(p, Float32Array, 128, wave, Float32Array, 2);
        const args = { ...outs, [output]: out };
        return [k.quantizeGradient({ src, rows: 2, cols: 64, bits: 4, groups: 1, prune: 0, seed: 1, ...args } as never), Object.values(args)];
      }, new RegExp(`^quantizeGradient: ${output} shares memory with src$`)] as [string, (place: Place) => [unknown, ArrayBufferView[]], RegExp]),
      ['dequantizeGradient: out over codes', (p) => {
        const [codes, out] = pair(p, Uint8Array, 128, nibble, Float32Array, 128);
        return [k.dequantizeGradient({ codes, scales: new Float32Array(2).fill(0.5), zeros: new Float32Array(2).fill(-1), mask: new Uint8Array(2).fill(1), rows: 2, cols: 64, groups: 1, out } as never), [out]];
      }, /^dequantizeGradient: out shares memory with codes$/],
      ['packSigns: out over src', (p) => {
        const [src, out] = pair(p, Float32Array, 512, wave, Uint8Array, 64);
        return [k.packSigns({ src, rows: 8, cols: 64, transpose: false, ternary: false, out } as never), [out]];
      }, /^packSigns: out shares memory with src$/],
      ['packBitPlanes: out over codes', (p) => {
        const [codes, out] = pair(p, Uint8Array, 512, nibble, Uint8Array, 256);
        return [k.packBitPlanes({ codes, rows: 8, cols: 64, bits: 4, transpose: false, out } as never), [out]];
      }, /^packBitPlanes: out shares memory with codes$/],
      ['bitplaneMatmul: outInt over planes', (p) => {
        const [planes, outInt] = pair(p, Uint8Array, 8, byte, Int32Array, 1);
        const signs = Uint8Array.from({ length: 64 }, (_, i) => byte(i + 3));
        return [k.bitplaneMatmul({ planes, m: 1, bits: 1, signs, n: 1, length: 10, ternary: false, rowsPerGroup: 1, mask: null, scales: null, zeros: null, outInt, outFloat: null } as never), [outInt]];
      }, /^bitplaneMatmul: outInt shares memory with planes$/],
      ['bitplaneMatmul: outFloat over scales', (p) => {
        const [scales2, outFloat] = pair(p, Float32Array, 2, (i) => 0.5 + i, Float32Array, 1);
        const planes = Uint8Array.from({ length: 8 }, (_, i) => byte(i)), signs = Uint8Array.from({ length: 64 }, (_, i) => byte(i + 3));
        return [k.bitplaneMatmul({ planes, m: 1, bits: 1, signs, n: 1, length: 10, ternary: false, rowsPerGroup: 1, mask: null, scales: scales2, zeros: Float32Array.from([0.25]), outInt: null, outFloat } as never), [outFloat]];
      }, /^bitplaneMatmul: outFloat shares memory with scales$/],
      ['errorSums: sums over decoded', (p) => {
        const [decoded, sums] = pair(p, Float32Array, 64, wave, Float64Array, 3);
        return [k.errorSums(Float32Array.from({ length: 64 }, (_, i) => wave(i + 1)), 0, decoded, 1, 64, sums), [sums]];
      }, /^errorSums: sums shares memory with decoded$/],
    ];

    it.each([
      ['arguments that are not an object', () => (k.quantizeBlocks as any)(x, 0, 1, 64), TypeError, /quantizeBlocks: arguments must be an object/],
      ['unknown block format id', () => k.quantizeBlocks({ ...mxArgs(x, 0, 1, 64, 0, 0, 0, 0, data, scales), format: 7 }), RangeError, /format must be an integer in \[0, 6\]/],
      ['src of the wrong kind', () => k.quantizeBlocks(mxArgs(new Int32Array(64) as any, 0, 1, 64, 0, 0, 0, 0, data, scales)), TypeError, /Float32Array/],
      ['src too short for the shape', () => k.quantizeBlocks(mxArgs(x, 0, 2, 64, 0, 0, 0, 0, data, scales)), RangeError, /src holds 64 elements, 128 needed/],
      ['data too short', () => k.quantizeBlocks(mxArgs(x, 0, 1, 64, 0, 0, 0, 0, new Uint8Array(31), scales)), RangeError, /data holds 31 bytes, 32 needed/],
      ['unknown element format', () => k.quantizeBlocks(mxArgs(x, 0, 1, 64, 9 as any, 0, 0, 0, data, scales)), RangeError, /format/],
      ['a negative block format id', () => k.quantizeBlocks({ ...mxArgs(x, 0, 1, 64, 0, 0, 0, 0, data, scales), format: -1 }), RangeError, /format must be an integer/],
      ['fractional rows', () => k.quantizeBlocks(mxArgs(x, 0, 0.5, 64, 0, 0, 0, 0, data, scales)), RangeError, /rows must be an integer/],
      ['negative seed', () => k.quantizeBlocks(mxArgs(x, 0, 1, 64, 0, 0, 1, -1, data, scales)), RangeError, /seed/],
      ['bf16 dtype with a Float32Array', () => k.quantizeBlocks(mxArgs(x, 1, 1, 64, 0, 0, 0, 0, data, scales)), TypeError, /Uint16Array/],
      ['nvfp4 tensor scale of 0', () => k.quantizeBlocks(nvfp4Args(x, 0, 1, 64, 0, 0, 0, new Uint8Array(32), new Uint8Array(4))), RangeError, /tensorScale/],
      ['nvfp4 tensor scale NaN', () => k.quantizeBlocks(nvfp4Args(x, 0, 1, 64, NaN, 0, 0, new Uint8Array(32), new Uint8Array(4))), RangeError, /tensorScale/],
      ['dequantize into a short output', () => k.dequantizeBlocks(mxOutArgs(data, scales, 1, 64, 0, new Float32Array(63))), RangeError, /out holds 63 values, 64 needed/],
      ['decode into a Float64Array', () => k.decodeElements(new Uint8Array(4), 0, new Float64Array(4) as any), TypeError, /Float32Array/],
      ['encode with a string format', () => k.encodeElements(x, 0, 'e4m3' as any, 0, 0, new Uint8Array(64)), TypeError, /format must be a number/],
      ['matmul weights that are not repacked', () => k.matmul!.matmulFp4Int8({} as any, new Uint8Array(32), new Float32Array(1), 1, null, new Float32Array(1)), TypeError, /repackFp4Weights/],
      ...(k.matmul?.repackPlaneWeights ? [
        ['plane weights: codes too short', () => k.matmul!.repackPlaneWeights!(new Uint8Array(63), new Int32Array(256), 9, new Float32Array(2), 2, 32), RangeError, /codes holds 63 bytes, 64 needed/],
        ['plane weights: a value table of 255 entries', () => k.matmul!.repackPlaneWeights!(new Uint8Array(32), new Int32Array(255), 9, new Float32Array(1), 1, 32), RangeError, /valueTable holds 255 values, 256 needed/],
        ['plane weights: a table value of 2^23', () => k.matmul!.repackPlaneWeights!(new Uint8Array(32), new Int32Array(256).fill(2 ** 23), 9, new Float32Array(1), 1, 32), RangeError, /valueTable entries/],
        // A unit's dot (32 or 16 int8 activations times a table value) is an int32: 2^19 wrapped it at blocks of 32.
        ['plane weights: a table value of 2^19 with blocks of 32', () => k.matmul!.repackPlaneWeights!(new Uint8Array(32), new Int32Array(256).fill(2 ** 19), 9, new Float32Array(1), 1, 32), RangeError, /valueTable entries must lie in \(-2\^19, 2\^19\) for blocks of 32/],
        ['plane weights: a table value of 2^20 with blocks of 16', () => k.matmul!.repackPlaneWeights!(new Uint8Array(32), new Int32Array(256).fill(2 ** 20), 9, new Float32Array(2), 1, 32, 16), RangeError, /valueTable entries must lie in \(-2\^20, 2\^20\) for blocks of 16/],
        ['plane weights: shift 25', () => k.matmul!.repackPlaneWeights!(new Uint8Array(32), new Int32Array(256), 25, new Float32Array(1), 1, 32), RangeError, /shift/],
        ['plane weights: scales too short', () => k.matmul!.repackPlaneWeights!(new Uint8Array(64), new Int32Array(256), 9, new Float32Array(1), 1, 64), RangeError, /blockScales holds 1 values, 2 needed/],
      ] as const : []),
      ...(k.matmul?.matmulDecodedBatch ? [
        // The indices were checked, then read again after earlier products had written over them: wild offsets, SIGSEGV.
        ['batched products: out over the indices', () => {
          const shared = new ArrayBuffer(128);
          const f = (n: number) => new Float32Array(n).fill(1);
          return k.matmul!.matmulDecodedBatch!(f(16), f(1), 1, 16, 1, f(256), f(16), 16, 16, 1, 16, null, new Float32Array(shared), new Int32Array(shared, 0, 2), new Int32Array(2));
        }, RangeError, /matmulDecodedBatch: out shares memory with an input/],
        ['batched products: an index out of range with an empty output', () => k.matmul!.matmulDecodedBatch!(new Float32Array(0), new Float32Array(0), 0, 16, 1, new Float32Array(16), new Float32Array(1), 1, 16, 1, 16, null, new Float32Array(0), new Int32Array([3]), new Int32Array([0])), RangeError, /aIndex\[0\] is not a matrix of a/],
      ] as const : []),
      ['bit-plane product: a NaN scale', () => k.bitplaneMatmul({
        planes: new Uint8Array(8), m: 1, bits: 1, signs: new Uint8Array(64), n: 1, length: 10, ternary: false, rowsPerGroup: 1, mask: null,
        scales: Float32Array.from([NaN]), zeros: Float32Array.from([0]), outInt: null, outFloat: new Float32Array(1),
      } as never), RangeError, /bitplaneMatmul: group 0's scale or zero point is not finite/],
      // The kernel reads the mask while it writes out: out over the mask turned FP4 blocks into FP8 ones after data was sized (a read past data).
      ['FGMP dequantization: out over the mask', () => {
        const out = new Float32Array(4096 * 16);
        return k.dequantizeFgmp({ mask: new Uint8Array(out.buffer, 0, 512), data: new Uint8Array(4096 * 8), scales: new Uint8Array(4096).fill(0x38), cols: 16, rowBegin: 0, rowEnd: 4096, tensorScale: 1, fp8Scale: 1, out } as never);
      }, RangeError, /dequantizeFgmp: out shares memory with mask, data or scales/],
      // A Promise variant refuses as its synchronous call does, at once (it returns no Promise).
      ...overlapCases.map(([name, run, message]) => [`an output that shares memory: ${name}`, () => run('over'), RangeError, message] as const),
    ])('%s', (_name, f, type, message) => {
      const err = call(f);
      expect(err).toBeInstanceOf(type);
      expect(err!.message).toMatch(message);
    });

    it('no output shares memory with another array: the same calls side by side in one ArrayBuffer, in a longer array\'s unused tail or with two inputs on one array give the bytes of separate arrays', async () => {
      const bytesOf = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      for (const [name, run] of overlapCases) {
        const [wantResult, want] = run('apart');
        const [gotResult, got] = run('beside'); // the output starts at the byte after the input's last
        expect(await gotResult, name).toEqual(await wantResult);
        got.forEach((out, i) => expect(bytesOf(out).equals(bytesOf(want[i])), `${name}: output ${i}`).toBe(true));
      }
      // Only the bytes a call uses count: the input in the tail of a longer output (sync and async).
      const xs = Float32Array.from({ length: 64 }, (_, i) => wave(i));
      const want = { data: new Uint8Array(32), scales: new Uint8Array(2) };
      k.quantizeBlocks(mxArgs(xs, 0, 1, 64, 0, 0, 0, 0, want.data, want.scales));
      for (const run of ['quantizeBlocks', 'quantizeBlocksAsync'] as const) {
        const buffer = new ArrayBuffer(32 + 256);
        const data2 = new Uint8Array(buffer); // uses bytes 0–31; src lies in its tail
        const src = new Float32Array(buffer, 32, 64);
        src.set(xs);
        const scales2 = new Uint8Array(2);
        await k[run]!(mxArgs(src, 0, 1, 64, 0, 0, 0, 0, data2, scales2));
        expect(bytesOf(data2.subarray(0, 32)).equals(bytesOf(want.data)), run).toBe(true);
        expect(Array.from(scales2)).toEqual(Array.from(want.scales));
      }
      // Arrays of another call, made from a getter while the arguments are read, are not this call's.
      const codes = new Uint8Array(128);
      const args = { src: Float32Array.from({ length: 128 }, (_, i) => wave(i)), rows: 2, cols: 64, bits: 4, groups: 1, prune: 0, seed: 1, codes, scales: new Float32Array(2), zeros: new Float32Array(2), mask: new Uint8Array(2), keepProbability: new Float32Array(2) };
      const src = args.src;
      Object.defineProperty(args, 'src', { get: () => (k.absMax(new Float32Array(codes.buffer), 0), src), enumerable: true });
      expect(call(() => k.quantizeGradient(args as never))).toBeNull();
      // Two inputs may share memory: a · aᵀ with both operands on one array.
      const a = Float32Array.from({ length: 64 }, (_, i) => wave(i)), ones = new Float32Array(2).fill(1);
      const product = new Float32Array(4), reference = new Float32Array(4);
      k.matmul!.matmulDecoded!(a, ones, 2, 32, a, ones, 2, 32, 32, null, product);
      k.matmul!.matmulDecoded!(a.slice(), ones.slice(), 2, 32, a.slice(), ones.slice(), 2, 32, 32, null, reference);
      expect(Array.from(product)).toEqual(Array.from(reference));
    });

    it('batched products with m, n or the batch empty return at once (an empty output took seconds per thousand indices)', () => {
      const started = Date.now();
      k.matmul!.matmulDecodedBatch!(new Float32Array(0), new Float32Array(0), 0, 16, 1, new Float32Array(2 ** 20), new Float32Array(2 ** 16), 2 ** 16, 16, 1, 16, null, new Float32Array(0), new Int32Array(1e5), new Int32Array(1e5));
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('FP4KIT_SIMD and FP4KIT_THREADS values that are not a level or a count are said once, and the lowest level runs (a typo must not lift the cap)', () => {
      const probe = (env: Record<string, string>) => spawnSync(process.execPath, ['-e', "const a = require(process.argv[1]); console.log(a.simd + ' ' + a.threads)", addonPath], { env: { ...process.env, ...env }, encoding: 'utf8' });
      const typo = probe({ FP4KIT_SIMD: 'avx9', FP4KIT_THREADS: '1e9' });
      expect(typo.stdout.trim().split(' ')[0]).toBe('scalar');
      expect(typo.stderr).toMatch(/fp4kit: FP4KIT_SIMD=avx9 is not one of scalar, .* the scalar kernels run/);
      expect(typo.stderr).toMatch(/fp4kit: FP4KIT_THREADS=1e9 is not an integer in 1\.\.64: \d+ threads run/);
      expect(typo.stderr.match(/FP4KIT_THREADS/g)).toHaveLength(1);
      const fine = probe({ FP4KIT_SIMD: 'scalar', FP4KIT_THREADS: '3' });
      expect(fine.stdout.trim()).toBe('scalar 3');
      expect(fine.stderr).not.toMatch(/fp4kit:/);
      expect(probe({ FP4KIT_THREADS: '4abc' }).stderr).toMatch(/FP4KIT_THREADS=4abc is not an integer/);
    });

    // One rule at the kernel boundary on every backend (lib/kernels/kernel-guards.ts): arrays may be
    // longer than needed; the kernels use the first elements and leave the rest as it was.
    it('longer arrays are accepted: the first elements are used, the tail is untouched (sync and async)', async () => {
      const xs = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
      const want = { data: new Uint8Array(32), scales: new Uint8Array(2) };
      k.quantizeBlocks(mxArgs(xs, 0, 1, 64, 0, 0, 0, 0, want.data, want.scales));
      expect(want.data.some((b) => b !== 0)).toBe(true);
      for (const run of [(a: Parameters<typeof k.quantizeBlocks>[0]) => k.quantizeBlocks(a), (a: Parameters<typeof k.quantizeBlocks>[0]) => k.quantizeBlocksAsync!(a)]) {
        const longData = new Uint8Array(40).fill(0xee), longScales = new Uint8Array(5).fill(0xdd);
        const longSrc = new Float32Array(80).fill(NaN);
        longSrc.set(xs);
        await run(mxArgs(longSrc, 0, 1, 64, 0, 0, 0, 0, longData, longScales));
        expect(Array.from(longData.subarray(0, 32))).toEqual(Array.from(want.data));
        expect(Array.from(longScales.subarray(0, 2))).toEqual(Array.from(want.scales));
        expect(Array.from(longData.subarray(32))).toEqual(new Array(8).fill(0xee));
        expect(Array.from(longScales.subarray(2))).toEqual(new Array(3).fill(0xdd));
      }
    });

    // Another addon's napi_external is an External too: read as a weights handle, its bytes were
    // followed as pointers (SIGSEGV). fp4kit's handles carry a type tag now.
    it("another addon's external passed as weights is refused, not read (matmul, release, planes into)", () => {
      const dir = mkdtempSync(join(tmpdir(), 'fp4kit-foreign-'));
      const addon = join(dir, 'foreign.node');
      const headers = (createRequire(import.meta.url)('node-api-headers') as { include_dir: string }).include_dir;
      execFileSync('cc', ['-shared', '-fPIC', '-O1', `-I${headers}`, join(repoRoot, 'test/fixtures/foreign-addon/foreign.c'), '-o', addon]);
      const script = `
        const fp4 = require(process.argv[1]), foreign = require(process.argv[2]);
        const calls = {
          matmul: (w) => fp4.matmulFp4Int8(w, new Uint8Array(64), new Float32Array(2), 1, null, new Float32Array(64)),
          release: (w) => fp4.releaseFp4Weights(w),
          into: (w) => fp4.repackPlaneWeights(new Uint8Array(32 * 64), new Int32Array(256), 6, new Float32Array(64), 32, 64, 32, w),
        };
        for (const [name, call] of Object.entries(calls)) {
          for (const fill of [0x41, 0]) {
            try { call(foreign.makeExternal(fill)); console.log(name, 'returned'); } catch (e) { console.log(name, e.constructor.name, e.message); }
          }
        }`;
      const run = spawnSync(process.execPath, ['-e', script, addonPath, addon], { encoding: 'utf8' });
      rmSync(dir, { recursive: true, force: true });
      expect(run.status, run.stderr).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines).toHaveLength(6);
      for (const line of lines) expect(line).toMatch(/^(matmul|release|into) TypeError \w+: weights must come from repackFp4Weights or repackPlaneWeights$/);
    });

    // The codes beside decoded values are a shortcut some kernels read instead of the values (the
    // aligned AVX-512 VBMI path): codes of other values made the product depend on the CPU. The
    // addon compares a sample (the first 16 codes of up to 64 rows), on every CPU.
    it('matmulDecoded refuses codes that are not the codes of the values (in its sample), and takes those that are', () => {
      const [m, n, kk] = [16, 16, 64];
      const ones = (rows: number) => new Float32Array(rows * kk).fill(1);
      const unit = (rows: number) => new Float32Array(rows * 2).fill(1);
      const out = new Float32Array(m * n);
      const decoded = (aCodes: Uint8Array, bCodes: Uint8Array) => call(() => k.matmul!.matmulDecoded!(ones(m), unit(m), m, 32, ones(n), unit(n), n, 32, kk, null, out, aCodes, 3, bCodes, 3));
      const err = decoded(new Uint8Array(m * kk).fill(0x40), new Uint8Array(n * kk).fill(0x38)); // 0x40 is E4M3 2.0
      expect(err).toBeInstanceOf(RangeError);
      expect(err!.message).toBe('matmulDecoded: aCodes[0] = 0x40 is not the code of a values[0] = 1');
      const bErr = decoded(new Uint8Array(m * kk).fill(0x38), Uint8Array.from({ length: n * kk }, (_, i) => (i === 77 ? 0xb8 : 0x38))); // −1.0 at 77
      expect(bErr!.message).toBe('matmulDecoded: bCodes[77] = 0xb8 is not the code of b values[77] = 1');
      expect(decoded(new Uint8Array(m * kk).fill(0x38), new Uint8Array(n * kk).fill(0x38))).toBeNull(); // 0x38 is 1.0
      expect(Array.from(out)).toEqual(new Array(m * n).fill(kk));
    });

    it('a product of no rows on every kind of weights returns without reading the activations (a null pointer went into memchr on split planes)', () => {
      const w = gaussian(64 * 256, 5, 0.05);
      for (const format of ['mxfp4', 'mxfp8_e4m3', 'mxint8', 'fgmp'] as const) {
        const handle = repackWeights(k.matmul!, format === 'fgmp' ? quantize(w, { format, shape: [64, 256] }) : quantize(w, { format, shape: [64, 256] }));
        expect(call(() => k.matmul!.matmulFp4Int8(handle as never, new Uint8Array(0), new Float32Array(0), 0, null, new Float32Array(0))), format).toBeNull();
        k.matmul!.releaseFp4Weights!(handle as never);
      }
    });

    it('a detached input is refused, not read', () => {
      const src = new Float32Array(64);
      structuredClone(src.buffer, { transfer: [src.buffer] });
      const err = call(() => k.quantizeBlocks(mxArgs(src, 0, 1, 64, 0, 0, 0, 0, data, scales)));
      expect(err).toBeInstanceOf(RangeError); // a detached view has length 0
      expect(err!.message).toMatch(/src holds 0 elements, 64 needed/);
    });
  });

  // In a child process with --expose-gc: the SharedArrayBuffer a job reads in place was kept alive
  // only through the argument object, so an array only a getter returned (or a field reassigned
  // after the call) was collected under the running job — a use-after-free, SIGSEGV in release.
  it('a job keeps alive the SharedArrayBuffer-backed arrays it uses in place, whoever else refers to them', () => {
    const script = `
      import ${JSON.stringify(new URL('../lib/index.ts', import.meta.url).pathname)};
      import { kernelsFor } from ${JSON.stringify(new URL('../lib/kernels/registry.ts', import.meta.url).pathname)};
      import { mxArgs } from ${JSON.stringify(new URL('./helpers/block-args.ts', import.meta.url).pathname)};
      const k = kernelsFor('native');
      const rows = 2048, cols = 4096, n = rows * cols;
      const fresh = () => { const a = new Float32Array(new SharedArrayBuffer(n * 4)); for (let i = 0; i < n; i += 97) a[i] = (i % 13) - 6; return a; };
      const want = { data: new Uint8Array(n / 2), scales: new Uint8Array(n / 32) };
      k.quantizeBlocks(mxArgs(fresh(), 0, rows, cols, 0, 0, 1, 7, want.data, want.scales));
      for (const round of [0, 1, 2]) {
        const outs = { data: new Uint8Array(new SharedArrayBuffer(n / 2)), scales: new Uint8Array(new SharedArrayBuffer(n / 32)) };
        const args = mxArgs(fresh(), 0, rows, cols, 0, 0, 1, 7, outs.data, outs.scales);
        const src = args.src;
        Object.defineProperty(args, 'src', { get: () => (round === 0 ? fresh() : src), enumerable: true });
        const job = k.quantizeBlocksAsync(args);
        if (round === 1) args.data = args.scales = null; // reassigned after the call
        const data = outs.data, scales = outs.scales;
        for (let i = 0; i < 4; i++) globalThis.gc();
        await job;
        if (Buffer.compare(Buffer.from(data.buffer), Buffer.from(want.data.buffer)) !== 0 || Buffer.compare(Buffer.from(scales.buffer), Buffer.from(want.scales.buffer)) !== 0) {
          console.error('FAILED: round ' + round + ' gave other bytes'); process.exitCode = 1;
        }
      }
      console.log('done');
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(out.trim()).toBe('done');
  });

  it('Promise variants give the same bytes as the synchronous kernels', async () => {
    const rows = 300, cols = 1000;
    const x = gaussian(rows * cols, 9);
    for (const rounding of [0, 1] as const) {
      const d1 = new Uint8Array(rows * 512), s1 = new Uint8Array(rows * 32);
      const d2 = new Uint8Array(rows * 512), s2 = new Uint8Array(rows * 32);
      k.quantizeBlocks(mxArgs(x, 0, rows, cols, 0, 0, rounding, 7, d1, s1));
      await k.quantizeBlocksAsync!(mxArgs(x, 0, rows, cols, 0, 0, rounding, 7, d2, s2));
      expect(Buffer.compare(d1, d2)).toBe(0);
      expect(Buffer.compare(s1, s2)).toBe(0);
      const n1 = new Uint8Array(rows * 504), c1 = new Uint8Array(rows * 63);
      const n2 = new Uint8Array(rows * 504), c2 = new Uint8Array(rows * 63);
      k.quantizeBlocks(nvfp4Args(x, 0, rows, cols, 1e-3, rounding, 7, n1, c1));
      await k.quantizeBlocksAsync!(nvfp4Args(x, 0, rows, cols, 1e-3, rounding, 7, n2, c2));
      expect(Buffer.compare(n1, n2)).toBe(0);
      expect(Buffer.compare(c1, c2)).toBe(0);
    }
  });

  it('fgmpCandidatesAsync equals fgmpCandidates, and the event loop runs while it works', async () => {
    // Enough work for tens of milliseconds: at 256 rows the job took 3–6 ms, and a 1 ms timer had
    // not always ticked before it settled (one CI run of many saw 0 ticks).
    const rows = 1024, cols = 1024, blocks = rows * (cols / 16);
    const x = gaussian(rows * cols, 21).map((v) => v * 0.01);
    const fisher = gaussian(rows * cols, 22).map(Math.abs);
    const make = () => ({ i: new Float64Array(blocks), c4: new Uint8Array(blocks * 16), s4: new Uint8Array(blocks), c8: new Uint8Array(blocks * 16) });
    const a = make(), b = make();
    k.fgmpCandidates!(x, 0, rows, cols, fisher, true, 1e-4, 1e-3, true, a.i, a.c4, a.s4, a.c8);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await k.fgmpCandidatesAsync!(x, 0, rows, cols, fisher, true, 1e-4, 1e-3, true, b.i, b.c4, b.s4, b.c8);
    clearInterval(timer);
    expect(Array.from(b.i)).toEqual(Array.from(a.i));
    expect(Buffer.compare(b.c4, a.c4) | Buffer.compare(b.s4, a.s4) | Buffer.compare(b.c8, a.c8)).toBe(0);
    expect(ticks).toBeGreaterThan(0); // the JS thread was free while the addon worked
  });

  it('a rejected Promise variant throws synchronously on bad arguments', () => {
    expect(() => k.quantizeBlocksAsync!(mxArgs(new Float32Array(10), 0, 1, 64, 0, 0, 0, 0, new Uint8Array(32), new Uint8Array(2)))).toThrow(RangeError);
  });

  // Every SIMD level and thread count must give the same bytes: run a digest in child processes.
  it('same bytes for FP4KIT_SIMD=scalar|avx2|default, FP4KIT_THREADS=1|2|3 and the js reference', () => {
    const script = `
      import { quantize, setBackend } from './lib/index.ts';
      import { createHash } from 'node:crypto';
      setBackend(process.env.DIGEST_BACKEND ?? 'native');
      const n = 700 * 1024; const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37) * 2 ** ((i % 41) - 20);
      const h = createHash('sha256');
      for (const format of ['mxfp4', 'nvfp4', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxint8']) {
        for (const rounding of ['nearest', 'stochastic']) {
          const q = quantize(x, { format, shape: [700, 1024], rounding, seed: 3 });
          h.update(q.data); h.update(q.scales);
        }
      }
      console.log(h.digest('hex'));`;
    const run = (env: Record<string, string>) =>
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' }).trim();
    const reference = run({});
    expect(reference).toMatch(/^[0-9a-f]{64}$/);
    for (const env of [{ FP4KIT_SIMD: 'scalar' }, { FP4KIT_SIMD: 'avx2' }, { FP4KIT_THREADS: '1' }, { FP4KIT_THREADS: '3' }]) {
      expect(run(env), JSON.stringify(env)).toBe(reference);
    }
    // and the same digest from the pure-TypeScript reference
    expect(run({ DIGEST_BACKEND: 'js' })).toBe(reference);
  }, 120_000);

  // Every matmul kernel (scalar, AVX2, AVX-512 with the vpshufb or the vpermb decoder) must give
  // the products' bits of the js reference, for every E2M1 weight format, few and many rows.
  it('same matmul bits for every forced matmul kernel and the js reference', () => {
    const script = `
      import { quantize, matmul, setBackend, getBackend } from './lib/index.ts';
      import { createHash } from 'node:crypto';
      setBackend(process.env.DIGEST_BACKEND ?? 'native');
      const [n, k] = [72, 640];
      const w = new Float32Array(n * k);
      for (let i = 0; i < w.length; i++) w[i] = Math.sin(i * 0.61) * 2 ** ((i % 23) - 12);
      const h = createHash('sha256');
      // FP4 tiles; byte planes (E4M3, E3M2, INT8; FGMP from 32 rows on); E5M2 decoded.
      for (const format of ['mxfp4', 'nvfp4', 'fgmp', 'mxfp8_e4m3', 'mxfp6_e3m2', 'mxint8', 'mxfp8_e5m2']) {
        const b = quantize(w, { format, shape: [n, k], ...(format === 'fgmp' ? { fp4Fraction: 0.7 } : {}) });
        for (const m of [1, 3, 8, 9, 64]) {
          const a = new Float32Array(m * k);
          for (let i = 0; i < a.length; i++) a[i] = Math.cos(i * 0.29 + m) * 2 ** ((i % 17) - 8);
          h.update(new Uint8Array(matmul(a, b).buffer));
        }
      }
      console.log((getBackend().matmulSimd ?? 'none') + ' ' + h.digest('hex'));`;
    const run = (env: Record<string, string>) =>
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' }).trim().split(' ');
    const [, reference] = run({ DIGEST_BACKEND: 'js' });
    expect(reference).toMatch(/^[0-9a-f]{64}$/);
    const kernels = new Set<string>();
    for (const env of [{}, { FP4KIT_SIMD: 'avx512' }, { FP4KIT_SIMD: 'avx2' }, { FP4KIT_SIMD: 'scalar' }]) {
      const [kernel, digest] = run(env);
      kernels.add(kernel);
      expect(digest, `${JSON.stringify(env)} (${kernel})`).toBe(reference);
    }
    expect(kernels.has('scalar')).toBe(true);
  }, 120_000);
});
