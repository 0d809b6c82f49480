// The public surface: exported names, the backends that load, the scoped backend choice.
import { expect, it } from 'vitest';
import * as fp4kit from '../lib/index.js';
import { dequantize, encode, getBackend, pack, quantize, setBackend, unpack, availableBackends, withBackend } from '../lib/index.js';
import { testedBackends } from './helpers/backends.js';

it('exports the documented names', () => {
  for (const name of ['quantize', 'dequantize', 'encode', 'decode', 'setBackend', 'getBackend', 'availableBackends', 'pack', 'unpack']) {
    expect(typeof (fp4kit as Record<string, unknown>)[name]).toBe('function');
  }
});

it('reports every backend with its SIMD level and says why one did not load', () => {
  const list = availableBackends();
  expect(list.map((b) => b.name)).toEqual(['native', 'wasm', 'js']);
  for (const b of list) if (!b.available) expect(b.error).toBeTruthy();
  expect(() => setBackend('gpu' as never)).toThrow(/unknown backend 'gpu'/);
});

it('withBackend scopes a backend to one function and restores the choice before it, also after a throw', () => {
  const backends = testedBackends();
  const outer = backends[backends.length - 1];
  setBackend(outer);
  for (const b of backends) {
    expect(withBackend(b, () => getBackend().name)).toBe(b);
    expect(getBackend().name).toBe(outer);
    expect(() => withBackend(b, () => { throw new Error('inside'); })).toThrow('inside');
    expect(getBackend().name).toBe(outer);
    expect(withBackend(b, () => withBackend('js', () => getBackend().name) + getBackend().name)).toBe(`js${b}`);
  }
  expect(() => withBackend('gpu' as never, () => 1)).toThrow(/withBackend: unknown backend 'gpu'/);
  expect(getBackend().name).toBe(outer);
});
