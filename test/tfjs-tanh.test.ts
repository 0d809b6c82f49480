// Tanh on the 'fp4kit' backend's wasm base (lib/tfjs/kernels/tanh.ts): musl's tanhf, the function
// tfjs's wasm backend calls, restated in TypeScript (lib/tfjs/tanh.ts, float32 rounding after every
// operation) and in C++ (native/tanh.h). Tested on float32 values across the whole bit space: the
// TypeScript port gives stock tfjs wasm's bits (the independent reference: tfjs's own WebAssembly
// build of musl), the addon's loop the port's bits (and so wasm's) — its AVX-512 form (every branch
// per lane, selected) and the scalar loop (CI reruns this file at each FP4KIT_SIMD level) — and
// tf.tanh on 'fp4kit' wasm's bits whether the addon runs it or the base does. Plus the addon's
// argument checks.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { withBackend } from '../lib/index.js';
import { getKernels } from '../lib/kernels/registry.js';
import { FP4KIT_BACKEND } from '../lib/tfjs/index.js';
import { tanhInto } from '../lib/tfjs/tanh.js';
import { testedBackends } from './helpers/backends.js';

/** Every 4099th float32 bit pattern (all exponents, both signs, NaNs with payloads, ±Inf, subnormals), a dense
 *  sweep of [-12, 12] across tanhf's branch points, and the branch points' neighbours. */
function inputs(): Float32Array {
  const strided = Uint32Array.from({ length: Math.floor(2 ** 32 / 4099) }, (_v, i) => i * 4099);
  const sweep = Float32Array.from({ length: 1 << 18 }, (_v, i) => (i / (1 << 18) - 0.5) * 24);
  const edges = [0x3f0c9f54, 0x3e82c578, 0x00800000, 0x41200000, 0x4195b844, 0x3eb17218, 0x3f851592, 0x33000000, 0x7f800000, 0x7fc00000, 0]
    .flatMap((w) => [w - 1, w, w + 1].flatMap((v) => [v >>> 0, (v | 0x80000000) >>> 0]));
  const x = new Float32Array(strided.length + sweep.length + edges.length);
  new Uint32Array(x.buffer).set(strided);
  x.set(sweep, strided.length);
  new Uint32Array(x.buffer, (strided.length + sweep.length) * 4).set(edges);
  return x;
}

/** Indices where two float32 arrays differ in their bits (at most `limit`). */
function bitDifferences(a: Float32Array, b: Float32Array, x: Float32Array, limit = 5): string[] {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const ux = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out: string[] = [];
  for (let i = 0; i < a.length && out.length < limit; i++) if (ua[i] !== ub[i]) out.push(`x=0x${ux[i].toString(16)}: 0x${ua[i].toString(16)} vs 0x${ub[i].toString(16)}`);
  return out;
}

const X = inputs();

async function onTfjs(backend: string, x: Float32Array): Promise<Float32Array> {
  await tf.setBackend(backend);
  return tf.tidy(() => tf.tanh(tf.tensor1d(x)).dataSync() as Float32Array);
}

describe("tanhf: tfjs wasm's bits", () => {
  it(`the TypeScript port of musl's tanhf gives stock tfjs wasm's bits on ${X.length} inputs`, async () => {
    const port = new Float32Array(X.length);
    tanhInto(X, port);
    expect(bitDifferences(port, await onTfjs('wasm', X), X)).toEqual([]);
  });

  it("the addon's tanhFloat32 gives the port's bits (1 and several threads' worth of elements, in place too)", () => {
    const native = withBackend('native', () => getKernels().tanhFloat32);
    if (!testedBackends().includes('native')) return; // no addon on this machine: nothing of it to test
    expect(native).toBeDefined();
    const port = new Float32Array(X.length);
    tanhInto(X, port);
    const out = new Float32Array(X.length);
    native!(X, X.length, out);
    expect(bitDifferences(out, port, X)).toEqual([]);
    const small = X.slice(1000, 1037);
    const inPlace = small.slice();
    native!(inPlace, inPlace.length, inPlace);
    expect(bitDifferences(inPlace, port.subarray(1000, 1037), small)).toEqual([]);
    const tail = new Float32Array(40).fill(7);
    native!(X, 30, tail); // n elements written, the rest untouched
    expect(bitDifferences(tail.subarray(0, 30), port.subarray(0, 30), X)).toEqual([]);
    expect(Array.from(tail.subarray(30))).toEqual(new Array(10).fill(7));
  });

  it("tf.tanh on 'fp4kit' gives stock wasm's bits, large (the addon when loaded) and small (the base's kernel)", async () => {
    const wasm = await onTfjs('wasm', X);
    expect(bitDifferences(await onTfjs(FP4KIT_BACKEND, X), wasm, X)).toEqual([]);
    const few = X.slice(5000, 5100);
    expect(bitDifferences(await onTfjs(FP4KIT_BACKEND, few), wasm.subarray(5000, 5100), few)).toEqual([]);
    // and its gradient (1 − y², the base's kernels) with it
    await tf.setBackend(FP4KIT_BACKEND);
    const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.tanh(t))(tf.tensor1d(X.subarray(0, 4096))).dataSync() as Float32Array);
    await tf.setBackend('wasm');
    const want = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.tanh(t))(tf.tensor1d(X.subarray(0, 4096))).dataSync() as Float32Array);
    expect(bitDifferences(g, want, X)).toEqual([]);
  });
});

describe.runIf(testedBackends().includes('native'))("the addon's tanhFloat32 refuses bad arguments (checked in C++)", () => {
  const native = () => withBackend('native', () => getKernels().tanhFloat32)!;
  const call = (...args: unknown[]) => () => (native() as (...a: unknown[]) => void)(...args);
  it('wrong kinds, short arrays, bad n, partly overlapping views', () => {
    const x = new Float32Array(64), out = new Float32Array(64);
    expect(call(x, 64)).toThrow(/expected 3 arguments/);
    expect(call(new Int32Array(64), 64, out)).toThrow(/x must be a Float32Array/);
    expect(call(x, 64, new Float64Array(64))).toThrow(/out must be a Float32Array/);
    expect(call(x, 65, out)).toThrow(/x holds 64 values, 65 needed/);
    expect(call(x, 64, out.subarray(1))).toThrow(/out holds 63 values, 64 needed/);
    for (const n of [-1, 1.5, NaN, 2 ** 60, '8']) expect(call(x, n, out), String(n)).toThrow(/n must be/);
    expect(call(x.subarray(0, 32), 32, x.subarray(16, 48))).toThrow(/overlap/);
    x.fill(0.5);
    call(x, 0, out)(); // nothing to do
    expect(out[0]).toBe(0);
  });
});
