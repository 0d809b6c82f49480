// Helpers of the Promise-returning calls (quantizeAsync, matmulAsync): what they take from the
// caller at call time, and how an AbortSignal ends the wait.

import { bufferOf, isSharedBuffer, typedArrayName } from './typed-arrays.js';

/** Whether a typed array lives in a SharedArrayBuffer (any realm). A brand check, not the
 *  buffer's toString tag: an ordinary ArrayBuffer given an own Symbol.toStringTag
 *  'SharedArrayBuffer' is still copied. */
export function isShared(a: ArrayBufferView): boolean {
  return isSharedBuffer(bufferOf(a));
}

/** A snapshot taken by takeSnapshot: `array` until release(), which hands its memory back. */
export interface Snapshot<T> {
  readonly array: T;
  release(): void;
}

// Snapshot memory of the wasm/js paths, reused: the copy must be taken before the call returns, on
// this thread, and first-touching a fresh buffer costs far more than copying into a warm one (a
// fresh 256 MiB copy took ~800 ms on the 2-core CI VM, ~40 ms into a reused buffer). Idle buffers
// are kept up to SNAPSHOT_IDLE_BYTES (the ones released longest ago dropped first) and all dropped
// after SNAPSHOT_IDLE_MS without a release, so a burst of calls reuses them and an idle process
// holds nothing for long.
// The first call at a new size still first-touches its buffer here, on the JavaScript thread. That
// cannot move elsewhere: the copy must be complete before the call returns (or the caller could
// change the input under it), and no thread can fault the pages in ahead of a size it does not
// know yet. Sharing the faults with a helper thread was measured and dropped: a worker that
// write-faulted chunks of a fresh SharedArrayBuffer while this thread copied into the others took
// 144–394 ms (median 322) against 169–428 ms (median 210) alone at 256 MiB, five runs each on the
// 2 shared vCPUs (the page faults of one process seem to contend in the kernel), and it would need
// SharedArrayBuffer snapshots and a worker thread in every process. The native addon already
// splits its copy over its threads, into huge pages (native/job_buffers.h).
const SNAPSHOT_POOL_MIN_BYTES = 1 << 20; // smaller copies are plain slices (fresh pages cost little)
const SNAPSHOT_IDLE_BYTES = 256 * 2 ** 20;
const SNAPSHOT_IDLE_MS = 5000;
const idleSnapshots: ArrayBuffer[] = []; // released longest ago first
let idleSnapshotBytes = 0;
let lastRelease = 0;
let trimTimer: ReturnType<typeof setTimeout> | undefined;

const SNAPSHOT_KINDS = { Float32Array, Uint16Array, Uint8Array } as const;

function trimSnapshots(): void {
  trimTimer = undefined;
  const idleFor = Date.now() - lastRelease;
  if (idleFor >= SNAPSHOT_IDLE_MS) {
    idleSnapshots.length = 0;
    idleSnapshotBytes = 0;
  } else if (idleSnapshots.length > 0) {
    scheduleTrim(SNAPSHOT_IDLE_MS - idleFor);
  }
}

function scheduleTrim(ms: number): void {
  if (trimTimer !== undefined || typeof setTimeout !== 'function') return;
  trimTimer = setTimeout(trimSnapshots, ms);
  (trimTimer as { unref?: () => void }).unref?.(); // Node: never keeps the process alive
}

/**
 * snapshotArray() for work that ends (the wasm/js chunk loops): the caller's array itself when it
 * is SharedArrayBuffer-backed, else a copy taken now into reused memory of fp4kit's own, handed
 * back by release() once the work is done with it. The array must not outlive release() (nothing
 * derived from it may reach the caller). `a` is a plain view of this realm (checkSource's).
 */
export function takeSnapshot<T extends Float32Array | Uint16Array | Uint8Array>(a: T): Snapshot<T> {
  if (isShared(a)) return { array: a, release: () => {} };
  const bytes = a.byteLength;
  if (bytes < SNAPSHOT_POOL_MIN_BYTES) return { array: a.slice() as T, release: () => {} };
  // Best fit among idle buffers at most twice the size.
  let best = -1;
  for (let i = 0; i < idleSnapshots.length; i++) {
    const c = idleSnapshots[i].byteLength;
    if (c >= bytes && c <= 2 * bytes && (best < 0 || c < idleSnapshots[best].byteLength)) best = i;
  }
  let buffer: ArrayBuffer;
  if (best >= 0) {
    buffer = idleSnapshots.splice(best, 1)[0];
    idleSnapshotBytes -= buffer.byteLength;
  } else {
    buffer = new ArrayBuffer(bytes);
  }
  const Kind = SNAPSHOT_KINDS[typedArrayName(a) as keyof typeof SNAPSHOT_KINDS] as unknown as new (b: ArrayBuffer, o: number, n: number) => T;
  const array = new Kind(buffer, 0, a.length);
  array.set(a);
  let released = false;
  return {
    array,
    release: () => {
      if (released) return;
      released = true;
      idleSnapshots.push(buffer);
      idleSnapshotBytes += buffer.byteLength;
      while (idleSnapshotBytes > SNAPSHOT_IDLE_BYTES) idleSnapshotBytes -= idleSnapshots.shift()!.byteLength;
      lastRelease = Date.now();
      if (idleSnapshots.length > 0) scheduleTrim(SNAPSHOT_IDLE_MS);
    },
  };
}

