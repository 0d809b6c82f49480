// The wasm backend's kernels called with random arguments: like the addon (test/native-fuzz.test.ts),
// they may only return or throw a TypeError/RangeError — never trap, corrupt memory or hang.
import { describe, expect, it } from 'vitest';
import { availableBackends } from '../lib/index.js';
import { kernelsFor } from '../lib/backend.js';
import { rng } from './helpers/data.js';

const loaded = availableBackends().find((b) => b.name === 'wasm')?.available === true;

describe.runIf(loaded)('wasm kernels under random arguments', () => {
  const k = kernelsFor('wasm')!;
  const functions: Array<[string, (...args: unknown[]) => unknown]> = [
    ['encodeElements', k.encodeElements as never],
    ['decodeElements', k.decodeElements as never],
    ['quantizeMx', k.quantizeMx as never],
    ['dequantizeMx', k.dequantizeMx as never],
    ['absMax', k.absMax as never],
    ['quantizeNvfp4', k.quantizeNvfp4 as never],
    ['dequantizeNvfp4', k.dequantizeNvfp4 as never],
  ];

  it.each(functions)('%s: 2000 random calls give results or TypeError/RangeError', (name, fn) => {
    const r = rng(name.length * 104729);
    const pickNumber = () => [0, 1, 2, 3, 5, 16, 32, 33, 64, -1, 0.5, NaN, Infinity, 2 ** 40, 1e-3][Math.floor(r() * 15)];
    const pickArray = () => {
      const n = [0, 1, 8, 16, 32, 64, 256][Math.floor(r() * 7)];
      return [new Float32Array(n), new Uint8Array(n), new Uint16Array(n), new Float64Array(n)][Math.floor(r() * 4)];
    };
    const pick = () => (r() < 0.5 ? pickNumber() : r() < 0.9 ? pickArray() : [undefined, null, 'x', {}][Math.floor(r() * 4)]);
    for (let call = 0; call < 2000; call++) {
      const args = Array.from({ length: Math.floor(r() * 12) }, pick);
      try {
        fn(...args);
      } catch (e) {
        if (!(e instanceof TypeError || e instanceof RangeError)) throw new Error(`${name}(${args.map(String).join(', ')}) threw ${String(e)}`);
      }
    }
    // and the module still works afterwards
    const out = new Uint8Array(4);
    k.encodeElements(new Float32Array([1, 2, 3, 4]), 0, 3, 0, 0, out);
    expect(Array.from(out)).toEqual([0x38, 0x40, 0x44, 0x48]);
  });
});
