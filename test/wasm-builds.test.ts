// Which build of the WebAssembly module loads (lib/kernels/wasm-builds.ts). The relaxed build's
// kernels are checked bit for bit in Chromium (test/browser.test.ts); here, in Node: the probe's
// bytes are its source's, the choice and its errors, and — on Node 20, whose V8 accepts relaxed
// SIMD behind a flag but computes the relaxed dot otherwise than the final spec — that the probe
// says no there, the loaders fall back or refuse, and the relaxed module really would have given
// wrong products (which is why validating the opcode is not enough).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import binaryen from 'binaryen';
import { describe, expect, it } from 'vitest';
import { chooseWasmBuild, PROBE_BYTES, PROBE_WAT, relaxedSimdWorks, simd128Works, WASM_BUILD_FILES } from '../lib/kernels/wasm-builds.js';
import { instantiateWasmKernels } from '../lib/kernels/wasm.js';
import { initWasm } from '../lib/browser.js';

const relaxedBytes = readFileSync(new URL(`../build-wasm/${WASM_BUILD_FILES.relaxed}`, import.meta.url));
const simd128Bytes = readFileSync(new URL(`../build-wasm/${WASM_BUILD_FILES.simd128}`, import.meta.url));
const NODE_20 = process.versions.node.split('.')[0] === '20';

/** Runs `script` (an ES module, TypeScript imports allowed) in a child Node with `flags`; its stdout. */
function child(script: string, flags: string[] = [], env: Record<string, string> = {}): string {
  return execFileSync(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8', env: { ...process.env, ...env },
  });
}

