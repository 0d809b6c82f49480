// Weight operands made ready once and reused: per backend instance, keyed by the tensor's dataId.
// tfjs never changes the data behind a dataId (Variable.assign gives the variable a new one and
// disposes the old), so an entry stays valid until its data is disposed; the backend's
// disposeData hook (backend.ts) then releases it, and disposing the backend releases them all.

import type { DecodedOperand } from '../kernels/contract.js';
import type { MatmulOperand } from '../core/prepared-weights.js';
import { PreparedWeights } from '../core/prepared-weights.js';
import { counters } from './counters.js';
import type { WeightMode } from './flags.js';

/** A weight operand [N, K] in the form a product takes. */
export type WeightOperand =
  | {
    kind: 'quantized';
    mode: Exclude<WeightMode, 'none'>;
    weights: PreparedWeights | MatmulOperand;
    /** Rows of W that held NaN or ±Inf (quantized as zeros): their output columns are NaN. */
    nanColumns?: Int32Array;
  }
  | { kind: 'float'; mode: 'none'; operand: DecodedOperand };

function release(w: WeightOperand): void {
  if (w.kind === 'quantized' && PreparedWeights.is(w.weights)) w.weights.dispose();
  counters.weightsReleased++;
}

/**
 * At most this many pieces of one weight stay cached (weight-slices.ts; a key with a piece is one
 * that `isPiece` names), the least recently used released first. A GRU cuts 3 pieces of its
 * recurrent kernel, ConvLSTM2D 4 of each kernel; a model that cuts a weight differently at every
 * call (a table sliced to each sequence's length) would otherwise keep one operand per distinct cut
 * until the weight is freed — without bound.
 */
export const MAX_CACHED_PIECES = 32;

export class WeightCache {
  /** dataId → (key → operand), in order of last use; a key names the mode, the memory layout and
   *  the batch index (and, for a piece of the weight, the piece). */
  readonly #entries = new Map<object, Map<string, WeightOperand>>();

  /** The operand stored under `key` for this data, or undefined. */
  get(dataId: object, key: string): WeightOperand | undefined {
    const byKey = this.#entries.get(dataId);
    const w = byKey?.get(key);
    if (w !== undefined) {
      counters.weightCacheHits++;
      byKey!.delete(key); // to the end: the most recently used
      byKey!.set(key, w);
    }
    return w;
  }

  /** Stores an operand; entries of this data in another mode (the flag changed) are released, and
   *  pieces past MAX_CACHED_PIECES, the least recently used first. */
  set(dataId: object, key: string, w: WeightOperand, isPiece: (key: string) => boolean = () => false): void {
    let byKey = this.#entries.get(dataId);
    if (byKey === undefined) this.#entries.set(dataId, (byKey = new Map()));
    for (const [k, old] of byKey) {
      if (old.mode !== w.mode) {
        release(old);
        byKey.delete(k);
      }
    }
    byKey.set(key, w);
    counters.weightsPrepared++;
    if (!isPiece(key)) return;
    const pieces = [...byKey.keys()].filter(isPiece);
    for (const k of pieces.slice(0, Math.max(0, pieces.length - MAX_CACHED_PIECES))) {
      release(byKey.get(k)!);
      byKey.delete(k);
    }
  }

  /** The data was disposed: release what was made from it. */
  forget(dataId: object): void {
    const byKey = this.#entries.get(dataId);
    if (byKey === undefined) return;
    for (const w of byKey.values()) release(w);
    this.#entries.delete(dataId);
  }

  /** Releases every entry (the backend is being disposed). */
  clear(): void {
    for (const dataId of [...this.#entries.keys()]) this.forget(dataId);
  }

  /** How many tensors have entries. */
  get size(): number {
    return this.#entries.size;
  }
}
