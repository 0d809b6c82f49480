// FP4 × MXINT8 products through a matmul kernel table's own entry points (repackFp4Weights,
// matmulFp4Int8), for every build of the WebAssembly module: test/wasm.test.ts runs them on the
// build Node runs, test/browser.test.ts on both builds in Chromium (the relaxed-SIMD one runs in no
// Node this project supports). The expected bytes come from the pure-TS reference order
// (matmulDecoded). Row counts 1…9, 13 and 601 cross the relaxed kernel's blocks of four rows and the
// module's row chunks; odd n and k pad tiles and units; FGMP's FP8 lanes go through the FP4 tiles (fp4KernelInputs), not its planes.
import { quantize } from '../../lib/core/quantize.js';
import { decodeOperand, matmulDecoded } from '../../lib/core/matmul.js';
import type { QuantizedTensor } from '../../lib/core/quantize.js';
import type { MatmulKernels } from '../../lib/kernels/contract.js';
import { fp4KernelInputs, matmulFast } from '../../lib/kernels/matmul-glue.js';
import { gaussian } from '../helpers/data.js';
import { hex } from './cases.js';

export interface MatmulCase {
  m: number;
  n: number;
  k: number;
  format: 'mxfp4' | 'nvfp4' | 'fgmp';
  bias: boolean;
  /** 'gaussian', or 'extreme': every activation code +127, −128, −127 or 0 (the largest dots, both signs). */
  activations: 'gaussian' | 'extreme';
}

export const MATMUL_CASES: MatmulCase[] = [
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 13].map((m) => ({ m, n: 40, k: 300, format: 'mxfp4' as const, bias: m % 2 === 1, activations: 'gaussian' as const })),
  ...[1, 4, 6].map((m) => ({ m, n: 100, k: 200, format: 'nvfp4' as const, bias: true, activations: 'gaussian' as const })),
  ...[1, 3, 4, 9].map((m) => ({ m, n: 33, k: 128, format: 'fgmp' as const, bias: m === 3, activations: 'gaussian' as const })),
  ...[1, 5].map((m) => ({ m, n: 16, k: 96, format: 'mxfp4' as const, bias: false, activations: 'extreme' as const })),
  ...[4, 1].map((m) => ({ m, n: 24, k: 64, format: 'fgmp' as const, bias: false, activations: 'extreme' as const })),
  // More rows than one scratch chunk holds (lib/kernels/wasm.ts forEachRowChunk): two chunks, an odd last one.
  { m: 601, n: 700, k: 96, format: 'nvfp4', bias: true, activations: 'gaussian' },
];

export function caseName(c: MatmulCase): string {
  return `${c.format} ${c.m}×${c.n}×${c.k}${c.bias ? ' +bias' : ''} ${c.activations}`;
}

function operands(c: MatmulCase, index: number) {
  const wv = gaussian(c.n * c.k, 100 + index, 0.05);
  for (let i = 0; i < wv.length; i += 29) wv[i] *= 40; // outliers: FGMP keeps these blocks in FP8
  const b = c.format === 'fgmp'
    ? quantize(wv, { format: 'fgmp', shape: [c.n, c.k], fp4Fraction: 0.5 } as never) as never as QuantizedTensor
    : quantize(wv, { format: c.format, shape: [c.n, c.k] });
  let a = quantize(gaussian(c.m * c.k, 200 + index), { format: 'mxint8', shape: [c.m, c.k] });
  if (c.activations === 'extreme') {
    const codes = Uint8Array.from(a.data, (_, i) => [0x7f, 0x80, 0x81, 0][i % 4]); // +127, −128, −127, 0
    a = { ...a, data: codes };
  }
  const bias = c.bias ? gaussian(c.n, 300 + index) : undefined;
  return { a, b, bias };
}

/** Each case's output bytes (hex) through `kernels`: the weights copied in, then resident (both must agree). */
export function kernelOutputs(kernels: MatmulKernels): Record<string, string> {
  const outputs: Record<string, string> = {};
  MATMUL_CASES.forEach((c, index) => {
    const { a, b, bias } = operands(c, index);
    const w = fp4KernelInputs(b as never);
    const packed = kernels.repackFp4Weights(w.nibbles, w.blockScales, w.fp8Blocks, w.fp8Codes, w.n, w.k, w.blockSize, w.scaleCodes, w.scaleCoding, w.tensorScale);
    const first = hex(matmulFast(kernels, a, packed, c.n, bias));
    const second = hex(matmulFast(kernels, a, packed, c.n, bias));
    kernels.releaseFp4Weights(packed);
    outputs[caseName(c)] = first === second ? first : `copied ${first} ≠ resident ${second}`;
  });
  return outputs;
}

/** The reference's bytes for each case. */
export function referenceOutputs(): Record<string, string> {
  const outputs: Record<string, string> = {};
  MATMUL_CASES.forEach((c, index) => {
    const { a, b, bias } = operands(c, index);
    outputs[caseName(c)] = hex(matmulDecoded(decodeOperand('test', a), decodeOperand('test', b as never), bias));
  });
  return outputs;
}
