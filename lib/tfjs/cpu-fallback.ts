// What the wasm base cannot do runs on tfjs's cpu backend, over copies: the 'fp4kit' backend then
// has every kernel tfjs's cpu backend has, with the cpu backend's semantics, where the stock wasm
// backend throws, aborts or returns garbage:
//
// - complex64 tensors. The wasm base has no complex kernels and cannot read one back; fp4kit keeps
//   them in the wasm heap as interleaved float32 pairs (real, imag) — the wasm backend already
//   allocates 8 bytes per complex64 element, and interleaved pairs are what tfjs's dataSync() of a
//   complex tensor returns — and runs every kernel that takes or makes one (Complex, Real, Imag,
//   FFT, IFFT, Add, Mul, Concat, Slice, Cast, …) on the cpu backend.
// - string tensors: the wasm kernels read them as numbers (comparisons), or abort (Tile,
//   SparseToDense), or throw (Fill, Squeeze).
// - kernels the wasm base lacks: RaggedGather, RaggedRange, RaggedTensorToTensor,
//   StaticRegexReplace, Draw.
//
// Each call makes a fresh cpu backend instance, writes copies of the inputs into it, runs tfjs's
// own cpu kernel and copies the outputs back: nothing is left behind in it whatever the kernel
// allocates. These ops are rare and small beside a model's products; their speed is the cpu
// backend's plus a copy each way.

import type { DataType, KernelBackend, KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { hasNonFinite } from './im2col.js';
import { xnnpackGeometryDiffers } from './xnnpack-geometry.js';
import type { KernelArgs } from './kernel-context.js';
import { floatValues, storageOf } from './storage.js';

/** What fp4kit touches of the stock wasm backend (tfjs-backend-wasm's BackendWasm). */
interface WasmHeapBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number; shape: number[]; dtype: DataType } | undefined };
  wasm: { HEAPU8: Uint8Array };
  readSync(dataId: object, start?: number, end?: number): unknown;
  write(values: unknown, shape: number[], dtype: DataType): object;
}

/** The dtypes the wasm base's kernels mishandle. */
const CPU_DTYPES = new Set<string>(['complex64', 'string']);

/**
 * Teaches a wasm base instance to read complex64 tensors back: their interleaved float32 pairs
 * (the stock readSync throws "Unknown dtype complex64"). Writing needs no change: the stock write
 * and move copy 8 bytes per element from the interleaved values tfjs hands them.
 */
export function readComplexFromHeap(backend: KernelBackend): void {
  const wasm = backend as unknown as WasmHeapBackend;
  const readSync = wasm.readSync.bind(wasm);
  wasm.readSync = (dataId: object, start?: number, end?: number) => {
    const data = wasm.dataIdMap.get(dataId);
    if (data === undefined || data.dtype !== 'complex64') return readSync(dataId, start, end);
    const size = tf.util.sizeFromShape(data.shape);
    const from = Math.max(0, Math.min(start ?? 0, size)), to = Math.max(from, Math.min(end ?? size, size));
    const bytes = wasm.wasm.HEAPU8.slice(data.memoryOffset + from * 8, data.memoryOffset + to * 8);
    return new Float32Array(bytes.buffer);
  };
}

/** What moveComplexIntoParts touches of tfjs-backend-cpu's MathBackendCPU. */
interface CpuBackend {
  data: { get(dataId: object): { values?: unknown; complexTensorInfos?: { real: TensorInfo; imag: TensorInfo } } };
  move(dataId: object, values: unknown, shape: number[], dtype: DataType, refCount: number): void;
  makeTensorInfo(shape: number[], dtype: DataType, values?: unknown): TensorInfo;
}

/**
 * Teaches a cpu base instance to take complex64 data moved in from another backend. tfjs's cpu
 * backend keeps a complex tensor as two float32 tensors (`complexTensorInfos`, as its Complex
 * kernel makes them), but its move stores the interleaved pairs it is handed as they are, and every
 * later read or kernel of that tensor then fails ("reading 'real'"), even back on `fp4kit`. The
 * stock `cpu` backend has the same fault (tfjs 4.22); this fixes it for `fp4kit-cpu`.
 */
