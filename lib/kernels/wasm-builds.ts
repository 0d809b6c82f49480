// The two builds of the WebAssembly module (package.json build:wasm) and which one this engine
// runs. fp4kit-relaxed.wasm adds relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s to the FP4
// matmul (assembly/matmul.ts); it gives the same bits as fp4kit.wasm, but only where the engine
// computes that instruction as the final spec does. Validating is not enough: Node 20's V8 accepts
// the opcode behind --experimental-wasm-relaxed-simd and returns twice the dot without the addend.
// So the probe runs the instruction on known operands (both signs, the i7 operand's 0 and 127, a
// nonzero addend) and takes the relaxed build only if all four lanes are right.
// Nothing here touches Node's file system (the browser entry imports it).

import { describe, notOneOf } from '../core/describe.js';

/** A build of the module: SIMD128 only, or SIMD128 and relaxed SIMD. */
export type WasmBuild = 'simd128' | 'relaxed';

/** What a caller may ask for: a build, or 'auto' (relaxed where it works, else simd128). */
export type WasmBuildRequest = WasmBuild | 'auto';

/** Each build's file under build-wasm/. */
export const WASM_BUILD_FILES: Readonly<Record<WasmBuild, string>> = { simd128: 'fp4kit.wasm', relaxed: 'fp4kit-relaxed.wasm' };

/** The probe's source; PROBE_BYTES is wasm-as's output for it (test/wasm-builds.test.ts checks). */
export const PROBE_WAT = `(module
  (func (export "probe") (result i32)
    (i32x4.all_true
      (i32x4.eq
        (i32x4.relaxed_dot_i8x16_i7x16_add_s
          (v128.const i8x16 -128 127 -1 5 3 -7 100 -100 0 0 0 -128 1 2 3 4)
          (v128.const i8x16 127 127 24 0 12 24 1 127 5 5 5 127 0 1 2 3)
          (v128.const i32x4 1000 -1000 7 0))
        (v128.const i32x4 849 -13732 -16249 20)))))
`;

export const PROBE_BYTES = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03,
  0x02, 0x01, 0x00, 0x07, 0x09, 0x01, 0x05, 0x70, 0x72, 0x6f, 0x62, 0x65, 0x00, 0x00, 0x0a, 0x54,
  0x01, 0x52, 0x00, 0xfd, 0x0c, 0x80, 0x7f, 0xff, 0x05, 0x03, 0xf9, 0x64, 0x9c, 0x00, 0x00, 0x00,
  0x80, 0x01, 0x02, 0x03, 0x04, 0xfd, 0x0c, 0x7f, 0x7f, 0x18, 0x00, 0x0c, 0x18, 0x01, 0x7f, 0x05,
  0x05, 0x05, 0x7f, 0x00, 0x01, 0x02, 0x03, 0xfd, 0x0c, 0xe8, 0x03, 0x00, 0x00, 0x18, 0xfc, 0xff,
  0xff, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x93, 0x02, 0xfd, 0x0c, 0x51, 0x03,
  0x00, 0x00, 0x5c, 0xca, 0xff, 0xff, 0x87, 0xc0, 0xff, 0xff, 0x14, 0x00, 0x00, 0x00, 0xfd, 0x37,
  0xfd, 0xa3, 0x01, 0x0b,
]);

let probed: boolean | undefined;

/** True if this engine validates relaxed SIMD and computes the relaxed dot as the spec does. */
export function relaxedSimdWorks(): boolean {
  if (probed === undefined) {
    try {
      probed = WebAssembly.validate(PROBE_BYTES)
        && (new WebAssembly.Instance(new WebAssembly.Module(PROBE_BYTES)).exports as { probe(): number }).probe() === 1;
    } catch {
      probed = false;
    }
  }
  return probed;
}

/** The smallest valid module: its header. */
const EMPTY_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

/** Whether this page may compile WebAssembly at all: a Content-Security-Policy without
 *  'wasm-unsafe-eval' (or 'unsafe-eval') forbids it, and then every module fails, not only the probe. */
export function wasmCompilationAllowed(): boolean {
  try {
    new WebAssembly.Module(EMPTY_MODULE);
    return true;
  } catch {
    return false;
  }
}

/** (module (func (export "f") (result i32) (i32x4.all_true (v128.const i32x4 1 1 1 1)))): a
 *  module only an engine with fixed-width SIMD (SIMD128) validates. Both builds need it. */
const SIMD128_MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03,
  0x02, 0x01, 0x00, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a, 0x19, 0x01, 0x17, 0x00, 0xfd,
  0x0c, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
  0x00, 0xfd, 0xa3, 0x01, 0x0b,
]);

/** Whether this engine has WebAssembly SIMD128 (fp4kit's modules are built with it). */
export function simd128Works(): boolean {
  return WebAssembly.validate(SIMD128_MODULE);
}

/** What to tell a caller when the engine lacks SIMD128. */
export const SIMD128_MISSING = 'this engine lacks WebAssembly SIMD (fixed-width SIMD128), which both of fp4kit\'s WebAssembly builds need';

/** What to tell a caller when WebAssembly may not be compiled here. */
export const WASM_DISALLOWED = "this page may not compile WebAssembly (is there a Content-Security-Policy without 'wasm-unsafe-eval'?); the js backend stays in use";

/** The build to load for `request` (checked): 'auto' takes relaxed where relaxedSimdWorks(). */
export function chooseWasmBuild(request: unknown, where: string): WasmBuild {
  if (request === undefined || request === 'auto') return relaxedSimdWorks() ? 'relaxed' : 'simd128';
  if (request === 'simd128') return 'simd128';
  if (request === 'relaxed') {
    if (!relaxedSimdWorks()) {
      if (!wasmCompilationAllowed()) throw new Error(`${where}: ${WASM_DISALLOWED}`);
      if (!simd128Works()) throw new Error(`${where}: ${SIMD128_MISSING}`);
      throw new Error(`${where}: the relaxed-SIMD build was asked for, but this engine does not run relaxed SIMD as specified (use 'simd128' or 'auto')`);
    }
    return 'relaxed';
  }
  throw notOneOf('string', request, `${where}: the WebAssembly build must be 'auto', 'relaxed' or 'simd128', got ${typeof request === 'string' ? `'${request}'` : describe(request)}`);
}
