// How fp4kit's kernels read and write tensors of the two stock backends they run inside, without
// copying inputs: the wasm backend keeps every tensor in its WebAssembly heap, the cpu backend in
// a typed array per tensor. Kernels go through this one interface, so each kernel is written once.

import type { DataType, KernelBackend, TensorInfo } from '@tensorflow/tfjs';

export type Values = Float32Array | Int32Array | Uint8Array;

export interface TensorStorage {
  /**
   * Makes sure the tensor's data is in this backend (tfjs moves data from another backend on
   * first access, which allocates): call it for every input before taking any view.
   */
  ensure(t: TensorInfo): void;
  /**
   * The tensor's values in place (a view: no copy), as a Float32Array for a float32 tensor. On the
   * wasm base the view is into the heap, which moves when it grows, so take it after the last
   * allocation and use it before the next. On the cpu base a float32 tensor cast from int32 or
   * bool shares integer data: then (only) the values are a converted copy.
   */
  values(t: TensorInfo): Values;
  /** A new tensor holding `values` (the cpu base adopts the array, the wasm base copies it into its heap). */
  output(shape: number[], dtype: DataType, values: Values): TensorInfo;
  /**
   * A new float32 tensor whose values `fill` writes in place (every element): into the wasm base's
   * heap, which saves output()'s copy. Call it after ensure() and take input views inside `fill`
   * (the allocation may move the heap); `fill` must allocate nothing in the base.
   */
  outputFilled(shape: number[], fill: (values: Float32Array) => void): TensorInfo;
  /** Frees an intermediate tensor made by this kernel. */
  dispose(t: TensorInfo): void;
}

interface WasmLike {
  dataIdMap: { get(dataId: object): unknown };
  typedArrayFromHeap(t: TensorInfo): Values;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object): boolean;
}

interface CpuLike {
  data: { get(dataId: object): { values: Values } };
  makeTensorInfo(shape: number[], dtype: DataType, values: Values): TensorInfo;
  disposeIntermediateTensorInfo(t: TensorInfo): void;
}

function wasmStorage(backend: WasmLike): TensorStorage {
  return {
    ensure: (t) => void backend.dataIdMap.get(t.dataId),
    values: (t) => backend.typedArrayFromHeap(t),
    output(shape, dtype, values) {
      const out = backend.makeOutput(shape, dtype);
      if (values.length > 0) backend.typedArrayFromHeap(out).set(values);
      return out;
    },
    outputFilled(shape, fill) {
      const out = backend.makeOutput(shape, 'float32');
      try {
        fill(backend.typedArrayFromHeap(out) as Float32Array);
      } catch (e) {
        backend.disposeData(out.dataId);
        throw e;
      }
      return out;
    },
    dispose: (t) => void backend.disposeData(t.dataId),
  };
}

function cpuStorage(backend: CpuLike): TensorStorage {
  return {
    ensure: (t) => void backend.data.get(t.dataId),
    values(t) {
      const values = backend.data.get(t.dataId).values;
      // A float32 tensor cast from int32 or bool shares the source's data, kept as integers: its
      // float32 values are a converted copy (the shared data must stay as it is for the source).
      return t.dtype === 'float32' && !(values instanceof Float32Array) ? Float32Array.from(values) : values;
    },
    output: (shape, dtype, values) => backend.makeTensorInfo(shape, dtype, values),
    outputFilled(shape, fill) {
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      fill(values);
      return backend.makeTensorInfo(shape, 'float32', values);
    },
    dispose: (t) => backend.disposeIntermediateTensorInfo(t),
  };
}

const storages = new WeakMap<KernelBackend, TensorStorage>();

/** The storage of a wasm-based or cpu-based backend instance. */
export function storageOf(backend: KernelBackend): TensorStorage {
  let s = storages.get(backend);
  if (s === undefined) {
    const b = backend as unknown as Partial<WasmLike & CpuLike>;
    if (typeof b.typedArrayFromHeap === 'function' && typeof b.makeOutput === 'function' && b.dataIdMap !== undefined) s = wasmStorage(b as WasmLike);
    else if (b.data !== undefined && typeof b.makeTensorInfo === 'function') s = cpuStorage(b as CpuLike);
    else throw new TypeError('fp4kit tfjs backend: the base backend is neither tfjs\'s wasm nor its cpu backend');
    storages.set(backend, s);
  }
  return s;
}

/** The float32 values of a float32 tensor in place. */
export function floatValues(storage: TensorStorage, t: TensorInfo): Float32Array {
  return storage.values(t) as Float32Array;
}
