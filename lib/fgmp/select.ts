// Threshold selection for FGMP: the k lowest-impact blocks become FP4. Linear time (quickselect,
// not a sort) and deterministic under ties: among equal impacts, lower block indices (and earlier
// tensors, for a model-wide threshold) go to FP4 first.

import { LITTLE_ENDIAN, plainView, typedArrayName } from '../core/typed-arrays.js';
import { checkFraction, describe, isArray, isObjectArgument, newArray } from '../core/validate.js';
import { scratch } from '../core/scratch.js';

export interface Selection {
  /** Impact of the k-th lowest block: blocks below it are FP4, blocks above it FP8. */
  threshold: number;
  /** How many blocks whose impact equals the threshold are FP4 (the first ones in order). */
  tiesTaken: number;
  /** Number of FP4 blocks. */
  fp4Blocks: number;
  /** How many of the ties each tensor takes (in the order given): quantize tensor i of a
   *  model-wide selection with `selection: forTensor(selection, i)`, so ties are not taken twice. */
  ties: number[];
}

/** A selection's threshold and tiesTaken, as read from the caller's object: numbers (else a
 *  TypeError), a threshold that is not NaN and an integer tiesTaken ≥ 0 (else a RangeError).
 *  `expected` completes "selection …" in the message. */
export function checkSelectionValues(fn: string, threshold: unknown, tiesTaken: unknown, expected: string): Pick<Selection, 'threshold' | 'tiesTaken'> {
  const Kind = typeof threshold !== 'number' || typeof tiesTaken !== 'number' ? TypeError
    : Number.isNaN(threshold) || !Number.isInteger(tiesTaken) || tiesTaken < 0 ? RangeError : null;
  if (Kind !== null) throw new Kind(`${fn}: selection ${expected}, got { threshold: ${describe(threshold)}, tiesTaken: ${describe(tiesTaken)} }`);
  return { threshold: threshold as number, tiesTaken: tiesTaken as number };
}

/** The part of a model-wide selection that applies to tensor `index` (its own share of ties). */
export function forTensor(selection: Selection, index: number): Pick<Selection, 'threshold' | 'tiesTaken'> {
  const fn = 'forTensor';
  if (!isObjectArgument(selection)) throw new TypeError(`${fn}: selection must be the result of selectThreshold(), got ${describe(selection)}`);
  const { threshold, ties } = selection;
  if (typeof threshold !== 'number' || !isArray(ties)) {
    throw new TypeError(`${fn}: selection must be the result of selectThreshold() ({ threshold, tiesTaken, fp4Blocks, ties }), got an object without them`);
  }
  // Only the length and the one share asked for are read (ties may be sparse, or a Proxy).
  const count = (ties as unknown[]).length;
  if (typeof index !== 'number') throw new TypeError(`${fn}: index must be an integer in [0, ${count}) (a Number), got ${describe(index)}`);
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`${fn}: index must be an integer in [0, ${count}), got ${describe(index)}`);
  }
  const tiesTaken: unknown = (ties as unknown[])[index];
  if (typeof tiesTaken !== 'number') throw new TypeError(`${fn}: selection.ties[${index}] must be an integer ≥ 0 (a Number), got ${describe(tiesTaken)}`);
  if (!Number.isInteger(tiesTaken) || tiesTaken < 0) throw new RangeError(`${fn}: selection.ties[${index}] must be an integer ≥ 0, got ${describe(tiesTaken)}`);
  return { threshold, tiesTaken };
}

/** k-th smallest value (0-based) of `values`, in expected linear time; `values` is reordered. */
export function quickselect(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  // A fixed-seed generator for pivots: deterministic and immune to adversarial (sorted) inputs.
  let state = 0x9e3779b9;
  while (hi > lo) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const pivot = values[lo + (state % (hi - lo + 1))];
    // Three-way partition: [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot.
    let lt = lo;
    let gt = hi;
    let i = lo;
    while (i <= gt) {
      const v = values[i];
      if (v < pivot) { values[i] = values[lt]; values[lt] = v; lt++; i++; }
      else if (v > pivot) { values[i] = values[gt]; values[gt] = v; gt--; }
      else i++;
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return pivot;
  }
  return values[lo];
}

