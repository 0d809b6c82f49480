// The onnxruntime-node peers of the block-matmul bench: a one-node com.microsoft MatMulNBits model
// (4-bit weights, blocks of 32, accuracy_level 4 = MLAS's int8-activation kernel) and a one-node
// fp32 MatMul (MLAS sgemm), both built in memory with bench/peers/onnx-model.ts.
//
// MatMulNBits (onnxruntime contrib op, domain com.microsoft): Y[M,N] = A[M,K] · dequant(B)ᵀ with
//   B           uint8 [N, ceil(K/block_size), block_size·bits/8]   codes low nibble first along K
//   scales      float [N · ceil(K/block_size)]
//   zero_points optional uint8, 4-bit packed [N · ceil(ceil(K/block_size)/2)]; absent = 8 (2^(bits−1))
//   dequant(q)  = (q − zero_point) · scale
//   attributes  K, N, bits, block_size, accuracy_level (4: A quantized to int8 per block, int8 dot products)
// B and scales are initializers so onnxruntime prepacks them once at session creation.

import type * as Ort from 'onnxruntime-node';
import { DataType, encodeModel, rawBytes } from './onnx-model.js';

type OrtModule = typeof Ort;

let ortModule: OrtModule | null | undefined;
let ortError = '';

/** onnxruntime-node, or null (with ortLoadError() saying why) when it is not installed/loadable. */
export async function loadOrt(): Promise<OrtModule | null> {
  if (ortModule === undefined) {
    try {
      const m = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
      ortModule = (m.InferenceSession ? m : m.default) ?? null;
    } catch (err) {
      ortModule = null;
      ortError = err instanceof Error ? err.message : String(err);
    }
  }
  return ortModule;
}

export function ortLoadError(): string {
  return ortError;
}

/** Session options of the comparison: `threads` intra-op threads, no inter-op parallelism, no spinning. */
export function sessionOptions(threads: number): Ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

export interface Int4Weights {
  n: number;
  k: number;
  blockSize: number;
  /** [N, K/blockSize, blockSize/2]: code 2i in the low nibble of byte i of a block. */
  packed: Uint8Array;
  /** [N · K/blockSize] */
  scales: Float32Array;
}

/** Symmetric 4-bit block quantization with the implicit zero point 8: q = clamp(round(w/s) + 8, 0, 15), s = absmax/7. */
export function quantizeInt4(w: Float32Array, n: number, k: number, blockSize = 32): Int4Weights {
  if (k % blockSize !== 0) throw new RangeError(`K = ${k} must be a multiple of the block size ${blockSize}`);
  const blocksPerRow = k / blockSize;
  const packed = new Uint8Array((n * k) / 2);
  const scales = new Float32Array(n * blocksPerRow);
  for (let b = 0; b < n * blocksPerRow; b++) {
    const base = b * blockSize;
    let amax = 0;
    for (let i = 0; i < blockSize; i++) amax = Math.max(amax, Math.abs(w[base + i]));
    const s = amax / 7;
    scales[b] = s;
    const inv = s > 0 ? 1 / s : 0;
    for (let i = 0; i < blockSize; i += 2) {
      const q0 = Math.min(15, Math.max(0, Math.round(w[base + i] * inv) + 8));
      const q1 = Math.min(15, Math.max(0, Math.round(w[base + i + 1] * inv) + 8));
      packed[(base + i) >> 1] = q0 | (q1 << 4);
    }
  }
  return { n, k, blockSize, packed, scales };
}

/** Row r of dequant(B) as float32 (the float reference the peer is checked against). */
export function dequantInt4Row(q: Int4Weights, r: number, out = new Float32Array(q.k)): Float32Array {
  const bpr = q.k / q.blockSize;
  for (let j = 0; j < bpr; j++) {
    const s = q.scales[r * bpr + j];
    for (let i = 0; i < q.blockSize; i++) {
      const e = r * q.k + j * q.blockSize + i;
      const byte = q.packed[e >> 1];
      out[j * q.blockSize + i] = (((e & 1) === 0 ? byte & 0xf : byte >> 4) - 8) * s;
    }
  }
  return out;
}

/** ModelProto bytes of Y = MatMulNBits(A[M,K], B, scales); M symbolic. */
export function matmulNBitsModel(q: Int4Weights, accuracyLevel = 4): Uint8Array {
  const { n, k, blockSize } = q;
  return encodeModel({
    irVersion: 9,
    opsets: [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
    ],
    nodes: [
      {
        opType: 'MatMulNBits',
        domain: 'com.microsoft',
        inputs: ['A', 'B', 'scales'],
        outputs: ['Y'],
        attributes: { K: k, N: n, bits: 4, block_size: blockSize, accuracy_level: accuracyLevel },
      },
    ],
    inputs: [{ name: 'A', elemType: DataType.FLOAT, shape: ['M', k] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, shape: ['M', n] }],
    initializers: [
      { name: 'B', dataType: DataType.UINT8, dims: [n, k / blockSize, (blockSize * 4) / 8], raw: q.packed },
      { name: 'scales', dataType: DataType.FLOAT, dims: [n * (k / blockSize)], raw: rawBytes(q.scales) },
    ],
  });
}

/** ModelProto bytes of Y = MatMul(A[M,K], Wᵀ) in float32 (W given [N,K], stored [K,N]); M symbolic. */
export function matmulFp32Model(w: Float32Array, n: number, k: number): Uint8Array {
  const t = new Float32Array(k * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) t[c * n + r] = w[r * k + c];
  return encodeModel({
    irVersion: 9,
    opsets: [{ domain: '', version: 17 }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'W'], outputs: ['Y'] }],
    inputs: [{ name: 'A', elemType: DataType.FLOAT, shape: ['M', k] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, shape: ['M', n] }],
    initializers: [{ name: 'W', dataType: DataType.FLOAT, dims: [k, n], raw: rawBytes(t) }],
  });
}

/** A created session with a run(a, m) → Float32Array [M,N] helper. */
export interface OrtMatmul {
  run(a: Float32Array, m: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export async function createOrtMatmul(ort: OrtModule, model: Uint8Array, k: number, threads: number): Promise<OrtMatmul> {
  const session = await ort.InferenceSession.create(model, sessionOptions(threads));
  return {
    async run(a, m) {
      const out = await session.run({ A: new ort.Tensor('float32', a, [m, k]) });
      return out.Y.data as Float32Array;
    },
    release: () => session.release(),
  };
}
