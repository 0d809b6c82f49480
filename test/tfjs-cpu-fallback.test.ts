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
import { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND } from '../lib/tfjs/index.js';

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
  // Found by an audit of models and ops beyond tfjs's specs (2026-12-07):
  'conv3d gradients and conv3dTranspose (depth slices were dropped)': () => {
    const x = tf.tensor5d(lcg(2 * 5 * 4 * 5 * 2, 16), [2, 5, 4, 5, 2]);
    const cases: Array<[number, 'valid' | 'same']> = [[1, 'valid'], [2, 'same'], [2, 'valid']];
    return cases.flatMap(([stride, pad]) => {
      const filter = tf.tensor5d(lcg(2 * 2 * 3 * 2 * 3, 17 + stride), [2, 2, 3, 2, 3]);
      const dys = tf.conv3d(x, filter, stride, pad);
      const dy = tf.tensor(lcg(dys.size, 19), dys.shape);
      const [dx, df] = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.mul(tf.conv3d(a as tf.Tensor5D, f as tf.Tensor5D, stride, pad), dy))([x, filter]);
      return [dx, df, tf.conv3dTranspose(dy as tf.Tensor5D, filter as tf.Tensor5D, x.shape as [number, number, number, number, number], stride, pad)];
    });
  },
  'int32 clipByValue, prelu, reciprocal, isNaN, isFinite (int32 read as float32 bits)': () => {
    const a = tf.tensor2d([[-3, -1, 0, 1], [2, 3, 7, -8]], [2, 4], 'int32');
    return [tf.clipByValue(a, -1, 2), tf.prelu(a, tf.tensor1d([1, 2, 3, 4], 'int32')), tf.reciprocal(a), tf.isNaN(a), tf.isFinite(a)];
  },
  'int32 maxPool, resizeNearestNeighbor, stridedSlice, pow overflow; bool stridedSlice and reverse': () => {
    const img = tf.tensor4d(Array.from({ length: 18 }, (_, i) => ((i * 7) % 11) - 5), [1, 3, 3, 2], 'int32');
    const a = tf.tensor2d([[-3, -1, 0, 1], [2, 3, 7, -8], [5, -5, 100, 9]], [3, 4], 'int32');
    const b = tf.tensor2d([[1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 1, 0]], [3, 4], 'bool');
    return [tf.maxPool(img, 2, 1, 'valid'), tf.image.resizeNearestNeighbor(img, [4, 5]), tf.stridedSlice(a, [2, 3], [0, 0], [-1, -2]),
      tf.pow(tf.tensor1d([65536, 46341, -3], 'int32'), tf.tensor1d([2, 2, 3], 'int32')), tf.stridedSlice(b, [0, 0], [3, 4], [2, 3]), tf.reverse(b, 1)];
  },
  // Found by a second audit (2026-12-07): the base's running maximum starts at the smallest positive float.
  'maxPool3d (float32, int32) and its gradient, maxPoolWithArgmax, dilation2d and its gradients where a window\'s maximum is negative': () => {
    const values = Array.from({ length: 2 * 3 * 4 * 4 * 2 }, (_, i) => -1 - ((i * 7) % 11) * 0.5);
    const x5 = tf.tensor5d(values, [2, 3, 4, 4, 2]);
    const x4 = tf.tensor4d(values.slice(0, 2 * 5 * 5 * 2), [2, 5, 5, 2]);
    const filter = tf.tensor3d(lcg(2 * 2 * 2, 32).map((v) => -Math.abs(v)), [2, 2, 2]);
    const [dx, df] = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.mul(tf.dilation2d(a as tf.Tensor4D, f as tf.Tensor3D, 1, 'same'), tf.tensor(lcg(100, 33), [2, 5, 5, 2])))([x4, filter]);
    const argmax = tf.maxPoolWithArgmax(x4, 2, 2, 'valid');
    return [tf.maxPool3d(x5, 2, 1, 'same'), tf.maxPool3d(tf.cast(x5, 'int32'), 2, 1, 'valid'),
      tf.grad((a: tf.Tensor) => tf.mul(tf.maxPool3d(a as tf.Tensor5D, 2, 1, 'same'), tf.tensor(lcg(192, 34), [2, 3, 4, 4, 2])))(x5),
      argmax.result, argmax.indexes, tf.dilation2d(x4, filter, 1, 'valid'), dx, df];
  },
  'reductions over an empty axis (sum, mean, max, min, prod, all, any) and their compositions': () => {
    const x = tf.zeros([3, 0, 2]);
    const n = tf.zeros([3, 0], 'int32');
    return [tf.sum(x, 1), tf.sum(n, 1), tf.sum(x), tf.mean(x, [0, 1]), tf.max(x, 1), tf.min(n, 1), tf.prod(x, 1), tf.prod(n, 1),
      tf.all(tf.cast(n, 'bool'), 1), tf.any(tf.cast(n, 'bool'), 1), tf.logSumExp(x, 1), tf.norm(x, 2, 1), tf.moments(x, 1).variance];
  },
  'transpose and gather of an empty tensor, einsum with a batch of 0, cumsum and cumprod of bool': () => {
    const b = tf.tensor2d([[1, 0, 1], [1, 1, 0]], [2, 3], 'bool');
    return [tf.transpose(tf.zeros([0, 3, 5]), [0, 2, 1]), tf.gather(tf.zeros([3, 0, 2]), tf.tensor1d([0, 2], 'int32'), 0),
      tf.einsum('bij,bjk->bik', tf.zeros([0, 2, 3]), tf.zeros([0, 3, 4])), tf.cumsum(b, 1), tf.cumprod(b, 1, true, true)];
  },
  // Found by a differential fuzz against cpu (2026-12-07):
  'depthwise convolutions whose stride exceeds the filter (XNNPACK returned zeros), plain and fused': () => {
    const x = tf.tensor4d(lcg(2 * 6 * 4 * 2, 40), [2, 6, 4, 2]);
    const filter = tf.tensor4d(lcg(2 * 2 * 2 * 2, 41), [2, 2, 2, 2]);
    return [tf.depthwiseConv2d(x, filter, 3, 'same'), tf.depthwiseConv2d(x, filter, [1, 4], 'same'),
      tf.fused.depthwiseConv2d({ x, filter, strides: 3, pad: 'same', bias: tf.tensor1d(lcg(4, 42)), activation: 'relu' })];
  },
  'maxPool of an x holding NaN (cpu skips NaN)': () => tf.maxPool(tf.tensor4d([1, NaN, 3, 2, -Infinity, 5, NaN, 0, 7], [1, 3, 3, 1]), 2, 1, 'valid'),
  'depthwise conv and avgPool of an x holding NaN, depthwise conv with NaN in an unpadded filter (XNNPACK gave −Inf)': () => {
    const x = tf.tensor4d([1, NaN, 3, 4, Infinity, -2, 0, 5, 6], [1, 3, 3, 1]);
    return [tf.depthwiseConv2d(x, tf.tensor4d([2], [1, 1, 1, 1]), 1, 'valid'), tf.avgPool(x, 2, 1, 'valid'),
      tf.depthwiseConv2d(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]), tf.tensor4d([NaN], [1, 1, 1, 1]), 1, 'valid')];
  },
  'rotateWithOffset with a fill other than 0 (the base filled 0.25 as 0, and a fourth channel with 255)': () => {
    const rgb = tf.tensor4d(lcg(48, 62), [1, 4, 4, 3]);
    return [tf.image.rotateWithOffset(rgb, 0.8, 0.25), tf.image.rotateWithOffset(rgb, 2, [0.1, 0.2, 0.3], [0.3, 0.7]),
      tf.image.rotateWithOffset(tf.tensor4d(lcg(64, 63), [1, 4, 4, 4]), 0.8, 0.5)];
  },
  'int32 asin, acos, sinh, asinh, acosh, atanh, expm1, log1p; int32 division by zero (floorDiv, div)': () => {
    const a = tf.tensor1d([-3, -1, 0, 1, 2, 7], 'int32');
    const b = tf.tensor1d([2, 0, 3, 0, -1, 2], 'int32');
    return [tf.asin(a), tf.acos(a), tf.sinh(a), tf.asinh(a), tf.acosh(a), tf.atanh(a), tf.expm1(a), tf.log1p(a), tf.floorDiv(a, b), tf.div(a, b)];
  },
};

