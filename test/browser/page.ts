// Runs in headless Chromium: the browser entry (lib/browser.ts) on the WebAssembly backend, over
// the same deterministic inputs the Node side computes with the js reference.
import { availableBackends, encode, getBackend, initWasm, matmul, quantize, quantizeGradient } from '../../lib/browser.js';
import { browserCases, type BrowserResult } from './cases.js';

declare global {
  interface Window {
    runChecks(): Promise<BrowserResult>;
  }
}

window.runChecks = async () => {
  await initWasm(new URL('/fp4kit.wasm', location.href), { residentBytes: 64 * 2 ** 20 });
  return browserCases({ quantize, encode, matmul, quantizeGradient }, getBackend(), availableBackends());
};
