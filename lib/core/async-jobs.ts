// Helpers of the Promise-returning calls (quantizeAsync, matmulAsync): what they take from the
// caller at call time, and how an AbortSignal ends the wait.

import { bufferOf, isSharedBuffer } from './typed-arrays.js';

/** Whether a typed array lives in a SharedArrayBuffer (any realm). A brand check, not the
 *  buffer's toString tag: an ordinary ArrayBuffer given an own Symbol.toStringTag
 *  'SharedArrayBuffer' is still copied. */
export function isShared(a: ArrayBufferView): boolean {
  return isSharedBuffer(bufferOf(a));
}

/** The caller's array itself when it is SharedArrayBuffer-backed (it can never be detached or
 *  shrunk), else a copy taken now, so later changes by the caller cannot reach the work. */
export function snapshotArray<T extends Float32Array | Uint16Array | Uint8Array>(a: T): T {
  return isShared(a) ? a : (a.slice() as T);
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

/** Waits for `work`; an abort rejects at once with the signal's reason. Work already handed to
 *  the addon's threads finishes in the background and its result is dropped. */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (abortedOf.call(signal)) {
    work.catch(() => {});
    return Promise.reject(reasonOf.call(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(reasonOf.call(signal));
    };
    addListener.call(signal, 'abort', onAbort, { once: true });
    work.then(
      (v) => { removeListener.call(signal, 'abort', onAbort); resolve(v); },
      (e) => { removeListener.call(signal, 'abort', onAbort); reject(e); },
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
