// The two fp4kit backends for TensorFlow.js. Each is a stock tfjs backend instance — so every op
// fp4kit does not implement runs on that backend's own kernels, over the same tensor storage —
// registered under a new name with all of the base's kernels copied and the products replaced:
//
//   'fp4kit'      base: tfjs's wasm backend (XNNPACK, SIMD): the fastest base for whole models,
//                 since after the products the elementwise ops dominate and wasm runs them
//                 several times faster than cpu (training steps 1.8–5× faster, docs/tfjs.md). It
//                 lacks Conv2DBackpropFilter, both depthwise-convolution gradients,
//                 UnsortedSegmentSum and Einsum, and gets MaxPoolGrad and
//                 ResizeNearestNeighborGrad wrong in places; fp4kit provides them. It also
//                 replaces two of its slow paths a training step meets: Sum over leading axes
//                 (no transpose), Pow by 2 or 3 (no powf) and Tanh (its own tanhf, natively).
//                 What it cannot do at all —
//                 complex64 and string tensors, Ragged* and StaticRegexReplace, a few calls it
//                 gets wrong — runs on tfjs's cpu backend (cpu-fallback.ts).
//   'fp4kit-cpu'  base: tfjs's cpu backend (plain JavaScript): simpler, and runs where the wasm
//                 backend cannot load.
//
// Both register with priority 0, below tfjs's own backends: importing fp4kit never changes which
// backend a program uses; tf.setBackend('fp4kit') does.

import type { KernelBackend, KernelConfig } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { completeWithCpu, moveComplexIntoParts, readComplexFromHeap } from './cpu-fallback.js';
import { weightCacheOf } from './kernel-context.js';
import { dataFreed, dataMoved } from './weight-slices.js';
import type { WeightCache } from './weight-cache.js';
import { batchMatMulKernel } from './kernels/batch-mat-mul.js';
import { clipByValueKernel } from './kernels/clip-by-value.js';
import { complexAbsKernel } from './kernels/complex-abs.js';
import { conv2dBackpropFilterKernel } from './kernels/conv2d-backprop-filter.js';
import { conv2dBackpropInputKernel } from './kernels/conv2d-backprop-input.js';
import { conv2dKernel } from './kernels/conv2d.js';
import { depthwiseConv2dBackpropFilterKernel } from './kernels/depthwise-conv2d-backprop-filter.js';
import { depthwiseConv2dBackpropInputKernel } from './kernels/depthwise-conv2d-backprop-input.js';
import { einsumKernel } from './kernels/einsum.js';
import { fusedConv2dKernel } from './kernels/fused-conv2d.js';
import { fusedMatMulKernel } from './kernels/fused-mat-mul.js';
import { FUSED_ACTIVATION_KERNELS, withDefaultLeakyreluAlpha } from './leakyrelu-alpha.js';
import { identityKernel } from './kernels/identity.js';
import { maxPoolGradKernel } from './kernels/max-pool-grad.js';
import { resizeNearestNeighborGradKernel } from './kernels/resize-nearest-neighbor-grad.js';
import { transformKernel } from './kernels/transform.js';
import { transposeKernel } from './kernels/transpose.js';
import { castKernel } from './kernels/cast.js';
import { sliceKernel } from './kernels/slice.js';
import { splitVKernel } from './kernels/split-v.js';
import { sumKernel } from './kernels/sum.js';
import { tanhKernel } from './kernels/tanh.js';
import { powKernel } from './kernels/pow.js';
import { unsortedSegmentSumKernel } from './kernels/unsorted-segment-sum.js';

export const FP4KIT_BACKEND = 'fp4kit';
export const FP4KIT_CPU_BACKEND = 'fp4kit-cpu';
const PRIORITY = 0;

type KernelFactory = (backendName: string, base: KernelConfig | undefined) => KernelConfig;

/**
 * fp4kit's kernels and the bases they go on: 'all' replaces the base's kernel, 'missing' fills a
 * kernel only where the base has none, 'wasm' replaces it on the wasm base only.
 */
const KERNELS: [string, KernelFactory, 'all' | 'missing' | 'wasm'][] = [
  ['BatchMatMul', batchMatMulKernel, 'all'],
  ['_FusedMatMul', fusedMatMulKernel, 'all'],
  ['Conv2D', conv2dKernel, 'all'],
  ['FusedConv2D', fusedConv2dKernel, 'all'],
  ['Conv2DBackpropInput', conv2dBackpropInputKernel, 'all'],
  ['Conv2DBackpropFilter', conv2dBackpropFilterKernel, 'all'],
  ['DepthwiseConv2dNativeBackpropFilter', depthwiseConv2dBackpropFilterKernel, 'all'],
  ['DepthwiseConv2dNativeBackpropInput', depthwiseConv2dBackpropInputKernel, 'all'],
  ['MaxPoolGrad', maxPoolGradKernel, 'all'],
  ['ResizeNearestNeighborGrad', resizeNearestNeighborGradKernel, 'all'],
  ['Transform', transformKernel, 'all'],
  ['UnsortedSegmentSum', unsortedSegmentSumKernel, 'missing'],
  ['Einsum', einsumKernel, 'missing'],
  ['Identity', identityKernel, 'wasm'],
  ['Cast', castKernel, 'wasm'],
  ['Transpose', transposeKernel, 'all'],
  ['SplitV', splitVKernel, 'all'],
  ['Slice', sliceKernel, 'all'],
  ['Sum', sumKernel, 'wasm'],
  ['Pow', powKernel, 'wasm'],
  ['ClipByValue', clipByValueKernel, 'wasm'],
  ['Tanh', tanhKernel, 'wasm'],
  ['ComplexAbs', complexAbsKernel, 'missing'],
];

