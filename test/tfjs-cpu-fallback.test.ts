// What the 'fp4kit' backend's wasm base cannot do runs on tfjs's cpu backend (lib/tfjs/cpu-fallback.ts):
// complex64 and string tensors, the kernels the wasm base lacks, and the calls it gets wrong. Each
// case here runs on tfjs's stock cpu backend and on 'fp4kit' and must give the same dtype, shape
// and bits (tfjs's own specs, test/tfjs-core-suite.test.ts, only check values within a tolerance);
// the stock wasm backend fails each of them (checked too, so a case that stops exercising the
// fallback is noticed). Plus: every cpu kernel exists on 'fp4kit', complex64 tensors move between
// backends and are freed, and nothing is left behind.

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { FP4KIT_BACKEND } from '../lib/tfjs/index.js';

type Result = { dtype: string; shape: number[]; values: number[] | string[] };

/** A tensor's dtype, shape and values (numbers as their float32 or int32 bits, strings as strings). */
function resultOf(t: tf.Tensor): Result {
  const data = t.dataSync() as unknown as ArrayLike<number> | string[];
  const values = t.dtype === 'string' ? Array.from(data as string[])
    : Array.from(new Uint32Array(t.dtype === 'int32' ? Int32Array.from(data as ArrayLike<number>).buffer : Float32Array.from(data as ArrayLike<number>).buffer));
  return { dtype: t.dtype, shape: t.shape, values };
}

async function on(backend: string, f: () => tf.Tensor | tf.Tensor[]): Promise<Result[] | string> {
  await tf.setBackend(backend);
  try {
    return tf.tidy(() => [f()].flat().map(resultOf));
  } catch (e) {
    return `throws: ${(e as Error).message}`;
  }
}

const lcg = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 97 + i * 13.7) * 3);
const complexOf = (n: number, seed: number, shape = [n]) => tf.complex(tf.tensor(lcg(n, seed), shape), tf.tensor(lcg(n, seed + 1), shape));

/** Calls the stock wasm backend cannot make or gets wrong (tfjs 4.22). */
const CASES: Record<string, () => tf.Tensor | tf.Tensor[]> = {
  'complex, real, imag': () => { const c = complexOf(6, 1, [2, 3]); return [tf.real(c), tf.imag(c)]; },
  'complex abs (own kernel)': () => tf.abs(complexOf(7, 2)),
  'complex add, sub, mul': () => { const a = complexOf(5, 3), b = complexOf(5, 4); return [tf.real(tf.add(a, b)), tf.imag(tf.sub(a, b)), tf.real(tf.mul(a, b)), tf.imag(tf.mul(a, b))]; },
  'fft, ifft (power of two and not)': () => [8, 6].flatMap((n) => { const f = tf.spectral.fft(complexOf(2 * n, n, [2, n])); const g = tf.spectral.ifft(f); return [tf.real(f), tf.imag(f), tf.real(g), tf.imag(g)]; }),
  'rfft, irfft': () => { const r = tf.spectral.rfft(tf.tensor(lcg(16, 5), [2, 8])); return [tf.real(r), tf.imag(r), tf.spectral.irfft(r)]; },
  'stft (frames, window, fft)': () => { const s = tf.signal.stft(tf.tensor1d(lcg(64, 6)), 16, 8); return [tf.real(s), tf.imag(s)]; },
  'complex concat, stack, transpose, reshape, clone, cast': () => {
    const c = tf.concat([complexOf(6, 7, [2, 3]), complexOf(6, 8, [2, 3])], 1);
    const t = tf.stack([tf.transpose(c).reshape([2, 6]).clone(), c]);
    return [tf.real(t), tf.imag(t), tf.cast(t, 'float32')];
  },
  'complex zerosLike, onesLike': () => { const c = complexOf(4, 9); return [tf.real(tf.onesLike(c)), tf.imag(tf.zerosLike(c))]; },
  'string fill, tile, squeeze': () => [tf.fill([2, 2], 'ab'), tf.tile(tf.tensor(['a', 'b']), [3]), tf.squeeze(tf.tensor([['x'], ['y']]))],
  'string comparisons': () => { const a = tf.tensor(['a', 'b', 'c']), b = tf.tensor(['b', 'b', 'a']); return [tf.equal(a, b), tf.less(a, b), tf.greaterEqual(a, b)]; },
  'string sparseToDense': () => tf.sparseToDense(tf.tensor1d([0, 2], 'int32'), tf.tensor1d(['p', 'q']), [4], tf.scalar('-')),
  'staticRegexReplace': () => tf.string.staticRegexReplace(tf.tensor(['aab', 'xbab']), 'a+', '_'),
  'raggedGather': () => tf.raggedGather([tf.tensor1d([0, 3, 3, 7, 9], 'int32')], tf.tensor1d(lcg(9, 10)), tf.tensor1d([3, 0], 'int32'), 1).outputNestedSplits.concat(
    tf.raggedGather([tf.tensor1d([0, 3, 3, 7, 9], 'int32')], tf.tensor1d(lcg(9, 10)), tf.tensor1d([3, 0], 'int32'), 1).outputDenseValues),
  'raggedRange': () => { const r = tf.raggedRange(tf.tensor1d([2, 5], 'int32'), tf.tensor1d([8, 7], 'int32'), tf.tensor1d([2, 1], 'int32')); return [r.rtNestedSplits, r.rtDenseValues]; },
  'raggedTensorToTensor': () => tf.raggedTensorToTensor(tf.tensor1d([2, 3], 'int32'), tf.tensor1d(lcg(6, 11)), tf.scalar(0), [tf.tensor1d([0, 3, 3, 6], 'int32')], ['ROW_SPLITS']),
  'cast to bool': () => [tf.cast(tf.tensor([0, 3, -0.5, NaN]), 'bool'), tf.cast(tf.tensor([0, 7], undefined, 'int32'), 'bool')],
  'clipByValue passes NaN (own kernel)': () => tf.clipByValue(tf.tensor([NaN, -5, 0.25, 9, -Infinity]), -1, 1),
  'pools with a number padding': () => { const x = tf.tensor3d(lcg(12, 12), [2, 2, 3]); return [tf.pool(x, 1, 'max', 1, undefined, 2), tf.pool(x, 1, 'avg', 1, undefined, 2), tf.maxPool(x, 2, 1, 1)]; },
  'bincount of a rank-3 x (image.threshold otsu)': () => tf.image.threshold(tf.tensor3d(lcg(48, 13).map((v) => Math.round(Math.abs(v) * 80)), [4, 4, 3], 'int32'), 'otsu'),
  'fused depthwise conv with a broadcast bias': () => tf.fused.depthwiseConv2d({ x: tf.tensor4d(lcg(18, 14), [1, 3, 3, 2]), filter: tf.tensor4d(lcg(8, 15), [2, 2, 2, 1]), strides: 1, pad: 'valid', bias: tf.scalar(0.5), activation: 'relu' }),
  'matMul of bool tensors': () => tf.matMul(tf.tensor2d([[1, 0], [1, 1]], [2, 2], 'bool'), tf.tensor2d([[1, 1], [0, 1]], [2, 2], 'bool')),
};

