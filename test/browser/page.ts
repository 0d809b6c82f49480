// Runs in headless Chromium: the browser entry (lib/browser.ts) on the WebAssembly backend, over
// the same deterministic inputs the Node side computes with the js reference.
import { availableBackends, encode, getBackend, initWasm, matmul, matmulAsync, quantize, quantizeAsync, quantizeGradient, relaxedSimdWorks, type WasmBuild } from '../../lib/browser.js';
import { instantiateWasmKernels } from '../../lib/kernels/wasm.js';
import { browserCases, hex, input, type BrowserResult } from './cases.js';
import { kernelOutputs } from './matmul-cases.js';

declare global {
  interface Window {
    runChecks(build: WasmBuild): Promise<BrowserResult>;
    /** The FP4 matmul cases (matmul-cases.ts) on the module at `url`, through its kernel table. */
    runMatmulCases(url: string): Promise<{ matmulSimd: string; outputs: Record<string, string> }>;
    relaxedSimdWorks(): boolean;
    /** The Promise calls against their synchronous twins, on js (before initWasm) and on wasm. */
    runAsyncChecks(): Promise<Record<string, string | boolean>>;
    /** initWasm's outcome: 'ok' and the backend, or the error it rejected with. */
    initWasmOutcome(source: string | undefined, build: WasmBuild | 'auto'): Promise<string>;
  }
}

window.initWasmOutcome = async (source, build) => {
  try {
    await initWasm(source, { build });
    return `ok ${getBackend().name}`;
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
};

window.runChecks = async (build) => {
  await initWasm(undefined, { residentBytes: 64 * 2 ** 20, build });
  return browserCases({ quantize, encode, matmul, quantizeGradient }, getBackend(), availableBackends());
};

window.runMatmulCases = async (url) => {
  const kernels = instantiateWasmKernels(await (await fetch(url)).arrayBuffer());
  return { matmulSimd: kernels.matmul!.matmulSimd, outputs: kernelOutputs(kernels.matmul!) };
};

window.relaxedSimdWorks = relaxedSimdWorks;

window.runAsyncChecks = async () => {
  const out: Record<string, string | boolean> = {};
  const x = input(16 * 64, 3);
  const w = quantize(input(32 * 64, 4), { format: 'nvfp4', shape: [32, 64] });
  // js until initWasm: every product takes the slice loop (turns of the event loop between slices).
  out.jsBackend = getBackend().name;
  out.jsMatmul = hex(await matmulAsync(x, w)) === hex(matmul(x, w));
  const q = await quantizeAsync(x, { format: 'mxfp4', shape: [16, 64] });
  out.jsQuantize = hex(q.data) === hex(quantize(x, { format: 'mxfp4', shape: [16, 64] }).data);
  const aborted = new AbortController();
  aborted.abort(new Error('stop'));
  out.abort = await quantizeAsync(x, { format: 'mxfp4', shape: [16, 64], signal: aborted.signal }).then(() => 'resolved', (e: Error) => e.message);
  out.matmulAbort = await matmulAsync(x, w, { signal: aborted.signal }).then(() => 'resolved', (e: Error) => e.message);
  await initWasm(undefined, { residentBytes: 64 * 2 ** 20 });
  out.wasmBackend = getBackend().name;
  // 2^26 multiply-adds and more: sliced on wasm too.
  const big = input(32 * 1024, 5);
  const wb = quantize(input(1024 * 1024, 6), { format: 'mxfp4', shape: [1024, 1024] });
  out.wasmMatmul = hex(await matmulAsync(big, wb)) === hex(matmul(big, wb));
  const g = input(512 * 1024, 7);
  out.wasmQuantize = hex((await quantizeAsync(g, { format: 'nvfp4', shape: [512, 1024] })).data) === hex(quantize(g, { format: 'nvfp4', shape: [512, 1024] }).data);
  return out;
};