/**
 * Calls after which the stock wasm backend is broken for good (an out-of-bounds write, a trap, an
 * abort: every later call of that instance fails), so stock wasm is not run on them here; 'fp4kit'
 * must give cpu's result and still work afterwards.
 */
const BREAKING: Record<string, () => tf.Tensor | tf.Tensor[]> = {
  'a depthwise convolution and pools with an empty output (a window larger than the image)': () => {
    const x = tf.tensor4d(lcg(2 * 3 * 2 * 2, 43), [2, 3, 2, 2]);
    return [tf.depthwiseConv2d(x, tf.tensor4d(lcg(18, 44), [3, 3, 2, 1]), 1, 'valid'), tf.maxPool(x, 3, 3, 'valid'), tf.avgPool(x, 3, 3, 'valid')];
  },
  'ops on empty inputs: transpose, gather, pad, concat, tile, depthwise conv, cumsum, topk': () => {
    const e = tf.zeros([3, 0, 2]);
    return [tf.transpose(e, [2, 0, 1]), tf.gather(e, tf.tensor1d([0, 2], 'int32'), 0), tf.pad(e, [[1, 0], [1, 1], [0, 0]], 5),
      tf.concat([e, tf.ones([3, 2, 2])], 1), tf.tile(e, [2, 1, 3]), tf.depthwiseConv2d(tf.zeros([0, 4, 4, 2]) as tf.Tensor4D, tf.ones([2, 2, 2, 1]) as tf.Tensor4D, 1, 'same'),
      tf.cumsum(e, 1), tf.topk(tf.zeros([0, 4]), 2).values];
  },
  'cumsum and cumprod with a negative axis (tfjs takes none: cpu returns a malformed tensor)': () => [tf.cumsum(tf.ones([2, 3]), -1), tf.cumprod(tf.ones([2, 3]), -2)],
  'int32 mod by zero (the base trapped: "remainder by zero")': () => tf.mod(tf.tensor1d([7, -7, 5], 'int32'), tf.tensor1d([0, 3, 0], 'int32')),
  'bincount of a negative value (cpu refuses it; the base aborted)': () => tf.bincount(tf.tensor1d([1, -1, 3], 'int32'), tf.tensor1d([], 'float32'), 4),
  // Found by a differential fuzz of the base's XNNPACK windows against cpu (2026-12-07,
  // lib/tfjs/xnnpack-geometry.ts): XNNPACK sizes the output by its own rule, tfjs allocates by its own.
  'depthwise convolutions with a number padding and a dilated or non-square filter (tfjs sizes the output from the filter\'s height: XNNPACK wrote past it)': () => {
    const x = tf.tensor4d(lcg(42, 50), [1, 6, 7, 1]);
    const filter = tf.tensor4d(lcg(16, 51), [4, 2, 1, 2]);
    return [tf.depthwiseConv2d(x, filter, 1, 2, 'NHWC', [2, 1]),
      tf.fused.depthwiseConv2d({ x, filter, strides: 1, pad: 1, dilations: [1, 2], bias: tf.tensor1d([0.5, -0.5]), activation: 'relu' }),
      tf.depthwiseConv2d(x, tf.tensor4d(lcg(6, 52), [3, 1, 1, 2]), [1, 2], 1)];
  },
  'pools whose window is wider than the image (a padding of 0: XNNPACK read past the input)': () => {
    const x = tf.tensor4d(lcg(24, 53), [2, 6, 1, 2]);
    return [tf.maxPool(x, [1, 2], [1, 2], 0), tf.avgPool(x, [1, 2], [1, 2], 0)];
  },
  'pools with a padding of 0 and dimRoundingMode ceil or round (a larger output than XNNPACK\'s)': () => {
    const x = tf.tensor4d(lcg(50, 54), [2, 5, 5, 1]);
    return [tf.maxPool(x, 2, 2, 0, 'ceil'), tf.avgPool(x, 2, 2, 0, 'ceil'), tf.maxPool(x, [3, 1], [2, 1], 0, 'round')];
  },
  'avgPool\'s gradient with a number padding and dimRoundingMode (the base read dY by the sizes without the mode)': () => {
    const x = tf.tensor4d(lcg(16, 55), [2, 8, 1, 1]);
    const dy = tf.tensor(lcg(36, 56), [2, 6, 3, 1]);
    return tf.grad((a: tf.Tensor) => tf.mul(tf.avgPool(a as tf.Tensor4D, [2, 3], [2, 1], 2, 'ceil'), dy))(x);
  },
};

