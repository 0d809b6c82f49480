// Bad input gets a TypeError or RangeError that names the function, the argument and what was
// expected — the same text on every backend, because the facade checks before any backend runs.
// Also: what is accepted although `instanceof` would refuse it (arrays from another realm, shared
// and resizable buffers), and that a typed array's length is read from the array itself, never
// from a property the caller can fake.
import { mxArgs } from './helpers/block-args.js';
import { execFileSync } from 'node:child_process';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assignPrecision, bitplaneMatmul, bitplaneMatmulInt, bitsPerElement, calibrateFgmpActivations, dequantizeGradient, packGradient, packSigns, quantizeGradient, quantizedByteLengths, decode, dequantize, encode, fgmpBitsPerElement, fgmpImpacts, forTensor,
  matmul, matmulAsync, pack, prepareWeights, quantize, quantizeAsync, quantizeFgmpActivations, selectThreshold, setBackend, unpack, withBackend,
  type QuantizedTensor,
} from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { bitsOf } from './helpers/fixtures.js';
import { gaussian } from './helpers/data.js';

const backends = testedBackends();
afterAll(() => setBackend('js'));

/** What a call threw: "TypeError: message", or "no error". */
function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  return 'no error';
}

async function rejected(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  return 'no error';
}

const x = new Float32Array(64).fill(1);
const mxq = () => quantize(x, { format: 'mxfp4', shape: [2, 32] });
const weights = () => quantize(new Float32Array(4 * 32).fill(1), { format: 'mxfp4', shape: [4, 32] });
const BLOCK_NAMES = 'mxfp4, mxfp6_e2m3, mxfp6_e3m2, mxfp8_e4m3, mxfp8_e5m2, mxint8, nvfp4, fgmp';
const FGMP_OPTIONS = '{ shape?, dtype?, fisher?, fp4Fraction?, selection?, mask?, clipping?, tensorScale?, fp8Scale? }';
// Names that are special on a plain object: looked up with `in` or [], they find Object built-ins.
const OBJECT_NAMES = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf'];

