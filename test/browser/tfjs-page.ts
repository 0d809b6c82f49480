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
    /** What setWasmPaths throws for each of a fixed list of arguments ('ok' when it accepts one). */
    setWasmPathsErrors(): string[];
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

window.setWasmPathsErrors = () => {
  const args: unknown[] = [42, null, ['/wasm/'], new Uint8Array(4), { tfjs: '/wasm/', fp4: '/x.wasm' }, { tfjs: 7 }, { fp4kit: {} }, { fp4kit: '/wasm/fp4kit.wasm' }];
  return args.map((a) => {
    try {
      setWasmPaths(a as WasmPaths);
      return 'ok';
    } catch (err) {
      return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
  });
};
