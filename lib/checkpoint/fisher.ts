// The Fisher file of an fgmp run (`--fisher`): diagonal Fisher values under the checkpoint's tensor
// names, one per element (the weight's shape, or flattened) or one per input channel ([in]). Its
// headers are checked against the plan before anything is written, and each tensor's values when
// it is read, so a file that does not fit the checkpoint fails at once and names itself: a
// transposed Fisher tensor would weight the wrong elements, and a file whose names match no weight
// would leave the run quietly unweighted.

import { elementCount, sourceView } from './source-view.js';
import { DtypeId } from '../core/formats.js';
import { widenedRange } from '../kernels/ref/dtype.js';
import { SafetensorsError, type TensorInfo } from './safetensors/header.js';
import type { SafetensorsFile } from './safetensors/read.js';

const FISHER_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** Why Fisher tensor `f` does not fit weight `w`, or null. */
function misfit(f: TensorInfo, w: TensorInfo): string | null {
  if (!FISHER_DTYPES.has(f.dtype)) return `has dtype ${f.dtype}; expected F32, F16 or BF16`;
  const count = elementCount(w.shape);
  const cols = w.shape[w.shape.length - 1];
  const sameShape = f.shape.length === w.shape.length && f.shape.every((d, i) => d === w.shape[i]);
  const flat = f.shape.length === 1 && (f.shape[0] === count || f.shape[0] === cols);
  if (sameShape || flat) return null;
  return `has shape [${f.shape.join(', ')}]; expected the weight's [${w.shape.join(', ')}] (one value per element, or [${count}] flattened) or [${cols}] (one per input channel)`;
}

/** Refuse a Fisher file that does not fit the planned fgmp run, whose weights to quantize are
 *  `weights`: a Fisher tensor of another dtype or shape than its weight, or no Fisher tensor for
 *  any of them (a weight without one uses plain squared error, as with no file). */
export function checkFisherFile(fisher: SafetensorsFile, weights: readonly TensorInfo[]): void {
  let matched = 0;
  for (const w of weights) {
    const f = fisher.tensor(w.name);
    if (f === undefined) continue;
    matched++;
    const why = misfit(f, w);
    if (why !== null) throw new SafetensorsError(fisher.path, `Fisher tensor ${w.name} ${why}`);
  }
  if (weights.length > 0 && matched === 0) {
    const theirs = fisher.tensors.slice(0, 2).map((t) => JSON.stringify(t.name)).join(', ');
    throw new SafetensorsError(fisher.path, `none of the ${weights.length} tensors to quantize has a Fisher tensor here (the checkpoint's ${JSON.stringify(weights[0].name)}; this file holds ${theirs || 'no tensor'}): the Fisher file must use the checkpoint's tensor names`);
  }
}

/** The Fisher values of weight `name` as float32 (one per element or per input channel), or
 *  undefined when the file has none; checkFisherFile has checked its dtype and shape. A NaN, an
 *  infinity or a negative value is refused, naming the Fisher file. */
export async function readFisher(fisher: SafetensorsFile, name: string): Promise<Float32Array | undefined> {
  const t = fisher.tensor(name);
  if (!t) return undefined;
  const n = elementCount(t.shape);
  const { x, dtype } = sourceView(await fisher.read(t), t.dtype);
  const out = widenedRange(x, DtypeId[dtype], 0, n);
  for (let i = 0; i < n; i++) {
    const v = out[i];
    if (!(v >= 0 && v < Infinity)) throw new SafetensorsError(fisher.path, `Fisher tensor ${name} holds ${String(v)} at element ${i}; Fisher values must be finite and non-negative`);
  }
  return out;
}
