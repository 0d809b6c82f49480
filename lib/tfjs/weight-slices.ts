// Pieces cut out of a weight still count as that weight. tfjs-layers' GRU cell splits its
// recurrent kernel (tf.split) and ConvLSTM2D splits both of its kernels before each product; the
// pieces are copies with new dataIds, which would otherwise run in float32 (FP4KIT_WEIGHT_TENSORS
// 'variables') — and, made afresh at every time step, could not be cached. The Split and Slice
// kernels (kernels/split-v.ts, kernels/slice.ts) record here, for each piece of a weight, the
// weight's data and which piece it is; weights.ts then quantizes the piece once and caches it
// under the weight's data, released with it.

import type { TensorInfo } from '@tensorflow/tfjs';

export interface SliceOrigin {
  /** The dataId of the weight the piece was cut from (a tf.Variable's data). */
  source: object;
  /** Which piece, as a path of cuts: the same string for the same piece of the same data. */
  piece: string;
}

// Keyed by the piece's dataId; a WeakMap, so a disposed piece's entry goes with its dataId.
const origins = new WeakMap<object, SliceOrigin>();
// Data the backend has freed (an assigned variable's old value, a disposed tensor): a piece of it
// is no longer a piece of anything (entries cached under freed data would never be released).
const freed = new WeakSet<object>();

/** Where a tensor's data was cut from, if it is a piece of weight data that is still alive. */
export function sliceOrigin(dataId: object): SliceOrigin | undefined {
  const origin = origins.get(dataId);
  return origin === undefined || freed.has(origin.source) ? undefined : origin;
}

/** The backend freed this data (backend.ts's disposeData hook). */
export function dataFreed(dataId: object): void {
  freed.add(dataId);
}

/** Data came (back) onto the backend under this dataId: tfjs moves a tensor between backends under
 *  the same dataId, freeing it on the one it leaves, so a weight that went to 'cpu' for one call and
 *  came back is alive again (its pieces count as its pieces once more). */
export function dataMoved(dataId: object): void {
  freed.delete(dataId);
}

/** Records `piece` (e.g. "split/1/8,8,8/2") of `input` as the data of `output`. */
export function recordPiece(input: TensorInfo, output: TensorInfo, piece: string): void {
  if (output.dataId === input.dataId) return; // shared data: already the weight itself
  // The input's shape is part of the piece: reshapes, clones and expandDims share one dataId,
  // and the same begin and size cut different values out of its [16, 16] and [32, 8] views.
  const cut = `[${input.shape.join(',')}]${piece}`;
  const parent = sliceOrigin(input.dataId);
  origins.set(output.dataId, parent === undefined ? { source: input.dataId, piece: cut } : { source: parent.source, piece: `${parent.piece}>${cut}` });
}
