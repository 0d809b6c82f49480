// What every fp4kit kernel needs besides its inputs: the backend's storage and weight cache, and
// the base backend's own kernel for the calls fp4kit leaves to it.

import type { KernelBackend, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { counters } from './counters.js';
import { storageOf, type TensorStorage } from './storage.js';
import { WeightCache } from './weight-cache.js';
import { describe, isObjectArgument } from '../core/validate.js';

const caches = new WeakMap<KernelBackend, WeightCache>();

/** The weight cache of a backend instance. */
export function weightCacheOf(backend: KernelBackend): WeightCache {
  if (!isObjectArgument(backend)) throw new TypeError(`weightCacheOf: backend must be a tfjs backend (tf.backend(), tf.findBackend('fp4kit')), got ${describe(backend)}`);
  let c = caches.get(backend);
  if (c === undefined) caches.set(backend, (c = new WeightCache()));
  return c;
}

export interface KernelContext {
  backendName: string;
  backend: KernelBackend;
  storage: TensorStorage;
  cache: WeightCache;
}

export type KernelArgs = { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown };

/**
 * A kernel config for `backendName` that runs `run`, or the base kernel when `run` returns
 * undefined. It keeps the base kernel's setupFunc and disposeFunc: the wasm base binds its
 * WebAssembly functions there, and the fallback needs them.
 */
export function fp4kitKernel(kernelName: string, backendName: string, base: KernelConfig | undefined,
  run: (ctx: KernelContext, inputs: NamedTensorInfoMap, attrs: NamedAttrMap) => TensorInfo | undefined): KernelConfig {
  const kernelFunc = ((args: KernelArgs) => {
    const backend = args.backend as KernelBackend;
    const ctx: KernelContext = { backendName, backend, storage: storageOf(backend), cache: weightCacheOf(backend) };
    // Inputs still on another backend move here now, before any kernel takes a view of the heap.
    for (const t of Object.values(args.inputs)) if (t !== undefined && t !== null) ctx.storage.ensure(t);
    const out = run(ctx, args.inputs, args.attrs ?? {});
    if (out !== undefined) return out;
    if (base === undefined) throw new Error(`fp4kit tfjs backend: ${kernelName} is not available for these inputs on this base backend`);
    counters.baseKernelCalls++;
    return base.kernelFunc(args as Parameters<KernelFunc>[0]);
  }) as KernelFunc;
  return { kernelName, backendName, kernelFunc, setupFunc: base?.setupFunc, disposeFunc: base?.disposeFunc };
}

/**
 * A kernel config for `backendName` around the base's own kernel: `run` gets the call and the base
 * kernel, and decides (share data, record what the outputs are). Uncounted in baseKernelCalls:
 * these are not products. The base keeps its setupFunc and disposeFunc.
 */
export function aroundBaseKernel(kernelName: string, backendName: string, base: KernelConfig | undefined,
  run: (args: KernelArgs, baseKernel: (args: KernelArgs) => TensorInfo | TensorInfo[]) => TensorInfo | TensorInfo[]): KernelConfig {
  if (base === undefined) throw new Error(`fp4kit tfjs backend: the base of '${backendName}' has no ${kernelName} kernel`);
  const baseKernel = (args: KernelArgs) => base.kernelFunc(args as Parameters<KernelFunc>[0]) as TensorInfo | TensorInfo[];
  const kernelFunc = ((args: KernelArgs) => run(args, baseKernel)) as KernelFunc;
  return { kernelName, backendName, kernelFunc, setupFunc: base.setupFunc, disposeFunc: base.disposeFunc };
}