describe('the WebAssembly builds', () => {
  it("the probe's bytes are binaryen's assembly of its text", () => {
    const module = binaryen.parseText(PROBE_WAT);
    module.setFeatures(binaryen.Features.SIMD128 | binaryen.Features.RelaxedSIMD);
    expect(module.validate()).toBe(1);
    expect(Array.from(module.emitBinary())).toEqual(Array.from(PROBE_BYTES));
    module.dispose();
  });

  it('the two files are the two builds: the relaxed one holds the relaxed dot, the other none', () => {
    // Read back as text with every feature on (readBinary validates against the module's features).
    const read = (bytes: Uint8Array) => {
      const m = binaryen.readBinary(bytes);
      m.setFeatures(binaryen.Features.All);
      const text = m.emitText();
      m.dispose();
      return text;
    };
    expect(read(relaxedBytes)).toContain('i32x4.relaxed_dot_i8x16_i7x16_add_s');
    expect(read(simd128Bytes)).not.toMatch(/i32x4\.relaxed_|i8x16\.relaxed_/);
  });

  it("chooses a build: 'simd128' always; 'auto' and 'relaxed' by the probe; anything else refused", () => {
    expect(chooseWasmBuild('simd128', 'x')).toBe('simd128');
    expect(chooseWasmBuild(undefined, 'x')).toBe(relaxedSimdWorks() ? 'relaxed' : 'simd128');
    expect(chooseWasmBuild('auto', 'x')).toBe(relaxedSimdWorks() ? 'relaxed' : 'simd128');
    if (relaxedSimdWorks()) expect(chooseWasmBuild('relaxed', 'x')).toBe('relaxed');
    else expect(() => chooseWasmBuild('relaxed', 'x')).toThrow(/x: the relaxed-SIMD build was asked for, but this engine does not run relaxed SIMD as specified/);
    expect(() => chooseWasmBuild('avx512', 'FP4KIT_WASM_SIMD')).toThrow(/FP4KIT_WASM_SIMD: the WebAssembly build must be 'auto', 'relaxed' or 'simd128', got 'avx512'/);
    expect(() => chooseWasmBuild(3, 'x')).toThrow(TypeError); // not a name at all (README: TypeError)
    expect(() => chooseWasmBuild('sse' as never, 'x')).toThrow(RangeError);
  });

  // V8's --no-enable-sse4-1 takes SIMD128 away on x64 only.
  it.runIf(process.arch === 'x64')('an engine without SIMD128 (V8 without SSE4.1) gets fp4kit\'s reason from every loader, not the engine\'s CompileError', () => {
    expect(simd128Works()).toBe(true);
    const script = `
      import { readFileSync } from 'node:fs';
      import { simd128Works } from './lib/kernels/wasm-builds.ts';
      import { getBackend, initWasm } from './lib/browser.ts';
      const r = { works: simd128Works() };
      for (const build of ['auto', 'simd128', 'relaxed']) {
        try { await initWasm(readFileSync('build-wasm/fp4kit.wasm'), { build }); r[build] = 'loaded'; } catch (e) { r[build] = e.message; }
      }
      r.backend = getBackend().name;
      console.log(JSON.stringify(r));`;
    const r = JSON.parse(child(script, ['--no-enable-sse4-1']));
    // Node's loader (the main entry), in a process of its own: the browser entry replaces it.
    r.node = JSON.parse(child(`import { availableBackends } from './lib/index.ts';
      console.log(JSON.stringify(availableBackends().find((b) => b.name === 'wasm')));`, ['--no-enable-sse4-1']));
    const missing = "this engine lacks WebAssembly SIMD (fixed-width SIMD128), which both of fp4kit's WebAssembly builds need";
    expect(r.works).toBe(false);
    expect(r.node).toMatchObject({ available: false, error: `loadWasmKernels: ${missing}; use the native or js backend` });
    expect(r.auto).toBe(`initWasm: ${missing}; the js backend stays in use`);
    expect(r.simd128).toBe(`initWasm: ${missing}; the js backend stays in use`);
    expect(r.relaxed).toBe(`initWasm: options.build: ${missing}`);
    expect(r.backend).not.toBe('wasm');
  });

  it('initWasm checks options.build', async () => {
    await expect(initWasm(simd128Bytes, { build: 'fast' as never })).rejects.toThrow(/initWasm: options.build: the WebAssembly build must be/);
  });

  it('FP4KIT_WASM_SIMD chooses the file the Node loader reads, and is checked', () => {
    const script = `
      import { loadWasmKernels } from './lib/kernels/wasm.ts';
      try { const k = loadWasmKernels(); console.log(k.simd + ' ' + k.matmul.matmulSimd); } catch (e) { console.log('error: ' + e.message); }`;
    expect(child(script, [], { FP4KIT_WASM_SIMD: 'simd128' }).trim()).toBe('simd128 simd128');
    expect(child(script, [], { FP4KIT_WASM_SIMD: 'sse' }).trim()).toMatch(/^error: FP4KIT_WASM_SIMD: the WebAssembly build must be 'auto', 'relaxed' or 'simd128', got 'sse'/);
    const auto = child(script, [], { FP4KIT_WASM_SIMD: 'auto' }).trim();
    expect(auto).toBe(relaxedSimdWorks() ? 'relaxed-simd relaxed-simd' : 'simd128 simd128');
  });

  it.runIf(NODE_20)("Node 20 runs no relaxed SIMD: not by default, and with --experimental-wasm-relaxed-simd not as specified", () => {
    expect(WebAssembly.validate(PROBE_BYTES)).toBe(false);
    expect(relaxedSimdWorks()).toBe(false);
    expect(() => instantiateWasmKernels(relaxedBytes)).toThrow(); // does not compile
    // With the flag: the opcode validates, the probe's lanes come out wrong, and the relaxed module
    // — instantiated by hand, past the loader's check — gives products other than the reference's.
    const script = `
      import { readFileSync } from 'node:fs';
      import { PROBE_BYTES, relaxedSimdWorks } from './lib/kernels/wasm-builds.ts';
      import { instantiateWasmKernels, loadWasmKernels, wasmKernels } from './lib/kernels/wasm.ts';
      import { instantiateWasmModule } from './lib/kernels/wasm-memory.ts';
      import { kernelOutputs, referenceOutputs } from './test/browser/matmul-cases.ts';
      const relaxed = readFileSync('build-wasm/fp4kit-relaxed.wasm');
      const r = { validates: WebAssembly.validate(PROBE_BYTES), works: relaxedSimdWorks(), auto: loadWasmKernels().simd };
      try { instantiateWasmKernels(relaxed); r.refused = ''; } catch (e) { r.refused = e.message; }
      process.env.FP4KIT_WASM_SIMD = 'relaxed';
      try { loadWasmKernels(); r.forced = ''; } catch (e) { r.forced = e.message; }
      const byHand = wasmKernels(instantiateWasmModule(relaxed));
      const got = kernelOutputs(byHand.matmul), want = referenceOutputs();
      r.byHandSimd = byHand.simd;
      r.wrongCases = Object.keys(want).filter((k) => got[k] !== want[k]).length;
      r.cases = Object.keys(want).length;
      console.log(JSON.stringify(r));`;
    const r = JSON.parse(child(script, ['--experimental-wasm-relaxed-simd']));
    expect(r.validates).toBe(true);
    expect(r.works).toBe(false);
    expect(r.auto).toBe('simd128');
    expect(r.refused).toMatch(/relaxed-SIMD build \(fp4kit-relaxed.wasm\), and this engine does not run relaxed SIMD as specified: load fp4kit.wasm/);
    expect(r.forced).toMatch(/FP4KIT_WASM_SIMD: the relaxed-SIMD build was asked for, but this engine does not run relaxed SIMD as specified/);
    expect(r.byHandSimd).toBe('relaxed-simd');
    expect(r.wrongCases).toBeGreaterThan(0); // how many varies from run to run (5–13 seen)
  }, 60_000);
});