export function moveComplexIntoParts(backend: KernelBackend): void {
  const cpu = backend as unknown as CpuBackend;
  const move = cpu.move.bind(cpu);
  cpu.move = (dataId, values, shape, dtype, refCount) => {
    if (dtype !== 'complex64') return move(dataId, values, shape, dtype, refCount);
    const pairs = values as Float32Array;
    const real = new Float32Array(pairs.length >> 1);
    const imag = new Float32Array(pairs.length >> 1);
    for (let i = 0; i < real.length; i++) {
      real[i] = pairs[2 * i];
      imag[i] = pairs[2 * i + 1];
    }
    move(dataId, undefined, shape, dtype, refCount);
    cpu.data.get(dataId).complexTensorInfos = { real: cpu.makeTensorInfo(shape, 'float32', real), imag: cpu.makeTensorInfo(shape, 'float32', imag) };
  };
}

/** A depthwise convolution whose filter holds NaN or ±Inf: with padding XNNPACK multiplies the
 *  padding's zeros (0·Inf = NaN at the image borders) where tfjs cpu skips those taps (im2col.ts's
 *  paddingMeetsNonFinite does the same for fp4kit's own convolutions), and without, its output
 *  clamp turns a NaN into −Inf (nonFiniteX). The filter is small. */
function nonFiniteFilter(args: KernelArgs): boolean {
  const filter = args.inputs.filter;
  return filter != null && filter.dtype === 'float32' && hasNonFinite(heapValues(args, filter));
}

const isEmpty = (t: TensorInfo | undefined): boolean => t !== undefined && tf.util.sizeFromShape(t.shape) === 0;

/** A depthwise convolution XNNPACK cannot run as asked: a stride longer than the (dilated) filter
 *  (the output came back all zeros, or partly), an empty output (it wrote out of bounds), or another
 *  window geometry than tfjs's (xnnpack-geometry.ts: a number padding with a non-square filter or
 *  dilation wrote out of bounds). */
function depthwiseFault({ inputs, attrs }: KernelArgs): boolean {
  const { x, filter } = inputs;
  if (x == null || filter == null || x.shape.length !== 4 || filter.shape.length !== 4) return false;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    attrs?.strides as number | [number, number], (attrs?.dilations ?? 1) as number | [number, number], attrs?.pad as 'same',
    attrs?.dimRoundingMode as 'floor' | undefined, true);
  return info.strideHeight > info.effectiveFilterHeight || info.strideWidth > info.effectiveFilterWidth || info.outHeight <= 0 || info.outWidth <= 0
    || xnnpackGeometryDiffers(info, info.padInfo.type === 'SAME');
}

/** A float32 input's values in place (a view of the wasm heap: no copy of a large activation). */
function heapValues(args: KernelArgs, t: TensorInfo): Float32Array {
  const storage = storageOf(args.backend as KernelBackend);
  storage.ensure(t);
  return floatValues(storage, t);
}

/** x (float32) holds NaN or ±Inf: XNNPACK's depthwise convolution and average pooling clamp
 *  their output to [−Inf, +Inf] in a way that turns NaN into −Inf (cpu: NaN), and its max pooling
 *  mixes NaN into windows (1, NaN, 3, −Inf, 5) → −Inf (cpu skips NaN: 5). One scan of x decides. */
function nonFiniteX(args: KernelArgs): boolean {
  const x = args.inputs.x;
  return x != null && x.dtype === 'float32' && hasNonFinite(heapValues(args, x));
}

/** A 2-D pooling XNNPACK cannot run as asked: an empty output (a window larger than the image,
 *  'valid': it wrote out of bounds), or another window geometry than tfjs's (xnnpack-geometry.ts: a
 *  zero padding with dimRoundingMode 'ceil' left the last row unwritten, a window wider than the
 *  image read out of bounds). */
function poolFault({ inputs, attrs }: KernelArgs): boolean {
  const x = inputs.x;
  if (x == null || x.shape.length !== 4) return false;
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], attrs?.filterSize as number | [number, number],
    attrs?.strides as number | [number, number], 1, attrs?.pad as 'same', attrs?.dimRoundingMode as 'floor' | undefined);
  return info.outHeight <= 0 || info.outWidth <= 0 || xnnpackGeometryDiffers(info, false);
}

function cumulativeFault({ inputs, attrs }: KernelArgs): boolean {
  const x = inputs.x, axis = attrs?.axis as number;
  return x?.dtype === 'bool' || !(Number.isInteger(axis) && axis >= 0 && axis < (x?.shape.length ?? 0));
}

