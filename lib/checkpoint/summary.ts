// What a checkpoint run takes (CheckpointOptions) and what it reports: progress while it runs, and
// the summary written as fp4kit-summary.json beside the output.
import type { RoundingName, ScaleRuleName } from '../core/formats.js';
import type { LayoutName, QuantFormat } from './layouts/index.js';
import type { CheckpointFiles } from './safetensors/checkpoint-files.js';

export const SUMMARY_NAME = 'fp4kit-summary.json';

export interface CheckpointOptions {
  format: QuantFormat;
  layout?: LayoutName;
  /** Quantize only tensors whose name matches (lifts the default name rules). */
  only?: RegExp | string;
  /** Never quantize tensors whose name matches. */
  skip?: RegExp | string;
  rounding?: RoundingName;
  seed?: number;
  scaleRule?: ScaleRuleName;
  /** fgmp: a safetensors file of diagonal Fisher values under the same tensor names. */
  fisher?: string;
  fp4Fraction?: number;
  /** modelopt: a calibrated activation decode scale stored as input_scale. */
  inputScale?: number;
  /** Measure relative RMSE and max error of every quantized tensor (default true). */
  measureError?: boolean;
  /** Replace an output folder that is not empty and holds no earlier fp4kit output (CLI --force). */
  overwrite?: boolean;
}

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  action: 'quantized' | 'copied';
  reason?: string;
  format?: QuantFormat;
  file: string;
  outputs: string[];
  inputBytes: number;
  outputBytes: number;
  bitsPerElement?: number;
  relRmse?: number;
  maxAbsError?: number;
  /** Every element's error |x − Q(x)| counted by binade (lib/checkpoint/error-histogram.ts). */
  errorHistogram?: TensorErrorHistogram;
  fp4Fraction?: number;
  /** fgmp with a --fisher file: whether the file had this tensor's Fisher values (without, its
   *  impacts are plain squared error). */
  fisherWeighted?: boolean;
  /** The shape it was blocked in, when the layout swapped its last two axes first (gpt-oss experts). */
  blockedShape?: number[];
}

/**
 * A tensor's per-element error histogram: the errorSums kernel's counts (lib/kernels/ref/error-sums.ts),
 * whose binades are absolute, with the zero bins at either end left out.
 */
export interface TensorErrorHistogram {
  /** counts[i] holds the elements with 2^(firstBinade + i) ≤ |x − Q(x)| < 2^(firstBinade + i + 1). */
  firstBinade: number;
  counts: number[];
  /** x = Q(x) exactly. */
  exact: number;
  /** |x − Q(x)| = Inf: a finite weight decoded to ±Inf. */
  infinite: number;
  /** x − Q(x) is NaN: a NaN weight, or an Inf one (its block decodes to NaN). */
  nan: number;
  /** The tensor's RMS √(Σx²/n) rounded to the nearest power of two, 2^rmsBinade (within a factor
   *  √2: ceil(E / 2) where E = floor(log2(Σx²/n))); null when Σx² is 0, NaN or Inf. */
  rmsBinade: number | null;
}

/**
 * The per-element error histogram of all quantized tensors of a run (one format), each tensor's
 * counts placed relative to its own RMS: tensors of different scales add up into one picture of
 * "error relative to the weights' size".
 */
export interface FormatErrorHistogram {
  format: QuantFormat;
  /** counts[i] holds the elements with 2^(firstBinade + i) ≤ |x − Q(x)| / 2^rmsBinade < 2^(firstBinade + i + 1). */
  firstBinade: number;
  counts: number[];
  exact: number;
  infinite: number;
  nan: number;
  /** Elements with a finite nonzero error in tensors without an RMS (all zero, or holding NaN or
   *  Inf): nowhere to place them relative to it, so not in counts. */
  unscaled: number;
  /** The tensors with a histogram, and their elements. */
  tensors: number;
  elements: number;
}

export interface CheckpointSummary {
  tool: 'fp4kit';
  version: 1;
  input: string;
  output: string;
  /** The distributed run whose merge wrote this output (docs/distributed.md): its key and every input
   *  shard's data samples (digests); absent for a single run. A late copy of a part compares both. */
  run?: { key: string; samples: Record<string, string> };
  format: QuantFormat;
  layout: LayoutName;
  backend: string;
  inputBytes: number;
  outputBytes: number;
  seconds: number;
  quantized: number;
  copied: number;
  /** Files of the model folder left out of the output: the same weights in other formats
   *  (pytorch_model.bin, tf_model.h5, *.pth, …; publish.ts). */
  notCopied: string[];
  files: string[];
  tensors: TensorSummary[];
  /** The quantized tensors' per-element error histogram, relative to each tensor's RMS
   *  (aggregateErrorHistograms in lib/checkpoint/error-histogram.ts); absent without error statistics. */
  errorHistogram?: FormatErrorHistogram;
}

export interface CheckpointProgress {
  /** 'shared-scales': before any tensor is written, the members of fused groups (q/k/v, gate/up)
   *  are read once for the tensor scale they share (NVFP4 in the compressed-tensors and modelopt
   *  layouts); `tensor` names the one being read ('' in the event that ends the pass). 'tensors':
   *  quantizing and copying. A `--queue` producer's progress is 'tensors' only: its parts report
   *  the tensors they have quantized, not their pre-passes. */
  phase: 'shared-scales' | 'tensors';
  /** Bytes of that first read so far, and in all (both 0 for a run without it). The tensors are
   *  read again to be quantized: `bytesDone` counts that second read. */
  sharedScaleBytesDone: number;
  sharedScaleBytesTotal: number;
  tensor: string;
  tensorsDone: number;
  tensorCount: number;
  bytesDone: number;
  bytesTotal: number;
  elapsedSeconds: number;
}

/** One part of a distributed run (lib/checkpoint/checkpoint-parts.ts): quantizeCheckpoint writes only these input
 *  shards' output shards, into the run's shared parts folder instead of a staging folder of its own, and
 *  leaves the index, config, side files, summary and the publishing of the output to the merge. */
export interface CheckpointPart {
  /** Indexes into the input's shard list (CheckpointFiles.shards). */
  shards: ReadonlySet<number>;
  /** The folder the parts of the run write into (each shard under a temporary name, renamed when complete). */
  dir: string;
  /** The input, already opened (and checked) by the caller, who closes it. */
  files?: CheckpointFiles;
  /** Awaited before each tensor (a test hook that makes jobs slow; see lib/checkpoint/checkpoint-parts.ts). */
  beforeTensor?: () => Promise<void>;
}
