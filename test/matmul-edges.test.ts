// Block matmul at the edges of its definition, on every backend, sync and async: an empty inner
// dimension (K = 0) and special values (NaN codes and scales, Inf multipliers) must give the
// documented result with identical bits everywhere (lib/matmul.ts, docs/fgmp.md "NaN").
import { afterAll, describe, expect, it } from 'vitest';
import { matmul, matmulAsync, quantize, setBackend, type MatmulOperand } from '../lib/index.js';
import { testedBackends } from './helpers/backends.js';

afterAll(() => setBackend('js'));

/** Float32 bit patterns (NaN payloads and −0 included). */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

describe.each(testedBackends())('K = 0 on %s', (backend) => {
  const formats = ['mxfp4', 'nvfp4', 'fgmp', 'mxfp8_e4m3', 'mxint8'] as const;

  it.each(formats)('%s weights [N, 0]: M×N zeros, plus the bias when given (sync and async)', async (format) => {
    setBackend(backend);
    const [m, n] = [3, 5];
    const b = quantize(new Float32Array(0), { format, shape: [n, 0] } as never) as MatmulOperand;
    const a = new Float32Array(0);
    const zeros = new Array(m * n).fill(0);
    expect(Array.from(matmul(a, b, { shape: [m, 0] }))).toEqual(zeros);
    expect(Array.from(await matmulAsync(a, b, { shape: [m, 0] }))).toEqual(zeros);
    // The reference order gives f32(+0 + bias[n]): a −0 bias becomes +0.
    const bias = Float32Array.from([1.5, -0, -2, 0, 3]);
    const want = bits(Float32Array.from({ length: m * n }, (_, i) => (i % n === 1 ? 0 : bias[i % n])));
    expect(bits(matmul(a, b, { shape: [m, 0], bias }))).toEqual(want);
    expect(bits(await matmulAsync(a, b, { shape: [m, 0], bias }))).toEqual(want);
    // Quantized activations [M, 0] too.
    const aq = quantize(new Float32Array(0), { format: 'mxint8', shape: [m, 0] });
    expect(bits(matmul(aq, b, { bias }))).toEqual(want);
    expect(bits(await matmulAsync(aq, b, { bias }))).toEqual(want);
  });

  it('M = 0 or N = 0 give empty products', async () => {
    setBackend(backend);
    const b = quantize(new Float32Array(4 * 64).fill(1), { format: 'mxfp4', shape: [4, 64] });
    expect(matmul(new Float32Array(0), b, { shape: [0, 64] }).length).toBe(0);
    expect((await matmulAsync(new Float32Array(0), b, { shape: [0, 64] })).length).toBe(0);
    const none = quantize(new Float32Array(0), { format: 'nvfp4', shape: [0, 64] });
    expect(matmul(new Float32Array(2 * 64), none, { shape: [2, 64] }).length).toBe(0);
  });
});