/** Elementwise kernels whose int32 input the base reads as float32 bits (asinh of −1 gave 25664). */
const INT32_UNARY_FAULTS = ['Asin', 'Acos', 'Sinh', 'Asinh', 'Acosh', 'Atanh', 'Expm1', 'Log1p'];

/**
 * Calls of number tensors the stock wasm base (4.22) gets wrong, by kernel — found by tfjs's own specs
 * (test/tfjs-core-suite.test.ts) and by audits beyond them — sent to the cpu backend as well.
 */
const WASM_BASE_FAULTS: Record<string, (args: KernelArgs) => boolean> = {
  // Cast to bool keeps the number (3 stays 3) instead of making it 1.
  Cast: ({ inputs, attrs }) => attrs?.dtype === 'bool' && inputs.x?.dtype !== 'bool',
  // A number (or explicit) padding leaves windows wholly in the padding uninitialised (denormal
  // garbage); MaxPool's below.
  AvgPool: (args) => (typeof args.attrs?.pad !== 'string' && args.attrs?.pad !== 0) || poolFault(args) || nonFiniteX(args),
  // Its gradient with a number or explicit padding (and so every dimRoundingMode): the base's loop
  // reads dY with the sizes of the padding's info without the mode (and tfjs's number-padding sizes
  // take the filter's height for both axes), the forward's dY has other sizes: wrong values; cpu
  // reads dY by its own shape.
  AvgPoolGrad: (args) => typeof args.attrs?.pad !== 'string',
  // Counts a rank-3 x as rows of a rank-2 one (tf.image.threshold's Otsu method passes one); a
  // negative value aborted the whole module (every later call failed) where cpu throws.
  Bincount: () => true,
  DenseBincount: () => true,
  // Products of bool tensors: the base throws (fp4kit's own products take float32 and int32).
  BatchMatMul: ({ inputs }) => inputs.a?.dtype === 'bool' || inputs.b?.dtype === 'bool',
  _FusedMatMul: ({ inputs }) => inputs.a?.dtype === 'bool' || inputs.b?.dtype === 'bool',
  // Refuses a bias of rank other than 1, which broadcasting allows.
  FusedDepthwiseConv2D: (args) => (args.inputs.bias != null && args.inputs.bias.shape.length !== 1) || nonFiniteFilter(args) || depthwiseFault(args) || nonFiniteX(args),
  DepthwiseConv2dNative: (args) => nonFiniteFilter(args) || depthwiseFault(args) || nonFiniteX(args),
  // Found by an audit of models and ops beyond tfjs's specs (docs/tfjs.md "What runs where"):
  // Conv3D's gradients (and conv3dTranspose, which is Conv3DBackpropInputV2) drop depth slices
  // and depend on what is in the heap; tfjs's specs have one tiny case of each.
  Conv3DBackpropInputV2: () => true,
  Conv3DBackpropFilterV2: () => true,
  // int32 read as float32 bits (clipByValue's -1 came out as -1082130432, negative ints "are NaN"),
  // an int32 output made float32 or refused (MaxPool), an overflowing int32 power saturated.
  ClipByValue: ({ inputs }) => inputs.x?.dtype === 'int32',
  Prelu: ({ inputs }) => inputs.x?.dtype === 'int32' || inputs.alpha?.dtype === 'int32',
  Reciprocal: ({ inputs }) => inputs.x?.dtype === 'int32',
  IsNan: ({ inputs }) => inputs.x?.dtype === 'int32',
  IsFinite: ({ inputs }) => inputs.x?.dtype === 'int32',
  // MaxPool also with a number padding (as AvgPool), an empty output, and NaN in x: XNNPACK's
  // windows (1, NaN, 3, −Inf, 5) gave −Inf where cpu skips NaN (5); one scan of x decides.
  MaxPool: (args) => args.inputs.x?.dtype === 'int32' || (typeof args.attrs?.pad !== 'string' && args.attrs?.pad !== 0) || poolFault(args)
    || nonFiniteX(args),
  ResizeNearestNeighbor: ({ inputs }) => inputs.images?.dtype === 'int32',
  Pow: ({ inputs }) => inputs.a?.dtype === 'int32' || inputs.b?.dtype === 'int32',
  // A bool tensor's one-byte elements reversed as four-byte ones; a strided slice of int32 or bool made float32.
  Reverse: ({ inputs }) => inputs.x?.dtype === 'bool',
  StridedSlice: ({ inputs }) => inputs.x?.dtype !== 'float32',
  // Found by a second audit (layers and ops beyond tfjs's specs, 2026-12-07): these start their
  // running maximum at std::numeric_limits<float>::min(), the smallest positive float, so a window
  // whose maximum is negative gave 1.18e-38 (int32: 8388608) and its gradient went to the window's
  // first element; tfjs's specs have no all-negative window. (MaxPool is XNNPACK's, MaxPoolGrad fp4kit's.)
  MaxPool3D: () => true,
  MaxPool3DGrad: () => true,
  MaxPoolWithArgmax: () => true,
  Dilation2D: () => true,
  Dilation2DBackpropInput: () => true,
  Dilation2DBackpropFilter: () => true,
  // Its fill goes through an Int32Array (0.25 filled 0), a fourth channel is filled with 255 (an
  // opaque alpha) and a fifth or later one from past the fill's array (2026-12-07).
  RotateWithOffset: ({ inputs, attrs }) => attrs?.fillValue !== 0 || (inputs.image?.shape[3] ?? 0) > 4,
  // Refused for bool (cpu sums them as int32); an axis outside [0, rank) (tfjs takes no negative
  // axis here: cpu returns a malformed tensor) wrote out of the module's bounds and broke every later call.
  Cumsum: cumulativeFault,
  Cumprod: cumulativeFault,
  // int32 division by zero: Mod trapped ("remainder by zero"), FloorDiv and RealDiv gave −2^31 where cpu gives 0.
  Mod: ({ inputs }) => inputs.a?.dtype === 'int32',
  FloorDiv: ({ inputs }) => inputs.a?.dtype === 'int32',
  RealDiv: ({ inputs }) => inputs.a?.dtype === 'int32',
  ...Object.fromEntries(INT32_UNARY_FAULTS.map((name) => [name, ({ inputs }: KernelArgs) => inputs.x?.dtype === 'int32'])),
};

