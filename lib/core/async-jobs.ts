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

/** Waits for `work`; an abort rejects at once with the signal's reason. Work already handed to
 *  the addon's threads finishes in the background and its result is dropped. */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
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
