// Run under qemu-x86_64 with an older CPU model by test/native-selftest.test.ts: loads fp4kit with
// the native backend, quantizes, dequantizes and multiplies in each weight format, and prints the
// SIMD level dispatch chose and a hash of every output byte (the same on every CPU).
import { createHash } from 'node:crypto';
import { dequantize, getBackend, matmul, prepareWeights, quantize, setBackend } from '../../lib/index.js';

setBackend('native');
const x = Float32Array.from({ length: 64 * 256 }, (_, i) => Math.sin(i * 0.37) * 3);
const hash = createHash('sha256');
for (const format of ['mxfp4', 'nvfp4', 'mxfp8_e4m3', 'mxint8', 'fgmp'] as const) {
  const q = format === 'fgmp' ? quantize(x, { format, shape: [64, 256] }) : quantize(x, { format, shape: [64, 256] });
  const y = matmul(x.subarray(0, 5 * 256), prepareWeights(q), { shape: [5, 256] });
  hash.update(new Uint8Array(y.buffer)).update(new Uint8Array(dequantize(q).buffer));
}
console.log(`${getBackend().simd} ${hash.digest('hex')}`);
