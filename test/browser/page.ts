// Runs in headless Chromium: the browser entry (lib/browser.ts) on the WebAssembly backend, over
// the same deterministic inputs the Node side computes with the js reference.
import { availableBackends, encode, getBackend, initWasm, matmul, quantize, quantizeGradient, relaxedSimdWorks, type WasmBuild } from '../../lib/browser.js';
import { instantiateWasmKernels } from '../../lib/kernels/wasm.js';
import { browserCases, type BrowserResult } from './cases.js';
import { kernelOutputs } from './matmul-cases.js';

declare global {
  interface Window {
    runChecks(build: WasmBuild): Promise<BrowserResult>;
    /** The FP4 matmul cases (matmul-cases.ts) on the module at `url`, through its kernel table. */
    runMatmulCases(url: string): Promise<{ matmulSimd: string; outputs: Record<string, string> }>;
    relaxedSimdWorks(): boolean;
  }
}

window.runChecks = async (build) => {
  await initWasm(undefined, { residentBytes: 64 * 2 ** 20, build });
  return browserCases({ quantize, encode, matmul, quantizeGradient }, getBackend(), availableBackends());
};

window.runMatmulCases = async (url) => {
  const kernels = instantiateWasmKernels(await (await fetch(url)).arrayBuffer());
  return { matmulSimd: kernels.matmul!.matmulSimd, outputs: kernelOutputs(kernels.matmul!) };
};

window.relaxedSimdWorks = relaxedSimdWorks;
