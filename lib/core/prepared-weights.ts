// Prepared weights: a quantized weight tensor made ready once for many products. matmul() with a
// plain quantized tensor repacks it for the kernel on every call and frees the repacked copy when
// the call ends, so mutating the tensor between calls is always seen and a loop of calls holds no
// memory. A server that multiplies by the same weights again and again prepares them instead:
//
//   const w = prepareWeights(quantize(weight, { format: 'nvfp4', shape: [n, k] }));
//   matmul(x, w); …; w.dispose();
//
// The handle holds a snapshot of the tensor taken by prepareWeights (later changes to the tensor's
// arrays are not seen) and the kernel's repacked copy per backend, made on first use. dispose()
// frees the repacked memory at once (a matmulAsync still running on it keeps it until it ends);
// an undisposed handle is freed when it is garbage collected.

import type { FgmpTensor } from '../fgmp/quantize.js';
import type { DecodedOperand, MatmulKernels } from '../kernels/contract.js';
import type { QuantizedTensor } from './quantize.js';

export type MatmulOperand = QuantizedTensor | FgmpTensor;

const copyOf = <T extends Uint8Array>(a: T): T => a.slice() as T;

/** A snapshot of the operand: its own copies of every array. */
function snapshot(q: MatmulOperand): MatmulOperand {
  if (q.format === 'fgmp') {
    const f = q as FgmpTensor;
    return { ...f, shape: [...f.shape], data: copyOf(f.data), scales: copyOf(f.scales), mask: copyOf(f.mask) };
  }
  const t = q as QuantizedTensor;
  return { ...t, shape: [...t.shape], data: copyOf(t.data), scales: copyOf(t.scales) };
}

export class PreparedWeights {
  readonly format: MatmulOperand['format'];
  readonly shape: readonly [number, number];
  #operand: MatmulOperand | null;
  readonly #packed = new Map<MatmulKernels, unknown>();
  /** The operand decoded for the reference order (products with no integer kernel), made on first use. */
  #decoded: DecodedOperand | null = null;
  #users = 0;

  /** Use prepareWeights(); the operand must already be validated. */
  constructor(operand: MatmulOperand) {
    this.#operand = snapshot(operand);
    this.format = operand.format;
    this.shape = [operand.shape[0], operand.shape[1]];
  }

  /** A brand check: made by prepareWeights(). Unlike instanceof it asks a Proxy nothing (a revoked
   *  one would throw; a live one's getPrototypeOf trap is caller code), nor believes an object
   *  made from the prototype without the constructor. */
  static is(v: unknown): v is PreparedWeights {
    return typeof v === 'object' && v !== null && #operand in v;
  }

  get disposed(): boolean {
    return this.#operand === null;
  }

  /** The snapshot taken at preparation. */
  operand(fn: string): MatmulOperand {
    if (this.#operand === null) throw new TypeError(`${fn}: these prepared weights were disposed`);
    return this.#operand;
  }

  /** The kernel's repacked copy for this backend, made on first use, held until `done()`:
   *  a dispose() meanwhile frees it only when the last product using it is done. */
  use(fn: string, kernels: MatmulKernels, repack: (kernels: MatmulKernels, b: MatmulOperand) => unknown): { packed: unknown; done: () => void } {
    const operand = this.operand(fn);
    let p = this.#packed.get(kernels);
    if (p === undefined) this.#packed.set(kernels, (p = repack(kernels, operand)));
    this.#users++;
    let finished = false;
    return {
      packed: p,
      done: () => {
        if (finished) return;
        finished = true;
        if (--this.#users === 0 && this.#operand === null) this.#release();
      },
    };
  }

  /** The weights decoded to element values and block multipliers (4 bytes per element), made once:
   *  products the integer kernels do not take (quantized activations, E5M2 weights, no fast kernel
   *  on this backend) read them instead of decoding the tensor on every call. Never mutated. */
  decoded(fn: string, decode: (b: MatmulOperand) => DecodedOperand): DecodedOperand {
    const operand = this.operand(fn);
    return (this.#decoded ??= decode(operand));
  }

  /** Frees the repacked copies and the snapshot (once no product is using them); later
   *  products with this handle throw. */
  dispose(): void {
    this.#operand = null;
    if (this.#users === 0) this.#release();
  }

  #release(): void {
    for (const [kernels, packed] of this.#packed) kernels.releaseFp4Weights(packed);
    this.#packed.clear();
    this.#decoded = null;
  }
}