/** fp4kit kernels that take complex64 tensors themselves on the wasm base (not through the cpu backend). */
const OWN_COMPLEX_KERNELS = new Set(['ComplexAbs']);

/** The weight caches of the live fp4kit backends. A piece of a weight (weight-slices.ts) multiplied
 *  on one of them is cached there under the weight's data, which may live on the other one: freeing
 *  that data clears its entries in every cache, not only its own backend's. */
const watchedCaches = new Set<WeightCache>();

/** Data a backend freed with `force`, as tfjs's moveData does on the backend the data leaves before
 *  handing it to the one it goes to. Its entries in the other caches wait until this turn ends:
 *  data that lands on an fp4kit backend (its move hook) keeps them, they are still its values. */
const leaving = new Set<object>();

function forgetEverywhere(dataId: object): void {
  for (const c of watchedCaches) c.forget(dataId);
}

/**
 * The base instance, told about disposals: the weights cached from a tensor's data are released
 * when the backend frees that data (a disposed tensor, an assigned variable's old value, data moved
 * to another backend), and all of them when the backend is disposed.
 */
function watched(backend: KernelBackend): KernelBackend {
  const cache = weightCacheOf(backend);
  watchedCaches.add(cache);
  const disposeData = backend.disposeData.bind(backend);
  const move = backend.move.bind(backend);
  const dispose = backend.dispose.bind(backend);
  backend.disposeData = (dataId: object, force?: boolean) => {
    const freed = disposeData(dataId, force);
    if (freed) {
      cache.forget(dataId);
      dataFreed(dataId);
      if (!force) forgetEverywhere(dataId);
      else if (!leaving.has(dataId)) {
        leaving.add(dataId);
        queueMicrotask(() => {
          if (leaving.delete(dataId)) forgetEverywhere(dataId); // it went to another kind of backend
        });
      }
    }
    return freed;
  };
  backend.move = (dataId, values, shape, dtype, refCount) => {
    leaving.delete(dataId);
    dataMoved(dataId);
    move(dataId, values, shape, dtype, refCount);
  };
  backend.dispose = () => {
    cache.clear();
    watchedCaches.delete(cache);
    dispose();
  };
  return backend;
}

function registerVariant(name: string, baseName: string, factory: () => KernelBackend | Promise<KernelBackend>): void {
  if (tf.findBackendFactory(name) !== null) return; // this module was loaded twice
  tf.copyRegisteredKernels(baseName, name);
  for (const [kernelName, make, where] of KERNELS) {
    const base = tf.getKernel(kernelName, baseName);
    if ((where === 'missing' && base !== undefined) || (where === 'wasm' && baseName !== 'wasm')) continue;
    if (tf.getKernel(kernelName, name) !== undefined) tf.unregisterKernel(kernelName, name);
    tf.registerKernel(make(name, base));
  }
  // What the wasm base cannot do (complex64 and string tensors, the kernels it lacks, calls it gets
  // wrong) runs on tfjs's cpu backend: 'fp4kit' has every kernel 'cpu' has.
  if (baseName === 'wasm') completeWithCpu(name, OWN_COMPLEX_KERNELS);
  // Outermost, so the fallbacks to cpu see the slope too.
  for (const kernelName of FUSED_ACTIVATION_KERNELS) {
    const config = tf.getKernel(kernelName, name);
    if (config === undefined) continue;
    tf.unregisterKernel(kernelName, name);
    tf.registerKernel(withDefaultLeakyreluAlpha(config));
  }
  tf.registerBackend(name, factory, PRIORITY);
}

function baseFactory(baseName: string): () => KernelBackend | Promise<KernelBackend> {
  const make = tf.findBackendFactory(baseName);
  if (make === null) throw new Error(`fp4kit tfjs backend: tfjs's '${baseName}' backend is not registered (import @tensorflow/tfjs${baseName === 'wasm' ? '-backend-wasm' : ''})`);
  return make as () => KernelBackend | Promise<KernelBackend>;
}

/**
 * Awaited by a backend's factory before the base backend is made: how an entry point makes
 * fp4kit's own kernels ready (the browser entry loads fp4kit's WebAssembly module there).
 */
export type KernelsReady = (backendName: string) => Promise<void>;

/** Registers 'fp4kit' (wasm base) and 'fp4kit-cpu' (cpu base). */
export function registerBackends(kernelsReady?: KernelsReady): void {
  const wasm = baseFactory('wasm');
  const cpu = baseFactory('cpu');
  // The wasm factory makes a fresh BackendWasm with its own WebAssembly module and heap.
  registerVariant(FP4KIT_BACKEND, 'wasm', async () => {
    await kernelsReady?.(FP4KIT_BACKEND);
    const backend = await wasm();
    readComplexFromHeap(backend);
    return watched(backend);
  });
  const cpuBackend = () => {
    const backend = cpu() as KernelBackend & { firstUse?: boolean };
    // Its first write would advise installing tfjs-node: not the point of this backend.
    backend.firstUse = false;
    moveComplexIntoParts(backend);
    return watched(backend);
  };
  // Synchronous when nothing has to load first (Node), as tfjs's own cpu backend is.
  registerVariant(FP4KIT_CPU_BACKEND, 'cpu', kernelsReady ? async () => (await kernelsReady(FP4KIT_CPU_BACKEND), cpuBackend()) : cpuBackend);
}