describe("the 'fp4kit' backend does what its wasm base cannot, as tfjs's cpu backend does", () => {
  it('has every kernel the cpu backend has', async () => {
    await tf.setBackend(FP4KIT_BACKEND);
    const own = new Set(tf.getKernelsForBackend(FP4KIT_BACKEND).map((k) => k.kernelName));
    expect(tf.getKernelsForBackend('cpu').map((k) => k.kernelName).filter((k) => !own.has(k))).toEqual([]);
  });

  it.each(Object.keys(CASES))('%s: the cpu backend\'s dtype, shape and bits, where stock wasm fails', async (name) => {
    const cpu = await on('cpu', CASES[name]);
    expect(typeof cpu, String(cpu)).not.toBe('string');
    expect(await on(FP4KIT_BACKEND, CASES[name])).toEqual(cpu);
    expect(await on('wasm', CASES[name])).not.toEqual(cpu);
  });

  it('a slice out of bounds is refused with the cpu backend\'s message', async () => {
    const cpu = await on('cpu', () => tf.slice(tf.ones([2, 3]), [1, 1], [2, 2]));
    expect(cpu).toMatch(/^throws: .*slice/i);
    expect(await on(FP4KIT_BACKEND, () => tf.slice(tf.ones([2, 3]), [1, 1], [2, 2]))).toEqual(cpu);
  });

  it('complex tensors move in from another backend, read back, and are freed; the fallback leaves no tensor behind', async () => {
    await tf.setBackend('cpu');
    const made = complexOf(5, 20);
    const bits = resultOf(made);
    await tf.setBackend(FP4KIT_BACKEND);
    const backend = tf.backend();
    const [tensorsBefore, dataBefore] = [tf.memory().numTensors, backend.numDataIds()];
    for (let round = 0; round < 3; round++) {
      tf.tidy(() => {
        expect(resultOf(tf.real(made))).toEqual(resultOf(tf.tensor(lcg(5, 20))));
        const c = tf.mul(made, complexOf(5, 21));
        expect(resultOf(c).values).toHaveLength(10);
        expect(Array.from(tf.spectral.ifft(tf.spectral.fft(c)).shape)).toEqual([5]);
        expect(c.toString()).toMatch(/ \+ /); // printed as complex numbers
      });
    }
    expect(resultOf(made)).toEqual(bits); // moved into the wasm heap as interleaved pairs
    expect(await made.data()).toEqual(made.dataSync());
    made.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore - 1);
    expect(backend.numDataIds()).toBe(dataBefore); // `made` had not moved in yet then: its copy is freed too
  });
});