/**
 * k-th smallest value (0-based) of `values`, all ≥ +0 (no −0, no NaN); `values` may be reordered.
 * Non-negative doubles order as the high 32 bits of their IEEE pattern, then the low, so a
 * histogram of the top 16 bits (exponent and 4 mantissa bits) finds the slice holding the k-th.
 * The same value as quickselect, found faster (selectThreshold over a million impacts, the copy
 * included: ~10 ms instead of ~35 with quickselect alone, --cpu-prof of FGMP quantize): one pass
 * counts the top 16 bits of each value, a second gathers the values in the bucket that holds the
 * k-th (a few thousand, or all of them when they are equal), and quickselect finishes there.
 */
export function selectNonNegative(values: Float64Array, k: number): number {
  if (!LITTLE_ENDIAN || values.byteOffset % 4 !== 0 || values.length < 4096) return quickselect(values, k);
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length * 2);
  const counts = scratch('fgmp.select-counts', Uint32Array, 65536).fill(0);
  for (let i = 1; i < words.length; i += 2) counts[words[i] >>> 16]++;
  let bucket = 0;
  let below = 0;
  while (below + counts[bucket] <= k) below += counts[bucket++];
  const inBucket = scratch('fgmp.select-bucket', Float64Array, counts[bucket]);
  let o = 0;
  for (let i = 0; i < values.length; i++) if (words[2 * i + 1] >>> 16 === bucket) inBucket[o++] = values[i];
  return quickselect(inBucket, k - below);
}

/** Impacts copied into one array (8 bytes each) up to this many (128 MiB): a tensor's, or a small
 *  model's; beyond, the selection runs on the lists themselves. */
const COPY_LIMIT = 1 << 24;
/** A bucket at most this large is gathered and quickselected; a larger one is split by the next 16 bits. */
const GATHER_LIMIT = 1 << 20;

/**
 * k-th smallest value (0-based) of all the values of `lists` (`total` of them, all ≥ +0: no −0, no
 * NaN). Up to `copyLimit` values are copied into one array for selectNonNegative (the fastest
 * way); more — a model-wide selection over hundreds of millions of impacts, or the same list
 * passed many times — are never copied whole: the top 16 bits of each value's 64-bit pattern are
 * counted across the lists to find the slice holding the k-th, whose values are gathered (at most
 * GATHER_LIMIT) and quickselected, or split again by the next 16 bits — after four passes every
 * bit is known and the pattern is the value. Memory: 256 KiB of counts and at most GATHER_LIMIT
 * values, whatever `total` is; the same value either way.
 */
export function selectAcross(fn: string, lists: readonly ArrayLike<number>[], total: number, k: number, copyLimit = COPY_LIMIT): number {
  const negative = (v: number) => new RangeError(`${fn}: impact scores must be non-negative numbers, found ${v}`);
  if (total <= copyLimit) {
    // A temporary for selectNonNegative (it reorders it), done with before this returns: scratch.
    const all = scratch('fgmp.select', Float64Array, total);
    let o = 0;
    for (const t of lists) {
      for (let i = 0; i < t.length; i++) {
        const v = t[i];
        if (!(v >= 0)) throw negative(v);
        all[o++] = v + 0; // −0 as +0 (equal to it; the radix pass orders bit patterns)
      }
    }
    return selectNonNegative(all, k);
  }
  for (const t of lists) {
    for (let i = 0; i < t.length; i++) {
      const v = t[i];
      if (!(v >= 0)) throw negative(v);
    }
  }
  const bits = new Float64Array(1);
  const words = new Uint32Array(bits.buffer);
  const HI = LITTLE_ENDIAN ? 1 : 0;
  const LO = 1 - HI;
  const counts = scratch('fgmp.select-counts', Uint32Array, 65536);
  // Digit d of a pattern: bits 63−16d … 48−16d. `prefix` holds the digits found so far.
  const digit = (d: number) => (d === 0 ? words[HI] >>> 16 : d === 1 ? words[HI] & 0xffff : d === 2 ? words[LO] >>> 16 : words[LO] & 0xffff);
  const prefix = [0, 0, 0, 0];
  const matches = (d: number) => {
    for (let j = 0; j < d; j++) if (digit(j) !== prefix[j]) return false;
    return true;
  };
  for (let d = 0; d < 4; d++) {
    counts.fill(0);
    for (const t of lists) {
      for (let i = 0; i < t.length; i++) {
        bits[0] = t[i] + 0;
        if (d === 0 || matches(d)) counts[digit(d)]++;
      }
    }
    let bucket = 0;
    while (counts[bucket] <= k) k -= counts[bucket++];
    prefix[d] = bucket;
    if (counts[bucket] <= GATHER_LIMIT) {
      const inBucket = scratch('fgmp.select-bucket', Float64Array, counts[bucket]);
      let o = 0;
      for (const t of lists) {
        for (let i = 0; i < t.length; i++) {
          bits[0] = t[i] + 0;
          if (matches(d + 1)) inBucket[o++] = bits[0];
        }
      }
      return quickselect(inBucket, k);
    }
  }
  // Every bit is fixed: all the values left are this one.
  words[HI] = (prefix[0] << 16) | prefix[1];
  words[LO] = (prefix[2] << 16) | prefix[3];
  return bits[0];
}