/** Every public function with hostile arguments, and the exact error each must give. */
function syncCases(): Array<[string, () => unknown, string]> {
  const cases: Array<[string, () => unknown, string]> = [
    ['quantize options null', () => quantize(x, null as never), 'TypeError: quantize: options must be an object { format, shape? }, got null'],
    ['quantize options missing', () => (quantize as (x: unknown) => unknown)(x), 'TypeError: quantize: options must be an object { format, shape? }, got undefined'],
    ['quantize BigInt dimension', () => quantize(x, { format: 'mxfp4', shape: [2n, 32] as never }),
      'TypeError: quantize: shape[0] must be a non-negative integer (a Number), got 2n (a BigInt)'],
    ['quantize BigInt last dimension', () => quantize(x, { format: 'mxfp4', shape: [2, 32n] as never }),
      'TypeError: quantize: shape[1] must be a non-negative integer (a Number), got 32n (a BigInt)'],
    ['quantize shape not an array', () => quantize(x, { format: 'mxfp4', shape: 64 as never }), 'TypeError: quantize: shape must be a non-empty array of integers, got 64'],
    ['quantize fractional dimension', () => quantize(x, { format: 'mxfp4', shape: [8, 8.5] }), 'RangeError: quantize: shape [8, 8.5] has an invalid dimension 8.5 at [1]'],
    ['quantize BigInt seed', () => quantize(x, { format: 'mxfp4', rounding: 'stochastic', seed: 1n as never }),
      'TypeError: quantize: seed must be an integer in [0, 2^32) (a Number), got 1n (a BigInt)'],
    ['quantize unknown dtype', () => quantize(x, { format: 'mxfp4', dtype: 'f64' as never }), `RangeError: quantize: dtype must be 'f32', 'bf16' or 'f16', got "f64"`],
    ['quantize input an Array', () => quantize([1, 2] as never, { format: 'mxfp4' }),
      "TypeError: quantize: input must be a Float32Array, or a Uint16Array with dtype 'bf16' | 'f16'; got an Array"],
    ['quantize input a Proxy of a Float32Array', () => quantize(new Proxy(new Float32Array(64), {}), { format: 'mxfp4' }),
      "TypeError: quantize: input must be a Float32Array, or a Uint16Array with dtype 'bf16' | 'f16'; got an object"],
    ['quantize input an ArrayBuffer', () => quantize(new ArrayBuffer(8) as never, { format: 'mxfp4' }),
      "TypeError: quantize: input must be a Float32Array, or a Uint16Array with dtype 'bf16' | 'f16'; got an ArrayBuffer"],
    ['quantize BigInt tensorScale', () => quantize(x, { format: 'nvfp4', tensorScale: 1n as never }),
      'TypeError: quantize: tensorScale must be a finite float32 ≥ 2^-126 (a Number), got 1n (a BigInt)'],
    ['dequantize options null', () => dequantize(mxq(), null as never), 'TypeError: dequantize: options must be an object { out? }, got null'],
    ['dequantize tensor null', () => dequantize(null as never), 'TypeError: dequantize: q must be a quantized tensor from quantize(), got null'],
    ['dequantize BigInt shape', () => dequantize({ ...mxq(), shape: [2n, 32n] as never }), 'TypeError: dequantize: shape[0] must be a non-negative integer (a Number), got 2n (a BigInt)'],
    ['dequantize out a Float64Array', () => dequantize(mxq(), { out: new Float64Array(64) as never }), 'TypeError: dequantize: out must be a Float32Array, got Float64Array'],
    ['encode options null', () => encode(x, 'e4m3', null as never), 'TypeError: encode: options must be an object { rounding?, seed?, dtype?, nan? }, got null'],
    ['encode nan rule', () => encode(x, 'e2m1', { nan: 'ignore' as never }), `RangeError: encode: nan must be 'error' or 'zero', got "ignore"`],
    ['decode codes an Array', () => decode([1, 2] as never, 'e4m3'), 'TypeError: decode: codes must be a Uint8Array, got an Array'],
    ['pack BigInt bits', () => pack(new Uint8Array(2), 4n as never), 'TypeError: pack: bits must be 4, 6 or 8, got 4n (a BigInt)'],
    // A value of the wrong kind where a name or one of a few numbers is expected is a TypeError; the
    // right kind with a value outside the list is a RangeError (README "Arguments and errors").
    ['pack bits a string', () => pack(new Uint8Array(2), '4' as never), 'TypeError: pack: bits must be 4, 6 or 8, got "4"'],
    ['pack bits -0 (shown as given)', () => pack(new Uint8Array(2), -0 as never), 'RangeError: pack: bits must be 4, 6 or 8, got -0'],
    ['encode format a number', () => encode(x, 42 as never), 'TypeError: encode: unknown element format 42; expected one of e2m1, e2m3, e3m2, e4m3, e5m2, e8m0'],
    ['encode rounding a number', () => encode(x, 'e2m1', { rounding: 42 as never }), `TypeError: encode: rounding must be 'nearest' or 'stochastic', got 42`],
    ['encode rounding null (a value, not an absent option)', () => encode(x, 'e2m1', { rounding: null as never }), `TypeError: encode: rounding must be 'nearest' or 'stochastic', got null`],
    ['encode seed null', () => encode(x, 'e2m1', { rounding: 'stochastic', seed: null as never }), 'TypeError: encode: seed must be an integer in [0, 2^32) (a Number), got null'],
    ['encode nan a number', () => encode(x, 'e2m1', { nan: 1 as never }), `TypeError: encode: nan must be 'error' or 'zero', got 1`],
    ['encode dtype a number', () => encode(x, 'e2m1', { dtype: 42 as never }), `TypeError: encode: dtype must be 'f32', 'bf16' or 'f16', got 42`],
    ['quantize format a number', () => quantize(x, { format: 42 as never }), `TypeError: quantize: unknown format 42; expected one of ${BLOCK_NAMES}`],
    ['quantize shape empty (an array: its value is wrong)', () => quantize(x, { format: 'mxfp4', shape: [] }), 'RangeError: quantize: shape must be a non-empty array of integers, got []'],
    ['quantize tensorScale -0 (shown as given)', () => quantize(x, { format: 'nvfp4', tensorScale: -0 }), 'RangeError: quantize: tensorScale must be a finite float32 ≥ 2^-126, got -0'],
    ['quantizedByteLengths format a number', () => quantizedByteLengths(42 as never, [2, 32]), `TypeError: quantizedByteLengths: unknown format 42; expected one of ${BLOCK_NAMES}`],
    ['matmul b.format a number', () => matmul(x, { ...weights(), format: 42 as never }), `TypeError: matmul: unknown b.format 42; expected one of ${BLOCK_NAMES}`],
    ['bitsPerElement a number', () => bitsPerElement(42 as never),
      'TypeError: bitsPerElement: format must be a block format name (mxfp4, mxfp6_e2m3, mxfp6_e3m2, mxfp8_e4m3, mxfp8_e5m2, mxint8, nvfp4) or an entry of BLOCK_FORMATS, got 42'],
    ['setBackend a number', () => setBackend(42 as never), `TypeError: setBackend: unknown backend 42; expected 'native', 'wasm' or 'js'`],
    ['quantizeGradient groups a number', () => quantizeGradient(x, { bits: 4, shape: [2, 32], groups: 42 as never }), `TypeError: quantizeGradient: options.groups must be 'sample', 'channel' or 'tensor', got 42`],
    ['quantizeGradient seed null', () => quantizeGradient(x, { bits: 4, shape: [2, 32], seed: null as never }), 'TypeError: quantizeGradient: options.seed must be an integer in [0, 2^32) (a Number), got null'],
    ['quantizeGradient 3-D shape', () => quantizeGradient(x, { bits: 4, shape: [2, 2, 16] }), 'RangeError: quantizeGradient: options.shape must be [rows, cols], got [2, 2, 16]'],
    ['packGradient reduce a number', () => packGradient(quantizeGradient(x, { bits: 4, shape: [2, 32], groups: 'tensor' }), { reduce: 1 as never }),
      `TypeError: packGradient: options.reduce must be 'columns' or 'rows', got 1`],
    ['packGradient length a BigInt', () => packGradient(quantizeGradient(x, { bits: 4, shape: [2, 32], groups: 'tensor' }), { reduce: 'columns', length: 2n as never }),
      "TypeError: packGradient: options.length must be a positive integer that divides q's 32 columns, got 2n (a BigInt)"],
    ['packGradient length not a divisor', () => packGradient(quantizeGradient(x, { bits: 4, shape: [2, 32], groups: 'tensor' }), { reduce: 'columns', length: 3 }),
      "RangeError: packGradient: options.length must be a positive integer that divides q's 32 columns, got 3"],
    ['fgmp selection threshold a BigInt', () => quantize(x, { format: 'fgmp', shape: [2, 32], selection: { threshold: 2n as never, tiesTaken: 0 } }),
      'TypeError: quantize(fgmp): selection must be { threshold: number, tiesTaken: integer ≥ 0 } from selectThreshold(), got { threshold: 2n (a BigInt), tiesTaken: 0 }'],
    ['assignPrecision threshold a string', () => assignPrecision([new Float64Array(2)], { threshold: '1' as never, tiesTaken: 0 }),
      'TypeError: assignPrecision: selection must be { threshold: number, tiesTaken: integer ≥ 0 }, got { threshold: "1", tiesTaken: 0 }'],
    ['forTensor a tie share a string', () => forTensor({ ...selectThreshold([new Float64Array(2)], 0.5), ties: ['x' as never] }, 0),
      'TypeError: forTensor: selection.ties[0] must be an integer ≥ 0 (a Number), got "x"'],
    ['quantizeFgmpActivations threshold a string', () => quantizeFgmpActivations(x, { shape: [2, 32], channelFisher: new Float32Array(32), threshold: '1' as never }),
      'TypeError: quantizeFgmpActivations: threshold must be a number (from calibrateFgmpActivations), got "1"'],
    ['calibrateFgmpActivations samples a number', () => calibrateFgmpActivations(42 as never, { cols: 32, channelFisher: new Float32Array(32), fp4Fraction: 0.5 }),
      'TypeError: calibrateFgmpActivations: samples must be a non-empty array of Float32Array, got 42'],
    ['unpack BigInt count', () => unpack(new Uint8Array(2), 4, 2n as never), 'TypeError: unpack: count must be a non-negative integer (a Number), got 2n (a BigInt)'],
    ['unpack packed null', () => unpack(null as never, 4, 2), 'TypeError: unpack: packed must be a Uint8Array, got null'],
    ['setBackend BigInt', () => setBackend(1n as never), `TypeError: setBackend: unknown backend 1n (a BigInt); expected 'native', 'wasm' or 'js'`],
    ['bitsPerElement object', () => bitsPerElement({} as never),
      `RangeError: bitsPerElement: format must be a block format name (mxfp4, mxfp6_e2m3, mxfp6_e3m2, mxfp8_e4m3, mxfp8_e5m2, mxint8, nvfp4) or an entry of BLOCK_FORMATS, got an object`],
    ['matmul options null', () => matmul(x, weights(), null as never), 'TypeError: matmul: options must be an object { bias?, dtype?, shape?, out? }, got null'],
    ['matmul b a Float32Array', () => matmul(x, new Float32Array(4) as never), 'TypeError: matmul: b must be a quantized tensor [N, K] (from quantize()), got Float32Array'],
    ['matmul bias an Array', () => matmul(x, weights(), { bias: [1, 2, 3, 4] as never }), 'TypeError: matmul: bias must be a Float32Array, got an Array'],
    ['matmul bias too short', () => matmul(x, weights(), { bias: new Float32Array(3) }), 'RangeError: matmul: bias must hold 4 elements (N = 4), got 3'],
    ['matmul out too short', () => matmul(x, weights(), { out: new Float32Array(7) }), 'RangeError: matmul: out must hold 8 elements (M·N = 2·4), got 7'],
    ['matmul out a Float64Array', () => matmul(x, weights(), { out: new Float64Array(8) as never }), 'TypeError: matmul: out must be a Float32Array, got Float64Array'],
    ['matmul a not whole rows', () => matmul(new Float32Array(40), weights()), 'RangeError: matmul: a holds 40 values, not whole rows of K = 32 (give options.shape [M, K])'],
    ['matmul 3-D weights', () => matmul(x, { ...weights(), shape: [2, 2, 32] }), 'RangeError: matmul: b must be 2-D [N, K], got shape [2, 2, 32]'],
    ['matmul b data too short', () => matmul(x, { ...weights(), data: new Uint8Array(3) }), 'RangeError: matmul: b.data must hold 64 bytes for this shape, got 3'],
    ['prepareWeights null', () => prepareWeights(null as never), 'TypeError: prepareWeights: b must be a quantized tensor [N, K] (from quantize()), got null'],
    ['prepareWeights BigInt shape', () => prepareWeights({ ...weights(), shape: [4n, 32n] as never }),
      'TypeError: prepareWeights: b.shape[0] must be a non-negative integer (a Number), got 4n (a BigInt)'],
    ['matmul with prepared weights, options null', () => matmul(x, prepareWeights(weights()), null as never), 'TypeError: matmul: options must be an object { bias?, dtype?, shape?, out? }, got null'],
    ['fgmpImpacts options null', () => fgmpImpacts(x, null as never), `TypeError: fgmpImpacts: options must be an object ${FGMP_OPTIONS}, got null`],
    ['fgmp fp4Fraction', () => quantize(x, { format: 'fgmp', fp4Fraction: 2 }), 'RangeError: quantize(fgmp): fp4Fraction must be a number in [0, 1], got 2'],
    ['fgmp clipping', () => quantize(x, { format: 'fgmp', clipping: 'yes' as never }), 'TypeError: quantize(fgmp): clipping must be a boolean, got "yes"'],
    ['fgmp selection null', () => quantize(x, { format: 'fgmp', selection: null as never }),
      'TypeError: quantize(fgmp): selection must be { threshold: number, tiesTaken: integer ≥ 0 } from selectThreshold(), got null'],
    ['quantizeFgmpActivations options null', () => quantizeFgmpActivations(x, null as never),
      'TypeError: quantizeFgmpActivations: options must be an object { shape, channelFisher, threshold }, got null'],
    ['quantizeFgmpActivations fisher wrong length', () => quantizeFgmpActivations(x, { shape: [2, 32], channelFisher: new Float32Array(3), threshold: 0 }),
      'RangeError: quantizeFgmpActivations: channelFisher must hold 32 weights (one per input channel), got 3'],
    ['quantizeFgmpActivations fisher per element (it is per channel)', () => quantizeFgmpActivations(x, { shape: [2, 32], channelFisher: new Float32Array(64), threshold: 0 }),
      'RangeError: quantizeFgmpActivations: channelFisher must hold 32 weights (one per input channel), got 64'],
    ['quantizeFgmpActivations fisher NaN', () => quantizeFgmpActivations(x, { shape: [2, 32], channelFisher: new Float32Array(32).fill(NaN), threshold: 0 }),
      'RangeError: quantizeFgmpActivations: channelFisher[0] is NaN; Fisher weights must be finite and ≥ 0'],
    ['calibrateFgmpActivations fisher a Float64Array', () => calibrateFgmpActivations([x], { cols: 32, channelFisher: new Float64Array(32) as never, fp4Fraction: 0.5 }),
      'TypeError: calibrateFgmpActivations: channelFisher must be a Float32Array, got Float64Array'],
    ['withBackend fn not a function', () => withBackend('js', 5 as never), 'TypeError: withBackend: fn must be a function, got 5'],
    ['matmul a prepared weights', () => matmul(prepareWeights(weights()) as never, weights()),
      'TypeError: matmul: a is prepared weights; prepareWeights() makes the right-hand operand b'],
    ['prepareWeights of prepared weights', () => prepareWeights(prepareWeights(weights()) as never), 'TypeError: prepareWeights: b is prepared weights already (use it as it is)'],
    ['calibrateFgmpActivations options null', () => calibrateFgmpActivations([x], null as never),
      'TypeError: calibrateFgmpActivations: options must be an object { cols, channelFisher, fp4Fraction }, got null'],
    ['calibrateFgmpActivations BigInt cols', () => calibrateFgmpActivations([x], { cols: 32n as never, channelFisher: new Float32Array(32), fp4Fraction: 0.5 }),
      'TypeError: calibrateFgmpActivations: cols must be a non-negative integer (a Number), got 32n (a BigInt)'],
    ['selectThreshold impacts null', () => selectThreshold(null as never, 0.5), 'TypeError: selectThreshold: impacts must be an array of impact lists (one per tensor), got null'],
    ['selectThreshold fraction a string', () => selectThreshold([new Float64Array(4)], '0.5' as never), 'TypeError: selectThreshold: fp4Fraction must be a number in [0, 1], got "0.5"'],
    ['assignPrecision selection null', () => assignPrecision([new Float64Array(4)], null as never),
      'TypeError: assignPrecision: selection must be { threshold, tiesTaken } (from selectThreshold or forTensor), got null'],
    ['forTensor selection null', () => forTensor(null as never, 0), 'TypeError: forTensor: selection must be the result of selectThreshold(), got null'],
    ['forTensor BigInt index', () => forTensor(selectThreshold([new Float64Array(4)], 0.5), 0n as never),
      'TypeError: forTensor: index must be an integer in [0, 1) (a Number), got 0n (a BigInt)'],
    ['fgmpBitsPerElement a string', () => fgmpBitsPerElement('0.5' as never), 'TypeError: fgmpBitsPerElement: fp4Fraction must be a number in [0, 1], got "0.5"'],
  ];
  for (const name of OBJECT_NAMES) {
    const n = JSON.stringify(name);
    cases.push(
      [`quantize format ${name}`, () => quantize(x, { format: name as never }), `RangeError: quantize: unknown format ${n}; expected one of ${BLOCK_NAMES}`],
      [`dequantize format ${name}`, () => dequantize({ ...mxq(), format: name as never }), `RangeError: dequantize: unknown format ${n}; expected one of ${BLOCK_NAMES}`],
      [`prepareWeights format ${name}`, () => prepareWeights({ ...weights(), format: name as never }), `RangeError: prepareWeights: unknown b.format ${n}; expected one of ${BLOCK_NAMES}`],
      [`matmul weights format ${name}`, () => matmul(x, { ...weights(), format: name as never }), `RangeError: matmul: unknown b.format ${n}; expected one of ${BLOCK_NAMES}`],
      [`encode format ${name}`, () => encode(x, name as never), `RangeError: encode: unknown element format ${n}; expected one of e2m1, e2m3, e3m2, e4m3, e5m2, e8m0`],
      [`decode format ${name}`, () => decode(new Uint8Array(2), name as never), `RangeError: decode: unknown element format ${n}; expected one of e2m1, e2m3, e3m2, e4m3, e5m2, e8m0`],
      [`setBackend ${name}`, () => setBackend(name as never), `RangeError: setBackend: unknown backend '${name}'; expected 'native', 'wasm' or 'js'`],
      [`bitsPerElement ${name}`, () => bitsPerElement(name as never),
        `RangeError: bitsPerElement: format must be a block format name (mxfp4, mxfp6_e2m3, mxfp6_e3m2, mxfp8_e4m3, mxfp8_e5m2, mxint8, nvfp4) or an entry of BLOCK_FORMATS, got ${n}`],
      [`quantize dtype ${name}`, () => quantize(x, { format: 'mxfp4', dtype: name as never }), `RangeError: quantize: dtype must be 'f32', 'bf16' or 'f16', got ${n}`],
    );
  }
  return cases;
}