/** Whether a call must run on the cpu backend: a complex64 or string tensor in or out, or a call the base gets wrong. */
export function needsCpu(kernelName: string, args: KernelArgs): boolean {
  for (const t of Object.values(args.inputs)) {
    if (t == null) continue;
    if (Array.isArray(t) ? t.some((u) => u != null && CPU_DTYPES.has(u.dtype)) : CPU_DTYPES.has(t.dtype)) return true;
  }
  const dtype = args.attrs?.dtype;
  if (typeof dtype === 'string' && CPU_DTYPES.has(dtype)) return true;
  // An empty input: kernels of the base wrote out of bounds or trapped (Transpose, DepthwiseConv2dNative,
  // Cumsum, …), which breaks every later call, or returned stale heap values (a reduction over an
  // axis of size 0: sum of [3, 0] along 1 gave [25504, 66, 66]); cpu's handle them, and there is
  // nothing to copy.
  for (const t of Object.values(args.inputs)) if (t != null && !Array.isArray(t) && isEmpty(t)) return true;
  return WASM_BASE_FAULTS[kernelName]?.(args) ?? false;
}

function freshCpuBackend(): KernelBackend {
  const make = tf.findBackendFactory('cpu');
  if (make === null) throw new Error("fp4kit tfjs backend: tfjs's 'cpu' backend is not registered (it runs what the wasm base cannot)");
  const cpu = make() as KernelBackend & { firstUse?: boolean };
  cpu.firstUse = false; // its first write would advise installing tfjs-node
  return cpu;
}

/** A copy of a wasm-base tensor in `cpu`: a complex64 one through cpu's Complex kernel from its two parts. */
function copyToCpu(cpu: KernelBackend, from: KernelBackend, t: TensorInfo): TensorInfo {
  const values = from.readSync(t.dataId) as Float32Array | Int32Array | Uint8Array | Uint8Array[];
  // With `rank`: tfjs ops hand kernels Tensors, and some cpu kernels read it (Dilation2DBackpropInput).
  const make = (dtype: DataType, v: unknown): TensorInfo => ({ dataId: cpu.write(v as Float32Array, t.shape, dtype), shape: t.shape, dtype, rank: t.shape.length } as TensorInfo);
  if (t.dtype !== 'complex64') return make(t.dtype, values);
  const { real, imag } = tf.backend_util.splitRealAndImagArrays(values as Float32Array);
  const parts = { real: make('float32', real), imag: make('float32', imag) };
  const complex = cpuKernel('Complex').kernelFunc({ inputs: parts, backend: cpu, attrs: {} }) as TensorInfo;
  cpu.disposeData(parts.real.dataId);
  cpu.disposeData(parts.imag.dataId);
  return complex;
}