/** The most impact lists (tensors) read: a model has thousands; a Proxy may claim 2^32 − 1 of them. */
const MAX_TENSORS = 2 ** 24;

/**
 * Impact lists as the selection functions read them: Float64Arrays or Float32Arrays (plain views
 * of their real length, not copied: a model's impacts can be large) or arrays of numbers (copied
 * once, so a getter or Proxy is read one time). Every caller object is read before any view is
 * made, each element checked as it is read: a sparse array fails at its first hole, not after a
 * copy of all its 2^32 − 1 holes.
 */
function readImpacts(fn: string, impacts: unknown): ArrayLike<number>[] {
  if (!isArray(impacts)) throw new TypeError(`${fn}: impacts must be an array of impact lists (one per tensor), got ${describe(impacts)}`);
  const count = impacts.length;
  if (count > MAX_TENSORS) throw new RangeError(`${fn}: impacts lists ${count} tensors; at most ${MAX_TENSORS} (2^24) are read`);
  const lists: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const t: unknown = impacts[i];
    const kind = typedArrayName(t);
    if (kind !== 'Float64Array' && kind !== 'Float32Array' && !isArray(t)) {
      throw new TypeError(`${fn}: impacts[${i}] must be a Float64Array, a Float32Array or an array of numbers, got ${describe(t)}`);
    }
    lists.push(t);
  }
  const numbers = lists.map((t, i) => (isArray(t) ? readNumbers(fn, t, i) : null));
  return lists.map((t, i) => numbers[i] ?? plainView(typedArrayName(t) as 'Float64Array' | 'Float32Array', t as ArrayBufferView));
}

/**
 * The longest array of numbers read element by element (2^30): a real array that long already
 * holds 8 GiB; a longer claim is a sparse array or a Proxy. Longer lists come as Float64Arrays.
 */
const MAX_LISTED_NUMBERS = 2 ** 30;

/**
 * impacts[i], an array of numbers, read once into a Float64Array. The copy grows with the elements
 * read, never to the length claimed first: a sparse array or a Proxy claiming 2^30 elements is
 * refused at its first hole having allocated nothing large (an allocation the machine cannot give
 * aborts a process under AddressSanitizer, and decides nothing a caller could rely on).
 */
function readNumbers(fn: string, t: readonly unknown[], i: number): Float64Array {
  const length: unknown = t.length;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) throw new RangeError(`${fn}: impacts[${i}] has length ${describe(length)}`);
  if (length > MAX_LISTED_NUMBERS) {
    throw new RangeError(`${fn}: impacts[${i}] is an array of ${length} elements; an array of numbers may have at most 2^30 (pass a Float64Array)`);
  }
  let out = newArray(fn, Float64Array, Math.min(length, 1 << 16), `copy of impacts[${i}]`);
  for (let j = 0; j < length; j++) {
    const v: unknown = t[j];
    if (typeof v !== 'number') throw new TypeError(`${fn}: impacts[${i}][${j}] must be a number, got ${describe(v)}`);
    if (j === out.length) {
      const grown = newArray(fn, Float64Array, Math.min(length, 2 * j), `copy of impacts[${i}]`);
      grown.set(out);
      out = grown;
    }
    out[j] = v;
  }
  return out;
}