function asyncCases(): Array<[string, () => Promise<unknown>, string]> {
  return [
    ['quantizeAsync options null', () => quantizeAsync(x, null as never), 'TypeError: quantizeAsync: options must be an object { format, shape?, signal? }, got null'],
    ['quantizeAsync signal a plain object', () => quantizeAsync(x, { format: 'mxfp4', signal: {} as never }),
      'TypeError: quantizeAsync: options.signal must be an AbortSignal, got an object'],
    ['quantizeAsync signal that looks like one', () => quantizeAsync(x, { format: 'mxfp4', signal: { aborted: true, throwIfAborted() {} } as never }),
      'TypeError: quantizeAsync: options.signal must be an AbortSignal, got an object'],
    ['quantizeAsync signal a string, fgmp', () => quantizeAsync(x, { format: 'fgmp', signal: 'stop' as never }),
      'TypeError: quantizeAsync: options.signal must be an AbortSignal, got "stop"'],
    ['quantizeAsync format toString', () => quantizeAsync(x, { format: 'toString' as never }), `RangeError: quantizeAsync: unknown format "toString"; expected one of ${BLOCK_NAMES}`],
    ['quantizeAsync BigInt dimension', () => quantizeAsync(x, { format: 'nvfp4', shape: [1n, 64] as never }),
      'TypeError: quantizeAsync: shape[0] must be a non-negative integer (a Number), got 1n (a BigInt)'],
    ['matmulAsync options null', () => matmulAsync(x, weights(), null as never), 'TypeError: matmulAsync: options must be an object { bias?, dtype?, shape?, out?, signal? }, got null'],
    ['matmulAsync weights format __proto__', () => matmulAsync(x, { ...weights(), format: '__proto__' as never }),
      `RangeError: matmulAsync: unknown b.format "__proto__"; expected one of ${BLOCK_NAMES}`],
  ];
}