/** Convolutions whose zero padding meets NaN or ±Inf (a diverged run): tfjs cpu skips the padding's
 *  taps, a product over im2col's zeros (fp4kit's own kernels, XNNPACK's depthwise) made 0·Inf = NaN
 *  at the image borders. Both fp4kit variants must give cpu's bits. */
const NON_FINITE_PADDING: Record<string, () => tf.Tensor | tf.Tensor[]> = {
  'conv2d, fused conv2d and depthwise conv2d with ±Inf/NaN in the filter, padding same': () => {
    const x = tf.tensor4d(lcg(2 * 4 * 4 * 2, 21), [2, 4, 4, 2]);
    const f = lcg(3 * 3 * 2 * 3, 22);
    f[0] = Infinity;
    f[7] = -Infinity;
    f[20] = NaN;
    const filter = tf.tensor4d(f, [3, 3, 2, 3]);
    const dwFilter = tf.tensor4d(f.slice(0, 18), [3, 3, 2, 1]);
    return [tf.conv2d(x, filter, 1, 'same'), tf.conv2d(tf.transpose(x, [0, 3, 1, 2]), filter, 1, 'same', 'NCHW'),
      tf.fused.conv2d({ x, filter, strides: 1, pad: 'same', bias: tf.tensor1d([0.5, -1, 2]), activation: 'relu' }), tf.depthwiseConv2d(x, dwFilter, 1, 'same')];
  },
  "conv2d's filter gradient with ±Inf in dY, padding same": () => {
    const x = tf.tensor4d(lcg(2 * 4 * 4 * 2, 23), [2, 4, 4, 2]);
    const dy = lcg(2 * 4 * 4 * 3, 24);
    dy[5] = Infinity;
    dy[40] = -Infinity;
    return tf.grad((f: tf.Tensor) => tf.mul(tf.conv2d(x, f as tf.Tensor4D, 1, 'same'), tf.tensor(dy, [2, 4, 4, 3])))(tf.tensor4d(lcg(18 * 3, 25), [3, 3, 2, 3]));
  },
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

  it.each(Object.keys(BREAKING))('%s: the cpu backend\'s result, and the backend works afterwards', async (name) => {
    const cpu = await on('cpu', BREAKING[name]);
    expect(await on(FP4KIT_BACKEND, BREAKING[name])).toEqual(cpu);
    const after = () => tf.add(tf.tensor1d([1, 2, 3]), tf.tensor1d([10, 20, 30]));
    expect(await on(FP4KIT_BACKEND, after)).toEqual(await on('cpu', after));
  });

  it.each(Object.keys(NON_FINITE_PADDING))('%s: the cpu backend\'s bits on both fp4kit backends', async (name) => {
    const cpu = await on('cpu', NON_FINITE_PADDING[name]);
    expect(typeof cpu, String(cpu)).not.toBe('string');
    expect(JSON.stringify(cpu)).toMatch(/2139095040|4286578688/); // ±Inf reached the output somewhere: the case is a non-finite one
    expect(await on(FP4KIT_BACKEND, NON_FINITE_PADDING[name])).toEqual(cpu);
    expect(await on(FP4KIT_CPU_BACKEND, NON_FINITE_PADDING[name])).toEqual(cpu);
  });

  it('a convolution whose window is larger than the padded image (tfjs gives the output negative sizes) gives cpu\'s zeros on both fp4kit backends', async () => {
    const call = () => [tf.conv2d(tf.tensor4d(lcg(4, 58), [1, 2, 2, 1]), tf.tensor4d(lcg(16, 59), [4, 4, 1, 1]), 1, 'valid'),
      tf.fused.conv2d({ x: tf.tensor4d(lcg(96, 60), [2, 3, 4, 4]), filter: tf.tensor4d(lcg(192, 61), [4, 4, 4, 3]), strides: 1, pad: 0, dilations: [2, 1], bias: tf.tensor1d([1, 2, 3]) })];
    const cpu = await on('cpu', call);
    expect(typeof cpu === 'string' ? cpu : cpu.map((r) => r.shape)).toEqual([[1, -1, -1, 1], [2, -3, -2, 3]]);
    for (const backend of [FP4KIT_BACKEND, FP4KIT_CPU_BACKEND]) expect(await on(backend, call), backend).toEqual(cpu);
  });

  it('a fused bias of higher rank than the product gives the output cpu gives: [1,1,1,1,C] on a conv2d broadcasts it to rank 5, [1,1,1,N] on a matMul does not', async () => {
    const call = () => {
      const x = tf.tensor4d(lcg(2 * 3 * 3 * 2, 26), [2, 3, 3, 2]);
      const conv = tf.fused.conv2d({ x, filter: tf.tensor4d(lcg(8 * 4, 27), [2, 2, 2, 4]), strides: 1, pad: 'same', bias: tf.tensor(lcg(4, 28), [1, 1, 1, 1, 4]) as never });
      const mm = tf.fused.matMul({ a: tf.tensor2d(lcg(6, 29), [2, 3]), b: tf.tensor2d(lcg(12, 30), [3, 4]), bias: tf.tensor(lcg(4, 31), [1, 1, 1, 4]) });
      return [conv, mm];
    };
    const cpu = await on('cpu', call);
    expect(typeof cpu === 'string' ? cpu : cpu.map((r) => r.shape)).toEqual([[1, 2, 3, 3, 4], [2, 4]]);
    for (const backend of [FP4KIT_BACKEND, FP4KIT_CPU_BACKEND]) {
      const got = await on(backend, call);
      expect(typeof got === 'string' ? got : got.map((r) => r.shape), backend).toEqual([[1, 2, 3, 3, 4], [2, 4]]);
    }
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

  it('a complex tensor made on fp4kit works on fp4kit-cpu, and back (tfjs cpu\'s own move loses it: "reading \'real\'")', async () => {
    await tf.setBackend('cpu');
    const want = tf.tidy(() => { const c = complexOf(6, 30, [2, 3]); return [resultOf(c), resultOf(tf.real(tf.mul(c, c))), resultOf(tf.imag(tf.mul(c, c)))]; });
    await tf.setBackend(FP4KIT_BACKEND);
    const made = complexOf(6, 30, [2, 3]);
    await tf.setBackend(FP4KIT_CPU_BACKEND);
    const cpu = tf.backend();
    const before = cpu.numDataIds();
    expect(tf.tidy(() => [resultOf(made), resultOf(tf.real(tf.mul(made, made))), resultOf(tf.imag(tf.mul(made, made)))])).toEqual(want);
    expect(cpu.numDataIds()).toBe(before + 3); // moved in: the complex entry and its two parts
    await tf.setBackend(FP4KIT_BACKEND);
    expect(resultOf(made)).toEqual(want[0]);
    expect(tf.tidy(() => resultOf(tf.real(tf.mul(made, made))))).toEqual(want[1]);
    expect(cpu.numDataIds()).toBe(before); // moved back: the cpu side's entry and its parts are freed
    made.dispose();
  });
});