/** A copy of a cpu tensor in the wasm base (a complex64 one as interleaved pairs). */
function copyFromCpu(cpu: KernelBackend, to: KernelBackend, t: TensorInfo): TensorInfo {
  let values = cpu.readSync(t.dataId) as ArrayLike<number> | Uint8Array[];
  // The wasm base copies a number tensor's bytes: they must be the dtype's own array type.
  if (t.dtype === 'float32' || t.dtype === 'complex64') values = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  else if (t.dtype === 'int32') values = values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
  else if (t.dtype === 'bool') values = values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
  const dataId = (to as unknown as WasmHeapBackend).write(values, t.shape, t.dtype);
  return { dataId, shape: t.shape.slice(), dtype: t.dtype };
}

function cpuKernel(kernelName: string): KernelConfig {
  const config = tf.getKernel(kernelName, 'cpu');
  if (config === undefined) throw new Error(`fp4kit tfjs backend: tfjs's cpu backend has no ${kernelName} kernel`);
  return config;
}

/** Runs `kernelName` on a fresh cpu backend over copies of the call's inputs; the outputs are copied into the call's backend. */
export function runOnCpu(kernelName: string, args: KernelArgs): TensorInfo | TensorInfo[] {
  const kernel = cpuKernel(kernelName);
  const backend = args.backend as KernelBackend;
  const cpu = freshCpuBackend();
  // Inputs come as a map of tensors, some of them lists (RaggedGather's splits), or as one list (Concat, Pack).
  const copy = (t: TensorInfo | TensorInfo[] | null | undefined): unknown =>
    t == null ? t : Array.isArray(t) ? t.map((u) => copy(u)) : copyToCpu(cpu, backend, t);
  const inputs = (Array.isArray(args.inputs) ? copy(args.inputs)
    : Object.fromEntries(Object.entries(args.inputs).map(([name, t]) => [name, copy(t)]))) as NamedTensorInfoMap;
  const out = kernel.kernelFunc({ inputs, attrs: args.attrs ?? {}, backend: cpu }) as TensorInfo | TensorInfo[];
  // Outputs already copied are freed again if a later one cannot be (the heap cannot grow).
  const copied: TensorInfo[] = [];
  try {
    for (const t of Array.isArray(out) ? out : [out]) copied.push(copyFromCpu(cpu, backend, t));
  } catch (e) {
    for (const t of copied) backend.disposeData(t.dataId);
    throw e;
  }
  return Array.isArray(out) ? copied : copied[0];
}

/** A wasm-base kernel config with the calls needsCpu picks sent to the cpu backend. */
export function withCpuFallback(config: KernelConfig): KernelConfig {
  const { kernelName, kernelFunc: own } = config;
  const kernelFunc = ((args: KernelArgs) =>
    needsCpu(kernelName, args) ? runOnCpu(kernelName, args) : own(args as Parameters<KernelFunc>[0])) as KernelFunc;
  return { ...config, kernelFunc };
}

/** A kernel for `backendName` that always runs on the cpu backend (one the wasm base lacks). */
export function cpuFallbackKernel(kernelName: string, backendName: string): KernelConfig {
  cpuKernel(kernelName);
  return { kernelName, backendName, kernelFunc: ((args: KernelArgs) => runOnCpu(kernelName, args)) as KernelFunc };
}

/**
 * Completes a wasm-based variant once its kernels are registered: each kernel (but `own`, which
 * take complex64 tensors themselves) sends needsCpu's calls to the cpu backend, and each kernel
 * the cpu backend has and the variant lacks runs there.
 */
export function completeWithCpu(backendName: string, own: ReadonlySet<string>): void {
  for (const config of tf.getKernelsForBackend(backendName)) {
    if (own.has(config.kernelName)) continue;
    tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel(withCpuFallback(config));
  }
  for (const { kernelName } of tf.getKernelsForBackend('cpu'))
    if (tf.getKernel(kernelName, backendName) === undefined) tf.registerKernel(cpuFallbackKernel(kernelName, backendName));
}
