// Matmul operands holding special values — NaN element codes, NaN block scales, Inf codes and
// multipliers that overflow float32 — in every weight format, for the NaN/Inf rule of README.md
// ("Block matmul"). Built once with quantize() (bit-identical everywhere), then edited by hand as a
// careless or hostile caller would.
import { quantize, type FgmpTensor, type MatmulOperand, type QuantizedTensor } from '../../lib/index.js';
import { gaussian } from './data.js';

export interface SpecialCase {
  name: string;
  a: Float32Array | QuantizedTensor;
  b: MatmulOperand;
  /** When the rule gives exactly these NaN columns (every row), the columns; else undefined. */
  nanColumns?: number[];
}

export const M = 3;
export const N = 40;
export const K = 100; // not a multiple of 16 or 32: the last block has padding

function isFp8(q: FgmpTensor, block: number): boolean {
  return ((q.mask[block >> 3] >> (block & 7)) & 1) === 1;
}

/** FGMP weights with E4M3 NaN codes written into some FP8 blocks (one of them in the padding). */
function fgmpWithNanCodes(fg: FgmpTensor): { b: FgmpTensor; rows: number[] } {
  const data = Uint8Array.from(fg.data);
  const blocksPerRow = Math.ceil(K / 16);
  const rows = new Set<number>();
  let offset = 0;
  let written = 0;
  for (let block = 0; block < N * blocksPerRow; block++) {
    if (!isFp8(fg, block)) {
      offset += 8;
      continue;
    }
    const row = Math.floor(block / blocksPerRow);
    const last = block % blocksPerRow === blocksPerRow - 1;
    // Every third FP8 block: 0x7f, then 0xff; in a row's last block, a padding position (k ≥ K).
    if (written % 3 === 0 && rows.size < 4) {
      data[offset + (last ? 15 : 3)] = rows.size % 2 === 0 ? 0x7f : 0xff;
      rows.add(row);
    }
    written++;
    offset += 16;
  }
  return { b: { ...fg, data }, rows: [...rows].sort((x, y) => x - y) };
}

export function specialCases(): SpecialCase[] {
  const a = gaussian(M * K, 1);
  const w = gaussian(N * K, 2, 0.1);
  for (let i = 0; i < w.length; i += 13) w[i] *= 20;
  const cases: SpecialCase[] = [];
  const fg = quantize(w, { format: 'fgmp', shape: [N, K], fp4Fraction: 0.5 });
  const nanCodes = fgmpWithNanCodes(fg);
  if (nanCodes.rows.length < 2) throw new Error('test data: too few FP8 blocks to poison');
  cases.push({ name: 'fgmp FP8 blocks with NaN codes', a, b: nanCodes.b, nanColumns: nanCodes.rows });
  const fgScales = Uint8Array.from(fg.scales);
  fgScales[5] = 0x7f;
  fgScales[9] = 0xff;
  cases.push({ name: 'fgmp FP4 block scales 0x7f/0xff', a, b: { ...fg, scales: fgScales } });
  cases.push({ name: 'fgmp tensorScale and fp8Scale near float32 max', a, b: { ...fg, tensorScale: 3e38, fp8Scale: 3e38 } });
  const nv = quantize(w, { format: 'nvfp4', shape: [N, K] });
  const nvScales = Uint8Array.from(nv.scales);
  nvScales[3] = 0x7f;
  nvScales[20] = 0xff;
  cases.push({ name: 'nvfp4 block scales 0x7f/0xff', a, b: { ...nv, scales: nvScales } });
  cases.push({ name: 'nvfp4 tensorScale near float32 max', a, b: { ...nv, tensorScale: 3e38 } });
  const mx = quantize(w, { format: 'mxfp4', shape: [N, K] });
  const mxScales = Uint8Array.from(mx.scales);
  mxScales[3] = 0xff;
  mxScales[7] = 254;
  cases.push({ name: 'mxfp4 E8M0 scales 0xff and 254', a, b: { ...mx, scales: mxScales } });
  for (const format of ['mxfp8_e4m3', 'mxfp8_e5m2', 'mxfp6_e2m3'] as const) {
    const q = quantize(w, { format, shape: [N, K] });
    const data = Uint8Array.from(q.data);
    if (format !== 'mxfp6_e2m3') {
      data[5] = 0x7f; // NaN in E4M3, NaN in E5M2
      data[130] = 0xff;
      data[300] = format === 'mxfp8_e5m2' ? 0x7c : 0x7e; // +Inf in E5M2, 448 in E4M3
      data[301] = format === 'mxfp8_e5m2' ? 0xfc : 0xfe;
    }
    const scales = Uint8Array.from(q.scales);
    scales[4] = 0xff;
    scales[6] = 254;
    cases.push({ name: `${format} NaN/Inf codes, E8M0 scales 0xff and 254`, a, b: { ...q, data, scales } });
  }
  // Activations: an MXINT8 block scale 0xff (NaN) and 254 (2^127), against every weight above.
  const aq = quantize(a, { format: 'mxint8', shape: [M, K] });
  const aScales = Uint8Array.from(aq.scales);
  aScales[1] = 0xff;
  aScales[2] = 254;
  const poisoned = { ...aq, scales: aScales };
  for (const c of [...cases]) cases.push({ name: `${c.name}, activation scales 0xff/254`, a: poisoned, b: c.b });
  // FP8 activations with Inf and NaN codes against the FP8 weights above: decoded products (Inf − Inf
  // in a sum is a NaN whose bits x86 and ARM choose differently).
  const af8 = quantize(a, { format: 'mxfp8_e5m2', shape: [M, K] });
  const rowBytes = af8.data.length / M;
  const af8Data = Uint8Array.from(af8.data);
  af8Data[44] = 0x7c; // +Inf at k = 44 and 45 of row 0: the E5M2 weights hold +Inf and −Inf there in row 2
  af8Data[45] = 0x7c;
  af8Data[rowBytes + 7] = 0xff; // NaN in row 1
  const fp8Activations = { ...af8, data: af8Data };
  for (const c of cases.filter((x) => x.name.startsWith('mxfp8_') && x.a === a)) cases.push({ name: `${c.name}, FP8 activations with Inf/NaN codes`, a: fp8Activations, b: c.b });
  return cases;
}

/** Float32 bit patterns as numbers (NaN payloads and −0 included). */
export function bitPatterns(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}
