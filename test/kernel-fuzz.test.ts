// Every compiled backend's kernel table called with random arguments — wrong types, wrong lengths,
// detached buffers, negative, fractional, huge and NaN numbers, nulls — must only ever return or
// throw a TypeError/RangeError: never crash or abort the process (native), trap or hang (wasm).
// The kernels sit below the facade's checks (lib/core/validate.ts), so they must check for themselves.
import { describe, expect, it } from 'vitest';
import { availableBackends, matmul, matmulAsync, prepareWeights, quantize, quantizeAsync, type QuantizedTensor } from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import type { BackendName } from '../lib/kernels/contract.js';
import { gaussian, rng } from './helpers/data.js';
import { testedBackends, useBackend } from './helpers/backends.js';

const compiled = (['native', 'wasm'] as BackendName[]).filter((name) => availableBackends().find((b) => b.name === name)?.available === true);

function detached(): Float32Array {
  const a = new Float32Array(16);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

describe.each(compiled)('%s kernels under random arguments', (backend) => {
  const k = kernelsFor(backend)!;
  const functions: Array<[string, (...args: unknown[]) => unknown]> = [
    ['encodeElements', k.encodeElements as never],
    ['decodeElements', k.decodeElements as never],
    ['quantizeBlocks', k.quantizeBlocks as never],
    ['dequantizeBlocks', k.dequantizeBlocks as never],
    ['absMax', k.absMax as never],
    ['errorSums', k.errorSums as never],
    ['dequantizeFgmp', k.dequantizeFgmp as never],
  ];
  if (k.fgmpCandidates) functions.push(['fgmpCandidates', k.fgmpCandidates as never]);
  if (k.matmul) {
    functions.push(
      ['repackFp4Weights', k.matmul.repackFp4Weights as never],
      ['matmulFp4Int8', k.matmul.matmulFp4Int8 as never],
    );
    if (k.matmul.matmulDecoded) functions.push(['matmulDecoded', k.matmul.matmulDecoded as never]);
    if (k.matmul.repackPlaneWeights) functions.push(['repackPlaneWeights', k.matmul.repackPlaneWeights as never]);
  }

  it.each(functions)('%s: 3000 random calls give results or TypeError/RangeError, nothing else', (name, fn) => {
    const r = rng(fn.length * 7919 + name.length);
    const pickNumber = () => [0, 1, 2, 3, 5, 16, 32, 33, 64, -1, 0.5, NaN, Infinity, 2 ** 40, 2 ** 31, 1e-3][Math.floor(r() * 16)];
    const pickArray = () => {
      const n = [0, 1, 8, 16, 32, 64, 256][Math.floor(r() * 7)];
      switch (Math.floor(r() * 7)) {
        case 0: return new Float32Array(n);
        case 1: return new Uint8Array(n);
        case 2: return new Uint16Array(n);
        case 3: return new Float64Array(n);
        case 4: return new Int8Array(n);
        case 5: return detached();
        default: return new Int32Array(n);
      }
    };
    const pick = () => {
      const p = r();
      if (p < 0.4) return pickNumber();
      if (p < 0.8) return pickArray();
      return [undefined, null, 'e4m3', {}, [1, 2], true][Math.floor(r() * 6)];
    };
    let returned = 0;
    for (let call = 0; call < 3000; call++) {
      // The block kernels take one object: mostly give them objects with random fields.
      const fields = name === 'dequantizeFgmp'
        ? ['mask', 'data', 'scales', 'cols', 'rowBegin', 'rowEnd', 'tensorScale', 'fp8Scale', 'out']
        : ['format', 'rows', 'cols', 'src', 'dtype', 'data', 'scales', 'tensorScale', 'scaleRule', 'rounding', 'seed', 'firstIndex', 'out'];
      const args = (name.endsWith('Blocks') || name === 'dequantizeFgmp') && r() < 0.8
        ? [Object.fromEntries(fields.filter(() => r() < 0.9).map((f) => [f, f === 'format' ? Math.floor(r() * 9) - 1 : pick()]))]
        : Array.from({ length: Math.floor(r() * 13) }, pick);
      try {
        fn(...args);
        returned++;
      } catch (e) {
        if (!(e instanceof TypeError || e instanceof RangeError)) throw new Error(`${name}(${args.map(String).join(', ')}) threw ${String(e)}`);
      }
    }
    expect(returned).toBeLessThan(3000); // most random calls are invalid and must be refused
    // and the backend still gives right answers afterwards
    const out = new Uint8Array(4);
    k.encodeElements(new Float32Array([1, 2, 3, 4]), 0, 3, 0, 0, out);
    expect(Array.from(out)).toEqual([0x38, 0x40, 0x44, 0x48]);
  });
});

// The caller mutates its buffers while Promise calls run, at random moments (at once, after
// microtasks, after a few ms): transfer, shrink to nothing, overwrite, dispose prepared weights,
// collect. Every call must settle with the result for the inputs as they were at the call.
describe.each(testedBackends())('%s async calls under mutation at random delays', (backend) => {
  useBackend(backend);
  it('quantizeAsync and matmulAsync give the call-time result whatever the caller does meanwhile', async () => {
    const r = rng(backend.length * 104729);
    const gc = (globalThis as { gc?: () => void }).gc;
    const big = backend !== 'js';
    const formats = ['mxfp4', 'nvfp4', 'mxfp8_e4m3', 'mxint8', 'mxfp6_e3m2', 'fgmp'] as const;
    const later = (f: () => void) => {
      const p = r();
      if (p < 0.25) f();
      else if (p < 0.5) queueMicrotask(f);
      else if (p < 0.75) setImmediate(f);
      else setTimeout(f, Math.floor(r() * 4));
    };
    const mutateArray = (a: Float32Array | Uint8Array) => {
      const p = r();
      if (p < 0.4 && !(a.buffer instanceof SharedArrayBuffer)) structuredClone(a.buffer, { transfer: [a.buffer] });
      else if (p < 0.6 && (a.buffer as ArrayBuffer).resizable) (a.buffer as ArrayBuffer).resize(0);
      else if (a.length > 0) a.fill(a instanceof Float32Array ? 1e6 : 0x77);
      gc?.();
    };
    const floats = (n: number, seed: number): Float32Array => {
      const g = gaussian(n, seed);
      if (r() < 0.3) {
        const rab = new ArrayBuffer(g.byteLength, { maxByteLength: g.byteLength });
        const v = new Float32Array(rab);
        v.set(g);
        return v;
      }
      return g;
    };
    for (let i = 0; i < (big ? 40 : 12); i++) {
      const format = formats[Math.floor(r() * formats.length)];
      const rows = 1 + Math.floor(r() * (big ? 700 : 40));
      const cols = 32 * (1 + Math.floor(r() * (big ? 64 : 8)));
      const x = floats(rows * cols, i);
      const opts = { format, shape: [rows, cols] } as never;
      if (r() < 0.5) {
        const want = quantize(x.slice(), opts) as QuantizedTensor;
        const pending = quantizeAsync(x, opts);
        later(() => mutateArray(x));
        const got = (await pending) as QuantizedTensor;
        expect(Buffer.compare(got.data, want.data), `quantizeAsync ${format} [${rows}, ${cols}]`).toBe(0);
        expect(Buffer.compare(got.scales, want.scales)).toBe(0);
      } else {
        const wf = format === 'mxint8' ? 'nvfp4' : format;
        const w = quantize(gaussian(cols * 64, i + 1, 0.05), { format: wf, shape: [64, cols] } as never) as QuantizedTensor;
        const want = matmul(x.slice(), w);
        const prepared = r() < 0.5 ? prepareWeights(w) : undefined;
        const pending = matmulAsync(x, prepared ?? w);
        later(() => {
          mutateArray(x);
          if (prepared) prepared.dispose();
          else mutateArray(w.data);
        });
        const got = await pending;
        expect(Buffer.compare(new Uint8Array(got.buffer), new Uint8Array(want.buffer)), `matmulAsync ${wf} [${rows}, ${cols}]`).toBe(0);
      }
    }
  }, 120_000);
});
