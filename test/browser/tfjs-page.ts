// Runs in headless Chromium: tfjs (its browser builds) with the fp4kit backend's browser entry
// (lib/tfjs/browser.ts), fp4kit's kernels on its WebAssembly module, over the models of
// tfjs-cases.ts. The Node side runs the same cases for the expected bytes.
import * as tf from '@tensorflow/tfjs';
import { getBackend } from '../../lib/browser.js';
import { readCounters, setWasmPaths, type WasmPaths } from '../../lib/tfjs/browser.js';
import { runTfjsCases, type TfjsResult, type TfjsWeightMode } from './tfjs-cases.js';

export interface BackendAttempt {
  name: string;
  ok: boolean;
}

declare global {
  interface Window {
    /** setWasmPaths(paths), then each backend in turn until one initialises, then the cases on it. */
    runTfjs(paths: string | WasmPaths, backends: string[], modes: TfjsWeightMode[]): Promise<{ attempts: BackendAttempt[]; result: TfjsResult | null }>;
  }
}

window.runTfjs = async (paths, backends, modes) => {
  setWasmPaths(paths);
  const attempts: BackendAttempt[] = [];
  for (const name of backends) {
    const ok = await tf.setBackend(name);
    attempts.push({ name, ok });
    if (ok) {
      const k = getBackend();
      return { attempts, result: await runTfjsCases(readCounters, `${k.name}/${k.simd}`, modes) };
    }
  }
  return { attempts, result: null };
};