/**
 * Progress inside one long call, for a caller that owns its input and keeps it unchanged until the
 * call settles (the checkpoint tool, whose tensors live in its own SharedArrayBuffers): the call
 * works in steps of whole rows, about `elements` input elements each, and awaits
 * `between(elementsDone)` after every step but the last. With the native addon the input is read
 * step by step (a job per step) instead of being copied at the call; the results are the same bits.
 */
export interface StepProgress {
  elements: number;
  between(elementsDone: number): Promise<void>;
}

/** Rows per step of a call with `progress` (at least one), or every row in one step without it. */
export function rowsPerStep(progress: StepProgress | undefined, rows: number, cols: number): number {
  return progress ? Math.max(1, Math.floor(progress.elements / Math.max(1, cols))) : Math.max(1, rows);
}

/** After rows [0, rowsDone) of `rows`: progress.between (unless it was the last step), then the signal. */
export async function afterStep(progress: StepProgress | undefined, rowsDone: number, rows: number, cols: number, signal: AbortSignal | undefined): Promise<void> {
  if (progress === undefined || rowsDone >= rows) return;
  await progress.between(rowsDone * cols);
  throwIfAborted(signal);
}

// AbortSignal's own methods and getters, captured when this module loads: an AbortSignal may carry
// own properties of the caller's (a `throwIfAborted` or `aborted` of its own), and the async calls
// look at the signal after they have checked the caller's arrays, when no caller code may run.
const signalProto = AbortSignal.prototype;
const throwIfAbortedMethod = signalProto.throwIfAborted;
const abortedOf = Object.getOwnPropertyDescriptor(signalProto, 'aborted')!.get!;
const reasonOf = Object.getOwnPropertyDescriptor(signalProto, 'reason')!.get!;
const addListener = EventTarget.prototype.addEventListener;
const removeListener = EventTarget.prototype.removeEventListener;

/** Whether `v` really is an AbortSignal (a brand check: a look-alike object is not). */
export function isAbortSignal(v: unknown): v is AbortSignal {
  try {
    abortedOf.call(v); // throws unless `v` really is an AbortSignal
    return true;
  } catch {
    return false;
  }
}

/** signal.throwIfAborted() by AbortSignal's own method (nothing when there is no signal). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal !== undefined) throwIfAbortedMethod.call(signal);
}

// The calls waiting on each signal. One 'abort' listener per signal fans out to all of them (a
// listener per call made a signal shared by more than 10 concurrent calls print Node's
// MaxListenersExceededWarning); it is removed when the last of them settles, so nothing is left
// on a long-lived signal.
const waitingOn = new WeakMap<AbortSignal, { calls: Set<() => void>; listener: () => void }>();

function watchAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let entry = waitingOn.get(signal);
  if (entry === undefined) {
    const calls = new Set<() => void>();
    const listener = () => {
      waitingOn.delete(signal);
      removeListener.call(signal, 'abort', listener);
      for (const call of [...calls]) call();
      calls.clear();
    };
    entry = { calls, listener };
    waitingOn.set(signal, entry);
    addListener.call(signal, 'abort', listener);
  }
  const { calls, listener } = entry;
  calls.add(onAbort);
  return () => {
    if (!calls.delete(onAbort) || calls.size > 0 || waitingOn.get(signal)?.calls !== calls) return;
    waitingOn.delete(signal);
    removeListener.call(signal, 'abort', listener);
  };
}

/** Waits for `work`; an abort rejects at once with the signal's reason. Work already handed to
 *  the addon's threads finishes in the background and its result is dropped. */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (abortedOf.call(signal)) {
    work.catch(() => {});
    return Promise.reject(reasonOf.call(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const unwatch = watchAbort(signal, () => {
      work.catch(() => {});
      reject(reasonOf.call(signal));
    });
    work.then(
      (v) => { unwatch(); resolve(v); },
      (e) => { unwatch(); reject(e); },
    );
  });
}

/** Resolvers waiting for the browser's next turn (nextTurn without setImmediate). */
const waiting: Array<() => void> = [];
let channel: MessageChannel | undefined;

/**
 * A turn of the event loop, for work done in slices: setImmediate in Node; in a browser (which has
 * none) a MessageChannel message, which is not clamped to 4 ms as a nested setTimeout(0) is.
 */
export function nextTurn(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise<void>((resolve) => setImmediate(resolve));
  if (channel === undefined) {
    channel = new MessageChannel();
    channel.port1.onmessage = () => waiting.shift()?.();
  }
  const port = channel.port2;
  return new Promise<void>((resolve) => {
    waiting.push(resolve);
    port.postMessage(0);
  });
}