describe.each(backends)('bad input on %s', (backend) => {
  useBackend(backend);

  it('every public function refuses hostile arguments with the exact text that names function, argument and expectation', () => {
    for (const [label, call, want] of syncCases()) expect(thrown(call), label).toBe(want);
  });

  it('the async functions reject the same way, and an aborted AbortSignal aborts', async () => {
    for (const [label, call, want] of asyncCases()) expect(await rejected(call), label).toBe(want);
    const controller = new AbortController();
    controller.abort();
    await expect(quantizeAsync(x, { format: 'mxfp4', signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

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
  });

  it('rejects shapes that do not match the data', () => {
    expect(() => quantize(x, { format: 'mxfp4', shape: [8, 9] })).toThrow(/holds 72 elements but the input has 64/);
    expect(() => quantize(x, { format: 'mxfp4', shape: [8, -8] })).toThrow(RangeError);
    expect(() => quantize(x, { format: 'mxfp4', shape: [] })).toThrow(RangeError);
  });

  it('reads a shape once: a Proxy that answers differently on each read cannot change it after the check', () => {
    let reads = 0;
    const shape = new Proxy([2, 32], { get: (t, k, r) => (k === '0' && reads++ > 0 ? 1e9 : Reflect.get(t, k, r)) });
    const q = quantize(x, { format: 'mxfp4', shape });
    expect(q.shape).toEqual([2, 32]);
    expect(reads).toBe(1);
  });

  it('names a detached buffer, and a view left out of bounds by a shrink', () => {
    const y = new Float32Array(64);
    structuredClone(y.buffer, { transfer: [y.buffer] });
    expect(thrown(() => quantize(y, { format: 'nvfp4', shape: [4, 16] }))).toBe(
      'RangeError: quantize: shape [4, 16] holds 64 elements but the input has 0 (is its buffer detached, or shrunk?)');
    const buffer = new ArrayBuffer(256, { maxByteLength: 1024 });
    const fixed = new Float32Array(buffer, 0, 64);
    buffer.resize(128);
    expect(thrown(() => quantize(fixed, { format: 'mxfp4', shape: [64] }))).toBe(
      'RangeError: quantize: shape [64] holds 64 elements but the input has 0 (is its buffer detached, or shrunk?)');
    expect(thrown(() => dequantize(mxq(), { out: fixed }))).toBe('RangeError: dequantize: out must hold 64 elements, got 0 (is its buffer detached, or shrunk?)');
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

  it('an unknown option name (a typo) is refused by name, never ignored; an option of another format is refused by what it applies to', async () => {
    const w = quantize(new Float32Array(64).fill(1), { format: 'nvfp4', shape: [2, 32] });
    const g = new Float32Array(6).fill(1);
    const cases: Array<[string, () => unknown, string]> = [
      ['quantize', () => quantize(x, { format: 'mxfp4', rouding: 'stochastic' } as never), 'rouding'],
      ['quantize', () => quantize(x, { format: 'fgmp', shape: [2, 32], fp4Fracton: 0.5 } as never), 'fp4Fracton'],
      ['dequantize', () => dequantize(w, { ouT: new Float32Array(64) } as never), 'ouT'],
      ['matmul', () => matmul(x, w, { shape: [2, 32], bais: new Float32Array(2) } as never), 'bais'],
      ['encode', () => encode(x, 'fp4_e2m1', { nans: 'zero' } as never), 'nans'],
      ['quantizeGradient', () => quantizeGradient(g, { shape: [2, 3], bits: 4, group: 'channel' } as never), 'group'],
      ['dequantizeGradient', () => dequantizeGradient(quantizeGradient(g, { shape: [2, 3], bits: 4 }), { output: new Float32Array(6) } as never), 'output'],
      ['packSigns', () => packSigns(g, { shape: [2, 3], transposed: true } as never), 'transposed'],
      ['packGradient', () => packGradient(quantizeGradient(g, { shape: [2, 3], bits: 4 }), { reduce: 'columns', lenght: 3 } as never), 'lenght'],
      ['fgmpImpacts', () => fgmpImpacts(x, { shape: [2, 32], fishr: new Float32Array(64) } as never), 'fishr'],
      ['calibrateFgmpActivations', () => calibrateFgmpActivations([x], { cols: 32, channelFisher: new Float32Array(32).fill(1), fp4Fraction: 0.5, colls: 3 } as never), 'colls'],
    ];
    for (const [fn, call, key] of cases) {
      expect(thrown(call), fn).toMatch(new RegExp(`^RangeError: ${fn}: unknown option "${key}"; the options are `));
    }
    await expect(quantizeAsync(x, { format: 'mxfp4', sigal: new AbortController().signal } as never)).rejects.toThrow(/^quantizeAsync: unknown option "sigal"; the options are format, shape/);
    await expect(matmulAsync(x, w, { shape: [2, 32], sinal: 1 } as never)).rejects.toThrow(/^matmulAsync: unknown option "sinal"/);
    // Known names of another format: refused (fp4Fraction with nvfp4 had silently given plain NVFP4).
    const fgmpOnly: Array<[object, string]> = [
      [{ format: 'nvfp4', fp4Fraction: 0.5 }, 'fp4Fraction applies to fgmp, not nvfp4'],
      [{ format: 'mxfp4', clipping: false }, 'clipping applies to fgmp, not mxfp4'],
      [{ format: 'mxfp8_e4m3', fisher: new Float32Array(64) }, 'fisher applies to fgmp, not mxfp8_e4m3'],
      [{ format: 'mxint8', selection: { threshold: 0, tiesTaken: 0 } }, 'selection applies to fgmp, not mxint8'],
      [{ format: 'mxfp6_e3m2', mask: new Uint8Array(1) }, 'mask applies to fgmp, not mxfp6_e3m2'],
      [{ format: 'nvfp4', fp8Scale: 1 }, 'fp8Scale applies to fgmp, not nvfp4'],
    ];
    for (const [o, message] of fgmpOnly) {
      expect(thrown(() => quantize(x, { shape: [2, 32], ...o } as never))).toBe(`RangeError: quantize: ${message}`);
      await expect(quantizeAsync(x, { shape: [2, 32], ...o } as never)).rejects.toThrow(`quantizeAsync: ${message}`);
    }
    expect(thrown(() => quantize(x, { format: 'fgmp', shape: [2, 32], rounding: 'stochastic' }))).toBe('RangeError: quantize: rounding "stochastic" is not available for fgmp (it rounds to nearest)');
    expect(thrown(() => quantize(x, { format: 'fgmp', shape: [2, 32], rounding: 7 } as never))).toBe('TypeError: quantize: rounding 7 is not available for fgmp (it rounds to nearest)');
    expect(thrown(() => quantize(x, { format: 'fgmp', shape: [2, 32], scaleRule: 'ceil' } as never))).toBe('RangeError: quantize: scaleRule applies to MX formats, not fgmp');
    await expect(quantizeAsync(x, { format: 'fgmp', shape: [2, 32], scaleRule: 'ceil' } as never)).rejects.toThrow('quantizeAsync: scaleRule applies to MX formats, not fgmp');
    // What applies, or is absent, still runs: an undefined value is no option; rounding 'nearest' is what fgmp does; a seed is read with stochastic rounding only.
    expect(quantize(x, { format: 'nvfp4', shape: [2, 32], fp4Fraction: undefined, clipping: undefined } as never).format).toBe('nvfp4');
    expect(quantize(x, { format: 'fgmp', shape: [2, 32], rounding: 'nearest', seed: 3, scaleRule: undefined } as never).format).toBe('fgmp');
    expect(quantize(x, { format: 'mxfp4', shape: [2, 32], seed: 3 }).format).toBe('mxfp4');
    // quantize()'s options object passed to fgmpImpacts as it is: 'format' is a known name there.
    expect(fgmpImpacts(x, { format: 'fgmp', shape: [2, 32] } as never).length).toBe(4);
  });

  it('rejects a corrupted quantized tensor instead of reading out of bounds', () => {
    const q = mxq();
    expect(thrown(() => dequantize({ ...q, data: q.data.subarray(1) }))).toBe('RangeError: dequantize: data must hold 32 bytes for this shape, got 31');
    expect(thrown(() => dequantize({ ...q, scales: new Uint8Array(1) }))).toBe('RangeError: dequantize: scales must hold 2 bytes for this shape, got 1');
    expect(() => dequantize({ ...q, shape: [2, 64] })).toThrow(RangeError);
    const n = quantize(x, { format: 'nvfp4', shape: [2, 32] });
    expect(() => dequantize({ ...n, tensorScale: undefined })).toThrow(/tensorScale/);
    expect(() => decode(new Uint8Array([16]), 'e2m1')).toThrow(/not a e2m1 code/);
  });

  it('refuses an output that shares memory with an input or another output (the backends would give different bits); inputs may share', async () => {
    const rows = 4, cols = 64;
    const values = gaussian(rows * cols, 11);
    // quantize: out.data inside the input's buffer, out.scales inside out.data
    const buf = new ArrayBuffer(rows * cols * 4);
    const xin = new Float32Array(buf);
    xin.set(values);
    const L = { data: rows * cols / 2, scales: rows * cols / 16 };
    const inside = { data: new Uint8Array(buf, 0, L.data), scales: new Uint8Array(buf, L.data, L.scales) };
    expect(thrown(() => quantize(xin, { format: 'nvfp4', shape: [rows, cols], out: inside }))).toBe('RangeError: quantize: out.data and input share memory');
    expect(await rejected(() => quantizeAsync(xin, { format: 'nvfp4', shape: [rows, cols], out: inside }))).toBe('RangeError: quantizeAsync: out.data and input share memory');
    const outBuf = new Uint8Array(L.data + L.scales);
    expect(thrown(() => quantize(values, { format: 'nvfp4', shape: [rows, cols], out: { data: outBuf.subarray(0, L.data), scales: outBuf.subarray(L.data - 1, L.data - 1 + L.scales) } })))
      .toBe('RangeError: quantize: out.data and out.scales share memory');
    // dequantize: out over the tensor's own bytes (block format and fgmp)
    for (const format of ['mxfp4', 'fgmp'] as const) {
      const q = quantize(values, { format, shape: [rows, cols] });
      const mem = new ArrayBuffer(rows * cols * 4 + q.data.length);
      const data = new Uint8Array(mem, rows * cols * 4 - 8, q.data.length);
      data.set(q.data);
      expect(thrown(() => dequantize({ ...q, data }, { out: new Float32Array(mem, 0, rows * cols) })), format).toBe('RangeError: dequantize: out and data share memory');
    }
    // matmul / matmulAsync: out over a, b's data or the bias
    const b = quantize(gaussian(8 * cols, 12), { format: 'nvfp4', shape: [8, cols] });
    const mem = new Float32Array(rows * cols + rows * 8);
    const a = mem.subarray(0, rows * cols);
    a.set(values);
    expect(thrown(() => matmul(a, b, { out: mem.subarray(rows * cols - 1, rows * cols - 1 + rows * 8) }))).toBe('RangeError: matmul: out and a share memory');
    const bias = new Float32Array(rows * 8 + 8);
    expect(await rejected(() => matmulAsync(values, b, { bias: bias.subarray(0, 8), out: bias.subarray(4, 4 + rows * 8) }))).toBe('RangeError: matmulAsync: out and bias share memory');
    const bBytes = new Uint8Array(rows * 8 * 4 + b.data.length);
    const bShared = { ...b, data: bBytes.subarray(rows * 8 * 4 - 4, rows * 8 * 4 - 4 + b.data.length) };
    bShared.data.set(b.data);
    expect(thrown(() => matmul(values, bShared, { out: new Float32Array(bBytes.buffer, 0, rows * 8) }))).toBe('RangeError: matmul: out and b.data share memory');
    // the gradient calls
    const g = quantizeGradient(values, { shape: [rows, cols], bits: 2, groups: 'tensor' });
    const codesMem = new Uint8Array(rows * cols * 4);
    codesMem.set(g.codes);
    expect(thrown(() => dequantizeGradient({ ...g, codes: codesMem.subarray(0, rows * cols) }, { out: new Float32Array(codesMem.buffer) })))
      .toBe('RangeError: dequantizeGradient: options.out and q.codes share memory');
    const packed = packGradient(g, { reduce: 'columns' });
    const signs = packSigns(gaussian(2 * cols, 13), { shape: [2, cols] });
    const planeMem = new Uint8Array(packed.data.length + 64);
    planeMem.set(packed.data);
    expect(thrown(() => bitplaneMatmulInt({ ...packed, data: planeMem.subarray(0, packed.data.length) }, signs, { out: new Int32Array(planeMem.buffer, packed.data.length - 8, rows * 2) })))
      .toBe('RangeError: bitplaneMatmulInt: options.out and a.data share memory');
    const scaleMem = new Float32Array(rows * 2 + 1);
    scaleMem.set(packed.scales);
    expect(thrown(() => bitplaneMatmul({ ...packed, scales: scaleMem.subarray(0, 1) }, signs, { out: scaleMem.subarray(0, rows * 2) })))
      .toBe('RangeError: bitplaneMatmul: options.out and a.scales share memory');
    // inputs that share memory with each other are fine: they are only read
    const same = { ...packed, zeros: packed.scales.slice(), scales: packed.scales.slice() };
    same.zeros = same.scales;
    expect(() => bitplaneMatmul(same, signs)).not.toThrow();
  });

  it('sizes past 2^53 are refused (doubles would round them); an empty tensor with a huge last dimension is made without a kernel', async () => {
    expect(thrown(() => quantizedByteLengths('mxfp4', undefined as never))).toBe('TypeError: quantizedByteLengths: shape must be a non-empty array of integers, got undefined');
    // A product of empty rows (length 0) too large to hold: named, as matmul's.
    const emptyRows = { rows: 2 ** 26, length: 0, bits: 2, data: new Uint8Array(0) };
    const emptySigns = { rows: 2 ** 26, length: 0, ternary: false, data: new Uint8Array(0) };
    expect(thrown(() => bitplaneMatmulInt(emptyRows, emptySigns))).toBe(`RangeError: bitplaneMatmulInt: cannot allocate the output [${2 ** 26}, ${2 ** 26}] (${2 ** 52} elements)`);
    expect(thrown(() => quantizedByteLengths('mxfp4', [2 ** 30, 2 ** 30])))
      .toBe(`RangeError: quantizedByteLengths: shape [${2 ** 30}, ${2 ** 30}] holds ${2 ** 60} elements, more than 2^53`);
    expect(thrown(() => quantize(new Float32Array(0), { format: 'mxfp4', shape: [2 ** 27, 2 ** 27, 2 ** 27, 0] })))
      .toBe(`RangeError: quantize: shape [${2 ** 27}, ${2 ** 27}, ${2 ** 27}, 0] has ${2 ** 81} rows, more than 2^53`);
    for (const format of ['mxfp4', 'nvfp4', 'fgmp'] as const) {
      const q = quantize(new Float32Array(0), { format, shape: [0, Number.MAX_SAFE_INTEGER] } as never) as QuantizedTensor;
      expect(q.data.length + q.scales.length, format).toBe(0);
      expect(dequantize(q).length, format).toBe(0);
      expect(dequantize(q, { out: new Float32Array(0) }).length, format).toBe(0);
      const qa = await quantizeAsync(new Float32Array(0), { format, shape: [0, Number.MAX_SAFE_INTEGER] } as never) as QuantizedTensor;
      expect(qa.data.length + qa.scales.length, format).toBe(0);
    }
  });

  it('a sparse array of length 2^32 − 1 (or a Proxy claiming it) is refused at once, never copied hole by hole', () => {
    const sparse = (): unknown[] => { const a: unknown[] = []; a.length = 2 ** 32 - 1; return a; };
    // Each element, if read, is a valid value: only the length may be refused.
    const ones = new Proxy([1], { get: (t, k, r) => (k === 'length' ? 2 ** 32 - 1 : typeof k === 'string' && /^\d+$/.test(k) ? 1 : Reflect.get(t, k, r)) });
    const started = Date.now();
    expect(thrown(() => quantize(x, { format: 'mxfp4', shape: sparse() as never }))).toBe('RangeError: quantize: shape has more than 64 dimensions');
    expect(thrown(() => quantize(x, { format: 'mxfp4', shape: ones as never }))).toBe('RangeError: quantize: shape has more than 64 dimensions');
    expect(thrown(() => quantizeGradient(x, { bits: 4, shape: sparse() as never }))).toBe('RangeError: quantizeGradient: options.shape has more than 64 dimensions');
    expect(thrown(() => matmul(x, weights(), { shape: sparse() as never }))).toBe('RangeError: matmul: shape has more than 64 dimensions');
    expect(thrown(() => quantize(x, { format: 'mxfp4', shape: [...Array(64).fill(1), 64] }))).toBe('RangeError: quantize: shape has more than 64 dimensions');
    expect(quantize(x, { format: 'mxfp4', shape: [...Array(62).fill(1), 2, 32] }).shape.length).toBe(64);
    // Its copy grows with the elements read: the first hole is refused before anything large is allocated.
    expect(thrown(() => selectThreshold([sparse() as never], 0.5))).toBe('RangeError: selectThreshold: impacts[0] is an array of 4294967295 elements; an array of numbers may have at most 2^30 (pass a Float64Array)');
    const sparse30: unknown[] = []; sparse30.length = 2 ** 30;
    expect(thrown(() => selectThreshold([sparse30 as never], 0.5))).toBe('TypeError: selectThreshold: impacts[0][0] must be a number, got undefined');
    const longHoles = new Proxy([1, 2, 3], { get: (t, k, r) => (k === 'length' ? 2 ** 30 : k === String(2 ** 20 + 5) ? 'x' : typeof k === 'string' && /^\d+$/.test(k) ? 1 : Reflect.get(t, k, r)) });
    expect(thrown(() => selectThreshold([longHoles as never], 0.5))).toBe(`TypeError: selectThreshold: impacts[0][${2 ** 20 + 5}] must be a number, got "x"`);
    const holes: unknown[] = [1, 2]; holes.length = 2 ** 24;
    expect(thrown(() => selectThreshold([holes as never], 0.5))).toBe('TypeError: selectThreshold: impacts[0][2] must be a number, got undefined');
    expect(thrown(() => selectThreshold(sparse() as never, 0.5))).toBe(`RangeError: selectThreshold: impacts lists ${2 ** 32 - 1} tensors; at most 16777216 (2^24) are read`);
    const sparse24: unknown[] = []; sparse24.length = 2 ** 24;
    expect(thrown(() => selectThreshold(sparse24 as never, 0.5))).toBe('TypeError: selectThreshold: impacts[0] must be a Float64Array, a Float32Array or an array of numbers, got undefined');
    expect(thrown(() => assignPrecision([holes as never], { threshold: 1, tiesTaken: 0 }))).toBe('TypeError: assignPrecision: impacts[0][2] must be a number, got undefined');
    expect(thrown(() => selectThreshold([ones as never], 0.5))).toBe(`RangeError: selectThreshold: impacts[0] is an array of ${2 ** 32 - 1} elements; an array of numbers may have at most 2^30 (pass a Float64Array)`);
    const negative = new Proxy([1], { get: (t, k, r) => (k === 'length' ? -1 : Reflect.get(t, k, r)) });
    expect(thrown(() => selectThreshold([negative as never], 0.5))).toBe('RangeError: selectThreshold: impacts[0] has length -1');
    // A Proxy claiming 2^32 − 1 lists, each a valid one: refused by its length (read one by one, the heap ran out).
    const list = new Float64Array(1);
    const manyLists = new Proxy([], { get: (_t, k) => (k === 'length' ? 2 ** 32 - 1 : list) });
    expect(thrown(() => selectThreshold(manyLists as never, 0.5))).toBe(`RangeError: selectThreshold: impacts lists ${2 ** 32 - 1} tensors; at most 16777216 (2^24) are read`);
    const sample = new Float32Array(32);
    const manySamples = new Proxy([], { get: (_t, k) => (k === 'length' ? 2 ** 32 - 1 : sample) });
    expect(thrown(() => calibrateFgmpActivations(manySamples as never, { cols: 32, channelFisher: new Float32Array(32).fill(1), fp4Fraction: 0.5 })))
      .toBe(`RangeError: calibrateFgmpActivations: samples lists ${2 ** 32 - 1} arrays; at most 16777216 (2^24) are read`);
    const selection = selectThreshold([new Float64Array([1, 2])], 0.5);
    expect(thrown(() => forTensor({ ...selection, ties: sparse() as never }, 7))).toBe('TypeError: forTensor: selection.ties[7] must be an integer ≥ 0 (a Number), got undefined');
    expect(thrown(() => calibrateFgmpActivations(sparse24 as never, { cols: 32, channelFisher: new Float32Array(32).fill(1), fp4Fraction: 0.5 })))
      .toBe('TypeError: calibrateFgmpActivations: samples[0] must be a Float32Array, got undefined');
    expect(Date.now() - started).toBeLessThan(10_000); // each is prompt (a copy of the holes took ~100 s, or ended the process)
  });

  it('a caller\'s Array subclass runs none of its methods: its elements are read by index', () => {
    class Evil extends Array { map(): never { throw new Error('caller code ran'); } slice(): never { throw new Error('caller code ran'); } }
    const impacts = Evil.from([new Float64Array([3, 1, 2])]);
    expect(selectThreshold(impacts as never, 1 / 3)).toEqual(selectThreshold([new Float64Array([3, 1, 2])], 1 / 3));
    const samples = Evil.from([new Float32Array(64).fill(1)]);
    const options = { cols: 32, channelFisher: new Float32Array(32).fill(1), fp4Fraction: 0.5 };
    expect(calibrateFgmpActivations(samples as never, options)).toEqual(calibrateFgmpActivations([new Float32Array(64).fill(1)], options));
    const selection = selectThreshold([new Float64Array([1, 2]), new Float64Array([1])], 0.5);
    expect(forTensor({ ...selection, ties: Evil.from(selection.ties) }, 1)).toEqual(forTensor(selection, 1));
  });

  it('a revoked Proxy anywhere an object or array is expected is refused by name, not with the engine\'s message', async () => {
    const revoked = (target: object): never => { const { proxy, revoke } = Proxy.revocable(target, {}); revoke(); return proxy as never; };
    const calls: Array<[string, () => unknown, RegExp]> = [
      ['quantize options', () => quantize(x, revoked({})), /^quantize: options must be an object/],
      ['quantize shape', () => quantize(x, { format: 'mxfp4', shape: revoked([]) }), /^quantize: shape must be a non-empty array/],
      ['quantize fgmp selection', () => quantize(x, { format: 'fgmp', selection: revoked({}) }), /^quantize\(fgmp\): selection must be/],
      ['dequantize q', () => dequantize(revoked({})), /^dequantize: q must be a quantized tensor/],
      ['matmul a', () => matmul(revoked({}), weights()), /^matmul: a must be a Float32Array/],
      ['matmul b', () => matmul(x, revoked({})), /^matmul: b must be a quantized tensor/],
      ['matmul options', () => matmul(x, weights(), revoked({})), /^matmul: options must be an object/],
      ['prepareWeights b', () => prepareWeights(revoked({})), /^prepareWeights: b must be a quantized tensor/],
      ['encode options', () => encode(x, 'e2m1', revoked({})), /^encode: options must be an object/],
      ['quantizeGradient options', () => quantizeGradient(x, revoked({})), /^quantizeGradient: options must be an object/],
      ['packGradient q', () => packGradient(revoked({}), { reduce: 'rows' }), /^packGradient: q must be a quantized gradient/],
      ['bitplaneMatmul a', () => bitplaneMatmul(revoked({}), revoked({})), /^bitplaneMatmul: a must be packed bit planes/],
      ['selectThreshold impacts', () => selectThreshold(revoked([]), 0.5), /^selectThreshold: impacts must be an array/],
      ['selectThreshold impacts[0]', () => selectThreshold([revoked([])], 0.5), /^selectThreshold: impacts\[0\] must be/],
      ['assignPrecision selection', () => assignPrecision([], revoked({})), /^assignPrecision: selection must be/],
      ['forTensor selection', () => forTensor(revoked({}), 0), /^forTensor: selection must be/],
      ['fgmpImpacts options', () => fgmpImpacts(x, revoked({})), /^fgmpImpacts: options must be an object/],
      ['calibrateFgmpActivations samples', () => calibrateFgmpActivations(revoked([]), { cols: 32, channelFisher: new Float32Array(32), fp4Fraction: 0.5 }), /^calibrateFgmpActivations: samples must be/],
    ];
    for (const [label, call, message] of calls) {
      let error: unknown = 'no error';
      try { call(); } catch (e) { error = e; }
      expect(error, label).toBeInstanceOf(TypeError);
      expect((error as Error).message, label).toMatch(message);
      expect((error as Error).message, label).toMatch(/got a revoked Proxy$/);
    }
    await expect(quantizeAsync(x, revoked({}))).rejects.toThrow(/^quantizeAsync: options must be an object .*got a revoked Proxy$/);
    await expect(matmulAsync(x, weights(), revoked({}))).rejects.toThrow(/^matmulAsync: options must be an object .*got a revoked Proxy$/);
  });

  it('rejects codes that do not fit when packing', () => {
    expect(() => pack(new Uint8Array([1, 16]), 4)).toThrow(/does not fit/);
    expect(() => pack(new Uint8Array([1]), 5 as never)).toThrow(/bits must be 4, 6 or 8/);
    expect(() => unpack(new Uint8Array(2), 6, 4)).toThrow(/need 3 bytes/);
  });
});

describe('the refusals are the same text on every backend', () => {
  it.runIf(backends.length > 1)(`${backends.join(', ')} give identical errors for every hostile call`, async () => {
    const texts = new Map<string, string[]>();
    for (const backend of backends) {
      setBackend(backend);
      const list = syncCases().map(([label, call]) => `${label} → ${thrown(call)}`);
      for (const [label, call] of asyncCases()) list.push(`${label} → ${await rejected(call)}`);
      texts.set(backend, list);
    }
    const [first, ...rest] = backends;
    for (const b of rest) expect(texts.get(b), `${b} against ${first}`).toEqual(texts.get(first));
  });
});

/** A Float32Array made in another realm (a vm context), filled with `values`. */
function foreign(kind: 'Float32Array' | 'Uint16Array' | 'Uint8Array', values: ArrayLike<number>): Float32Array & Uint16Array & Uint8Array {
  const array = vm.runInNewContext(`new ${kind}(${values.length})`) as Float32Array & Uint16Array & Uint8Array;
  for (let i = 0; i < values.length; i++) array[i] = values[i];
  return array;
}

/** A Float32Array over a SharedArrayBuffer (growable when `growable`), filled with `values`. */
function shared<T extends Float32Array | Uint8Array>(Kind: new (b: ArrayBufferLike) => T, values: ArrayLike<number>, bytesPer: number, growable = false): T {
  const bytes = values.length * bytesPer;
  const buffer = growable ? new SharedArrayBuffer(bytes, { maxByteLength: 4 * bytes + 64 }) : new SharedArrayBuffer(bytes);
  const array = new Kind(buffer);
  (array as Float32Array).set(values);
  return array;
}

describe.each(backends)('arrays instanceof would refuse, on %s', (backend) => {
  useBackend(backend);
  const values = gaussian(64 * 32, 5);
  const bias = gaussian(16, 6);

  it('accepts typed arrays from another realm everywhere, with the same bits as local ones', async () => {
    for (const format of ['mxfp4', 'nvfp4', 'mxfp8_e4m3'] as const) {
      const want = quantize(values, { format, shape: [64, 32] });
      const got = quantize(foreign('Float32Array', values), { format, shape: [64, 32] });
      expect(got.data, format).toEqual(want.data);
      expect(got.scales, format).toEqual(want.scales);
      expect((await quantizeAsync(foreign('Float32Array', values), { format, shape: [64, 32] })).data, `${format} async`).toEqual(want.data);
    }
    const bf16 = Uint16Array.from(values, (v) => new Uint32Array(Float32Array.of(v).buffer)[0] >>> 16);
    expect(quantize(foreign('Uint16Array', bf16), { format: 'mxfp4', dtype: 'bf16' }).data).toEqual(quantize(bf16, { format: 'mxfp4', dtype: 'bf16' }).data);
    expect(quantize(foreign('Float32Array', values), { format: 'fgmp', shape: [64, 32] }).data).toEqual(quantize(values, { format: 'fgmp', shape: [64, 32] }).data);
    expect(encode(foreign('Float32Array', values), 'e4m3')).toEqual(encode(values, 'e4m3'));
    const codes = encode(values, 'e4m3');
    expect(bitsOf(decode(foreign('Uint8Array', codes), 'e4m3'))).toEqual(bitsOf(decode(codes, 'e4m3')));
    // A quantized tensor whose arrays come from another realm, as weights and for dequantize.
    const w = quantize(values.subarray(0, 16 * 32), { format: 'nvfp4', shape: [16, 32] });
    const wForeign = { ...w, data: foreign('Uint8Array', w.data), scales: foreign('Uint8Array', w.scales) };
    const out = foreign('Float32Array', new Float32Array(16 * 32));
    expect(dequantize(wForeign, { out })).toBe(out);
    expect(bitsOf(out)).toEqual(bitsOf(dequantize(w)));
    const a = values.subarray(0, 8 * 32);
    const want = matmul(a, w, { bias });
    expect(bitsOf(matmul(foreign('Float32Array', a), wForeign, { bias: foreign('Float32Array', bias) }))).toEqual(bitsOf(want));
    expect(bitsOf(await matmulAsync(foreign('Float32Array', a), wForeign, { bias: foreign('Float32Array', bias) }))).toEqual(bitsOf(want));
  });

  it('accepts SharedArrayBuffers (also growable ones) as inputs, weights and out, on every backend, sync and async', async () => {
    const want = quantize(values, { format: 'nvfp4', shape: [64, 32] });
    for (const growable of [false, true]) {
      const input = shared(Float32Array, values, 4, growable);
      const got = quantize(input, { format: 'nvfp4', shape: [64, 32] });
      expect(got.data).toEqual(want.data);
      expect(got.tensorScale).toBe(want.tensorScale);
      expect((await quantizeAsync(input, { format: 'nvfp4', shape: [64, 32] })).data).toEqual(want.data);
      expect(encode(input, 'e5m2')).toEqual(encode(values, 'e5m2'));
      const sharedTensor = { ...want, data: shared(Uint8Array, want.data, 1, growable), scales: shared(Uint8Array, want.scales, 1, growable) };
      const out = shared(Float32Array, new Float32Array(64 * 32), 4, growable);
      expect(dequantize(sharedTensor, { out })).toBe(out);
      expect(bitsOf(new Float32Array(out))).toEqual(bitsOf(dequantize(want)));
      const w = quantize(values.subarray(0, 16 * 32), { format: 'mxfp4', shape: [16, 32] });
      const wShared = { ...w, data: shared(Uint8Array, w.data, 1, growable), scales: shared(Uint8Array, w.scales, 1, growable) };
      const a = values.subarray(0, 8 * 32);
      const product = matmul(a, w, { bias });
      expect(bitsOf(matmul(shared(Float32Array, a, 4, growable), wShared, { bias: shared(Float32Array, bias, 4, growable) }))).toEqual(bitsOf(product));
      expect(bitsOf(await matmulAsync(shared(Float32Array, a, 4, growable), wShared, { bias }))).toEqual(bitsOf(product));
    }
  });

  it('reads a length-tracking view of a resizable buffer at its length when the call starts; an async call keeps what it took', async () => {
    const buffer = new ArrayBuffer(values.byteLength, { maxByteLength: 2 * values.byteLength });
    const view = new Float32Array(buffer);
    view.set(values);
    const want = quantize(values, { format: 'mxfp4', shape: [64, 32] });
    expect(quantize(view, { format: 'mxfp4', shape: [64, 32] }).data).toEqual(want.data);
    // Started, then the buffer shrinks and is overwritten while the call is in flight.
    const pending = quantizeAsync(view, { format: 'mxfp4', shape: [64, 32] });
    const pendingFgmp = quantizeAsync(view, { format: 'fgmp', shape: [64, 32] });
    const pendingProduct = matmulAsync(view.subarray(0, 8 * 32), quantize(values.subarray(0, 16 * 32), { format: 'nvfp4', shape: [16, 32] }));
    const product = matmul(values.subarray(0, 8 * 32), quantize(values.subarray(0, 16 * 32), { format: 'nvfp4', shape: [16, 32] }));
    buffer.resize(32 * 4);
    view.fill(7);
    expect((await pending).data).toEqual(want.data);
    expect((await pendingFgmp).data).toEqual(quantize(values, { format: 'fgmp', shape: [64, 32] }).data);
    expect(bitsOf(await pendingProduct)).toEqual(bitsOf(product));
    // Now the view tracks 32 elements.
    expect(thrown(() => quantize(view, { format: 'mxfp4', shape: [64, 32] }))).toBe('RangeError: quantize: shape [64, 32] holds 2048 elements but the input has 32');
    expect(quantize(view, { format: 'mxfp4' }).shape).toEqual([32]);
  });
});

/** A Float32Array of `real` elements that claims `claimed` through an own `length` property. */
function ownLength(real: number, claimed: number): Float32Array {
  const a = new Float32Array(real).fill(1);
  Object.defineProperty(a, 'length', { value: claimed });
  return a;
}

class LongFloat32Array extends Float32Array {
  override get length(): number {
    return 1 << 20;
  }
}

describe.each(backends)('a spoofed length on %s', (backend) => {
  useBackend(backend);

  it('is not believed by the public functions: the real length is checked', () => {
    const claimed = 'RangeError: quantize: shape [1048576] holds 1048576 elements but the input has 32';
    expect(thrown(() => quantize(ownLength(32, 1 << 20), { format: 'mxfp4', shape: [1 << 20] }))).toBe(claimed);
    expect(thrown(() => quantize(new LongFloat32Array(32).fill(1), { format: 'mxfp4', shape: [1 << 20] }))).toBe(claimed);
    // Without a shape, the real length is the shape.
    expect(quantize(ownLength(32, 1 << 20), { format: 'mxfp4' }).shape).toEqual([32]);
    expect(encode(ownLength(8, 1 << 20), 'e4m3').length).toBe(8);
    const q = quantize(new Float32Array(64).fill(1), { format: 'mxfp4', shape: [2, 32] });
    const shortData = q.data.subarray(0, 1);
    Object.defineProperty(shortData, 'length', { value: 32 });
    expect(thrown(() => dequantize({ ...q, data: shortData }))).toBe('RangeError: dequantize: data must hold 32 bytes for this shape, got 1');
    expect(thrown(() => matmul(new Float32Array(64), { ...q, data: shortData }))).toBe('RangeError: matmul: b.data must hold 32 bytes for this shape, got 1');
    expect(thrown(() => matmul(new Float32Array(64), q, { bias: ownLength(1, 2) }))).toBe('RangeError: matmul: bias must hold 2 elements (N = 2), got 1');
    const codes = new Uint8Array([1, 2]);
    Object.defineProperty(codes, 'length', { value: 1 << 20 });
    expect(decode(codes, 'e4m3').length).toBe(2);
  });

  it('is not believed at the kernel boundary either (callers that skip the facade)', () => {
    const k = kernelsFor(backend)!;
    for (const src of [ownLength(32, 1 << 20), new LongFloat32Array(32)]) {
      const rows = 1 << 15;
      expect(() => k.quantizeBlocks(mxArgs(src, 0, rows, 32, 0, 0, 0, 0, new Uint8Array(rows * 16), new Uint8Array(rows)))).toThrow(RangeError);
    }
    if (k.matmul) {
      const forged = { nibbles: new Uint8Array(64), scales: new Float32Array(16), fp8Lanes: null, fp8Codes: null, n: 1 << 20, k: 4096, unit: 32, units: 128, tiles: 1 << 16, kGroups: 512 };
      expect(() => k.matmul!.matmulFp4Int8(forged, new Uint8Array(4096), new Float32Array(128), 1, null, new Float32Array(1 << 20))).toThrow(TypeError);
    }
  });
});

// The js backend has no fast matmul kernels.
describe.each(backends.filter((b) => kernelsFor(b)?.matmul !== undefined))('matmul kernel arguments on %s', (backend) => {
  it('the matmul kernels take only the kinds of typed array they declare, not another of the same element size', () => {
    const mm = kernelsFor(backend)!.matmul!;
    const [n, kk, m] = [2, 32, 3];
    const nibbles = new Uint8Array(n * kk / 2).fill(0x21);
    const scales = new Float32Array(n).fill(0.5);
    expect(() => mm.repackFp4Weights(nibbles, new Uint32Array(n) as unknown as Float32Array, null, null, n, kk, 32)).toThrow(TypeError);
    expect(() => mm.repackFp4Weights(new Int8Array(nibbles.length) as unknown as Uint8Array, scales, null, null, n, kk, 32)).toThrow(TypeError);
    const packed = mm.repackFp4Weights(nibbles, scales, null, null, n, kk, 32);
    const codes = new Uint8Array(m * kk).fill(3), aScales = new Float32Array(m).fill(1), out = new Float32Array(m * n);
    const bad: Array<[string, unknown[]]> = [
      ['Int8Array codes', [packed, new Int8Array(m * kk), aScales, m, null, out]],
      ['Int32Array scales', [packed, codes, new Int32Array(m), m, null, out]],
      ['Int32Array bias', [packed, codes, aScales, m, new Int32Array(n), out]],
      ['Uint32Array out', [packed, codes, aScales, m, null, new Uint32Array(m * n)]],
    ];
    for (const [what, args] of bad) {
      expect(() => (mm.matmulFp4Int8 as (...a: unknown[]) => void)(...args), what).toThrow(TypeError);
    }
    mm.matmulFp4Int8(packed, codes, aScales, m, null, out);
    expect(Array.from(out)).toEqual(new Array(m * n).fill(out[0]));
    expect(out[0]).not.toBe(0);
    if (mm.matmulDecoded) {
      const values = new Float32Array(m * kk).fill(1), blockScales = new Float32Array(m).fill(1);
      const bValues = new Float32Array(n * kk).fill(1), bScales = new Float32Array(n).fill(1);
      const call = (o: unknown) => (mm.matmulDecoded as (...a: unknown[]) => void)(values, blockScales, m, 32, bValues, bScales, n, 32, kk, null, o);
      expect(() => call(new Uint32Array(m * n))).toThrow(TypeError);
      const good = new Float32Array(m * n);
      call(good);
      expect(Array.from(good)).toEqual(new Array(m * n).fill(kk));
    }
  });
});

describe('a spoofed length in a child process', () => {
  // If a spoofed length ever reached a kernel's memory again, the child would crash or print
  // bytes it should not have read; either fails here instead of killing the test runner.
  it.each(backends)('%s: every spoofed call is refused and the process exits cleanly', (backend) => {
    const script = `
      import { dequantize, matmul, quantize, setBackend } from './lib/index.ts';
      import { kernelsFor } from './lib/kernels/registry.ts';
      setBackend(${JSON.stringify(backend)});
      const spoof = (a, n) => (Object.defineProperty(a, 'length', { value: n }), a);
      const result = [];
      const attempt = (label, f) => { try { f(); result.push(label + ': accepted'); } catch (e) { result.push(label + ': ' + e.constructor.name); } };
      const rows = 1 << 16;
      // Fill the wasm scratch with a recognisable pattern first, as a previous call would.
      quantize(new Float32Array(rows * 32).fill(1e30), { format: 'mxfp4', shape: [rows, 32] });
      const k = kernelsFor(${JSON.stringify(backend)});
      const call = (format, src, data, scales, tensorScale) => ({ format, src, dtype: 0, rows, cols: 32, scaleRule: 0, rounding: 0, seed: 0, data, scales, tensorScale, firstIndex: 0 });
      attempt('kernel quantizeMx', () => k.quantizeBlocks(call(0, spoof(new Float32Array(32), rows * 32), new Uint8Array(rows * 16), new Uint8Array(rows), 0)));
      attempt('kernel quantizeNvfp4', () => k.quantizeBlocks(call(6, spoof(new Float32Array(32), rows * 32), new Uint8Array(rows * 16), new Uint8Array(rows * 2), 1)));
      attempt('kernel dequantizeMx', () => k.dequantizeBlocks({ format: 0, rows, cols: 32, data: spoof(new Uint8Array(16), rows * 16), scales: spoof(new Uint8Array(1), rows), tensorScale: 0, out: new Float32Array(rows * 32) }));
      attempt('kernel encodeElements out', () => k.encodeElements(new Float32Array(rows), 0, 3, 0, 0, spoof(new Uint8Array(4), rows)));
      attempt('quantize', () => quantize(spoof(new Float32Array(32), rows * 32), { format: 'mxfp4', shape: [rows, 32] }));
      const q = quantize(new Float32Array(64).fill(1), { format: 'nvfp4', shape: [2, 32] });
      attempt('dequantize', () => dequantize({ ...q, data: spoof(q.data.subarray(0, 1), 32) }));
      attempt('matmul', () => matmul(spoof(new Float32Array(32), 64), q, { shape: [2, 32] }));
      console.log(JSON.stringify(result));`;
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as string[];
    expect(result).toEqual([
      'kernel quantizeMx: RangeError', 'kernel quantizeNvfp4: RangeError', 'kernel dequantizeMx: RangeError', 'kernel encodeElements out: RangeError',
      'quantize: RangeError', 'dequantize: RangeError', 'matmul: RangeError',
    ]);
  });
});
