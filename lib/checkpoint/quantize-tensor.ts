// Quantizing one tensor of a run: the options of the run, the layout's tensor scale (shared by a
// fused group), the tensor's own stochastic-rounding seed and, for fgmp, its Fisher values.
import { getKernels } from '../kernels/registry.js';
import { BLOCK_FORMATS, DtypeId, type DtypeName } from '../core/formats.js';
import type { QuantizedTensor } from '../core/quantize.js';
import { quantizeAsyncInSteps } from '../core/quantize-async.js';
import type { StepProgress } from '../core/async-jobs.js';
import type { FgmpStepProgress, FgmpTensor } from '../fgmp/quantize.js';
import { fmix32 } from '../kernels/ref/stochastic.js';
import type { Layout } from './layouts/index.js';
import { SafetensorsError } from './safetensors/header.js';
import type { SafetensorsFile } from './safetensors/read.js';
import type { CheckpointOptions } from './summary.js';
import { readFisher } from './fisher.js';
import { COPY_CHUNK } from './plan.js';

/** Stochastic rounding seed of one tensor: the run's seed mixed with the tensor name (FNV-1a),
 *  so tensors draw independent random streams yet every run with the same seed is identical. */
export function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return fmix32((seed ^ h) >>> 0);
}

/** What every tensor of a run is quantized with. */
export interface RunQuantizer {
  options: CheckpointOptions;
  layout: Layout;
  fisher?: SafetensorsFile;
  /** The shared amax of each fused group's members (q/k/v, gate/up), by tensor name, when the layout shares NVFP4 tensor scales. */
  groupAmax: Map<string, number>;
  signal?: AbortSignal;
}

/** Input bytes quantized between two progress reports inside one tensor (as many as a copied
 *  tensor's chunk): an embedding of gigabytes shows its progress while it is quantized. */
export const QUANTIZE_STEP_BYTES = COPY_CHUNK;

/**
 * The share of an FGMP tensor's input bytes that its progress counts for the work after the
 * per-block candidates (the threshold and mask, then the block stream in steps: FgmpStepProgress),
 * the rest for the candidates, so that the bar does not stand still for the seconds this takes on a
 * 512 MiB weight. Measured 2026-12-07 on 2 shared vCPUs (load 2–10), native, a 16384² bf16 tensor
 * at fp4Fraction 0.7, six runs: candidates 6.3–13.9 s, then 1.7–4.7 s, 13–25 % of the whole (the
 * most for a process's first FGMP tensor: fresh scratch pages; less on wasm and js, whose
 * candidates are slower; more with more cores for the candidates).
 */
export const FGMP_ASSEMBLY_SHARE = 0.2;

/** Quantize tensor `name` (source `x`, blocked `shape`) of shard `shardPath`; a bad tensor is
 *  reported as a SafetensorsError naming the file and the tensor. The rows go in steps of about
 *  QUANTIZE_STEP_BYTES of input with `within(bytesDone)` awaited between them (the same bits as one
 *  call: rows are quantized independently, after NVFP4's tensor scale, FGMP's two scales, and
 *  before FGMP's block selection, all over the whole tensor); FGMP's stream is written in the same
 *  steps after its selection, with FGMP_ASSEMBLY_SHARE of the bytes for them (`bytesDone` always
 *  below the tensor's bytes, and never going back). `x` stays unchanged meanwhile. */
export async function quantizeTensor(
  run: RunQuantizer, shardPath: string, name: string, x: Float32Array | Uint16Array, dtype: DtypeName, shape: number[],
  within: (bytesDone: number) => Promise<void> = async () => {},
): Promise<QuantizedTensor | FgmpTensor> {
  const { options, layout, fisher, groupAmax, signal } = run;
  const badTensor = (err: unknown): never => {
    if (err instanceof RangeError) throw new SafetensorsError(shardPath, `tensor ${name}: ${err.message}`);
    throw err;
  };
  const bytesPerElement = x.BYTES_PER_ELEMENT;
  const steps: StepProgress = { elements: QUANTIZE_STEP_BYTES / bytesPerElement, between: (elementsDone: number) => within(elementsDone * bytesPerElement) };
  if (options.format === 'fgmp') {
    const f = fisher ? await readFisher(fisher, name) : undefined;
    // The candidates count up to candidateBytes; the stream's steps, row by row, the rest.
    const inputBytes = x.length * bytesPerElement;
    const assemblyBytes = Math.round(inputBytes * FGMP_ASSEMBLY_SHARE);
    const candidateBytes = inputBytes - assemblyBytes;
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const fgmpSteps: FgmpStepProgress = {
      elements: steps.elements,
      between: (elementsDone) => within(Math.floor((elementsDone * bytesPerElement * candidateBytes) / inputBytes)),
      assembly: (rowsDone) => within(candidateBytes + Math.floor((rowsDone * assemblyBytes) / rows)),
    };
    // quantizeAsyncInSteps hands `progress` to quantizeFgmpAsync as it is: `assembly` included.
    return quantizeAsyncInSteps(x, { format: 'fgmp', shape, dtype, fisher: f, fp4Fraction: options.fp4Fraction ?? 0.7, signal }, fgmpSteps).catch(badTensor);
  }
  const format = BLOCK_FORMATS[options.format];
  let tensorScale: number | undefined;
  if (format.hasTensorScale && layout.tensorScale) {
    const amax = groupAmax.get(name) ?? getKernels().absMax(x, DtypeId[dtype]);
    if (!Number.isFinite(amax)) throw new SafetensorsError(shardPath, `tensor ${name} holds NaN or Inf, which ${format.name} cannot represent`);
    try {
      tensorScale = layout.tensorScale(amax);
    } catch (err) {
      badTensor(err); // a tensor the layout's global scale cannot hold, named with its file
    }
  }
  return quantizeAsyncInSteps(x, {
    format: options.format, shape, dtype, rounding: options.rounding, seed: tensorSeed(options.seed ?? 0, name),
    // scaleRule is the E8M0 exponent rule of MX formats; NVFP4's E4M3 block scales have none.
    scaleRule: format.hasTensorScale ? undefined : options.scaleRule, tensorScale, signal,
  }, steps).catch(badTensor);
}