/**
 * One threshold over the impacts of many tensors (the paper's model-wide threshold). Each list is a
 * Float64Array, a Float32Array or an array of at most 2^30 numbers.
 */
export function selectThreshold(impactLists: ArrayLike<number>[], fp4Fraction: number): Selection {
  const fn = 'selectThreshold';
  checkFraction(fn, 'fp4Fraction', fp4Fraction);
  const impacts = readImpacts(fn, impactLists);
  let total = 0;
  for (const t of impacts) total += t.length;
  const fp4Blocks = Math.round(fp4Fraction * total);
  if (fp4Blocks === 0) return { threshold: -Infinity, tiesTaken: 0, fp4Blocks: 0, ties: impacts.map(() => 0) };
  const threshold = selectAcross(fn, impacts, total, fp4Blocks - 1); // −0 is read as +0 (equal to it)
  let below = 0;
  const equal: number[] = [];
  for (const t of impacts) {
    let e = 0;
    for (let i = 0; i < t.length; i++) {
      if (t[i] < threshold) below++;
      else if (t[i] === threshold) e++;
    }
    equal.push(e);
  }
  const tiesTaken = fp4Blocks - below;
  // Ties go to earlier tensors first, as assignPrecision over all tensors at once would give them.
  let left = tiesTaken;
  const ties = equal.map((e) => {
    const take = Math.min(e, left);
    left -= take;
    return take;
  });
  return { threshold, tiesTaken, fp4Blocks, ties };
}

/**
 * Precision masks (bit set = FP8) for each tensor under a selection: impact < threshold → FP4,
 * impact > threshold → FP8, and the first `tiesTaken` blocks equal to it (in tensor, then block
 * order) → FP4.
 */
export function assignPrecision(impactLists: ArrayLike<number>[], selection: Pick<Selection, 'threshold' | 'tiesTaken'>): Uint8Array[] {
  const fn = 'assignPrecision';
  if (!isObjectArgument(selection)) throw new TypeError(`${fn}: selection must be { threshold, tiesTaken } (from selectThreshold or forTensor), got ${describe(selection)}`);
  // Read before the impacts are looked at.
  const { threshold, tiesTaken } = checkSelectionValues(fn, selection.threshold, selection.tiesTaken, 'must be { threshold: number, tiesTaken: integer ≥ 0 }');
  const impacts = readImpacts(fn, impactLists);
  let ties = tiesTaken;
  return impacts.map((t) => {
    const mask = new Uint8Array(Math.ceil(t.length / 8));
    for (let i = 0; i < t.length; i++) {
      const v = t[i];
      let fp8: boolean;
      if (v < threshold) fp8 = false;
      else if (v > threshold) fp8 = true;
      else if (ties > 0) { ties--; fp8 = false; }
      else fp8 = true;
      if (fp8) mask[i >> 3] |= 1 << (i & 7);
    }
    return mask;
  });
}

export function isFp8Block(mask: Uint8Array, block: number): boolean {
  return ((mask[block >> 3] >> (block & 7)) & 1) === 1;
}

const BITS_SET = Uint8Array.from({ length: 256 }, (_, v) => {
  let n = 0;
  for (let x = v; x !== 0; x &= x - 1) n++;
  return n;
});

/** FP8 blocks among mask bits [from, to): the bits of partial bytes one by one, whole bytes by table. */
export function countFp8BlocksBetween(mask: Uint8Array, from: number, to: number): number {
  let n = 0;
  let b = from;
  for (; b < to && b % 8 !== 0; b++) n += isFp8Block(mask, b) ? 1 : 0;
  if (b < to) n += countFp8Blocks(mask.subarray(b / 8), to - b);
  return n;
}

/** FP8 blocks among the first `blocks` mask bits, a byte at a time (runs on every matmul). */
export function countFp8Blocks(mask: Uint8Array, blocks: number): number {
  const whole = blocks >> 3;
  let n = 0;
  for (let i = 0; i < whole; i++) n += BITS_SET[mask[i]];
  if ((blocks & 7) !== 0) n += BITS_SET[mask[whole] & ((1 << (blocks & 7)) - 1)];
  return n;
}
