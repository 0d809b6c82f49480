// Bad input gets a TypeError or RangeError that says what is wrong, on every backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { decode, dequantize, encode, pack, quantize, setBackend, unpack } from '../lib/index.js';
import { testedBackends } from './helpers/backends.js';

describe.each(testedBackends())('bad input on %s', (backend) => {
  beforeAll(() => setBackend(backend));
  const x = new Float32Array(64).fill(1);

  it('rejects unknown formats by name', () => {
    expect(() => quantize(x, { format: 'mxfp5' as never })).toThrow(RangeError);
    expect(() => quantize(x, { format: 'mxfp5' as never })).toThrow(/unknown format "mxfp5"/);
    expect(() => encode(x, 'e9m9' as never)).toThrow(/unknown element format/);
    expect(() => decode(new Uint8Array(2), 'int4' as never)).toThrow(RangeError);
  });

  it('rejects inputs that are not typed arrays, or the wrong typed array', () => {
    expect(() => quantize([1, 2, 3] as never, { format: 'mxfp4' })).toThrow(/got an Array/);
    expect(() => quantize(new Float64Array(4) as never, { format: 'mxfp4' })).toThrow(/got Float64Array/);
    expect(() => quantize(new Uint16Array(4), { format: 'mxfp4' })).toThrow(/needs dtype 'bf16' or 'f16'/);
    expect(() => quantize(x, { format: 'mxfp4', dtype: 'bf16' })).toThrow(TypeError);
    expect(() => quantize(x, null as never)).toThrow(TypeError);
    expect(() => decode([1, 2] as never, 'e4m3')).toThrow(TypeError);
  });

  it('rejects shapes that do not match the data', () => {
    expect(() => quantize(x, { format: 'mxfp4', shape: [8, 9] })).toThrow(/holds 72 elements but the input has 64/);
    expect(() => quantize(x, { format: 'mxfp4', shape: [8, -8] })).toThrow(RangeError);
    expect(() => quantize(x, { format: 'mxfp4', shape: [8, 8.5] })).toThrow(RangeError);
    expect(() => quantize(x, { format: 'mxfp4', shape: [] })).toThrow(TypeError);
  });

  it('names a detached buffer', () => {
    const y = new Float32Array(64);
    structuredClone(y.buffer, { transfer: [y.buffer] });
    expect(() => quantize(y, { format: 'nvfp4', shape: [4, 16] })).toThrow(/detached/);
  });

  it('rejects NaN/Inf where the format cannot hold them, and bad options', () => {
    const bad = new Float32Array(32).fill(1);
    bad[3] = NaN;
    expect(() => quantize(bad, { format: 'nvfp4' })).toThrow(/NaN or Inf/);
    bad[3] = Infinity;
    expect(() => quantize(bad, { format: 'nvfp4', tensorScale: 1 })).toThrow(/NaN or Inf/);
    expect(() => quantize(x, { format: 'nvfp4', tensorScale: 0 })).toThrow(/tensorScale/);
    expect(() => quantize(x, { format: 'nvfp4', tensorScale: NaN })).toThrow(/tensorScale/);
    expect(() => quantize(x, { format: 'mxfp4', tensorScale: 1 })).toThrow(/nvfp4 only/);
    expect(() => quantize(x, { format: 'mxfp4', scaleRule: 'round' as never })).toThrow(/scaleRule/);
    expect(() => quantize(x, { format: 'mxfp4', rounding: 'up' as never })).toThrow(/rounding/);
    expect(() => quantize(x, { format: 'mxfp4', rounding: 'stochastic', seed: -1 })).toThrow(/seed/);
    expect(() => quantize(x, { format: 'mxfp4', rounding: 'stochastic', seed: 2 ** 32 })).toThrow(/seed/);
  });

  it('rejects a corrupted quantized tensor instead of reading out of bounds', () => {
    const q = quantize(x, { format: 'mxfp4', shape: [2, 32] });
    expect(() => dequantize({ ...q, data: q.data.subarray(1) })).toThrow(/data must hold 32 bytes/);
    expect(() => dequantize({ ...q, scales: new Uint8Array(1) })).toThrow(/scales must hold 2 bytes/);
    expect(() => dequantize({ ...q, shape: [2, 64] })).toThrow(RangeError);
    expect(() => dequantize({ ...q, format: 'nope' as never })).toThrow(RangeError);
    const n = quantize(x, { format: 'nvfp4', shape: [2, 32] });
    expect(() => dequantize({ ...n, tensorScale: undefined })).toThrow(/tensorScale/);
    expect(() => decode(new Uint8Array([16]), 'e2m1')).toThrow(/not a e2m1 code/);
  });

  it('rejects codes that do not fit when packing', () => {
    expect(() => pack(new Uint8Array([1, 16]), 4)).toThrow(/does not fit/);
    expect(() => pack(new Uint8Array([1]), 5 as never)).toThrow(/bits must be 4, 6 or 8/);
    expect(() => unpack(new Uint8Array(2), 6, 4)).toThrow(/need 3 bytes/);
  });
});
