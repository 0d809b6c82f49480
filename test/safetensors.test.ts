// The safetensors reader and writer: round trips, one clear error per kind of malformed input,
// and a fuzz run over thousands of mutated headers (no crash, no hang, only SafetensorsError).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsError, parseSafetensorsBytes } from '../lib/checkpoint/safetensors/header.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { SafetensorsWriter, encodeHeader, writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { openCheckpoint, closeCheckpoint } from '../lib/checkpoint/safetensors/checkpoint-files.js';
import { SAFETENSORS_DTYPE_BYTES } from '../lib/checkpoint/safetensors/dtypes.js';
import { rng } from './helpers/data.js';

const dir = mkdtempSync(join(tmpdir(), 'fp4kit-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file from a header (object or raw JSON text) and `dataBytes` bytes of data. */
function fileBytes(header: unknown, dataBytes: number, lengthOverride?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataBytes; i++) out[8 + json.length + i] = i & 0xff;
  return out;
}

function problem(bytes: Uint8Array): string {
  try {
    parseSafetensorsBytes('bad.safetensors', bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(SafetensorsError);
    const msg = (err as Error).message;
    expect(msg.startsWith('bad.safetensors: ')).toBe(true);
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('expected a SafetensorsError');
}

const t = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

describe('safetensors round trip', () => {
  it('writes and reads back every dtype, empty tensors and metadata', async () => {
    const r = rng(1);
    const tensors = [
      { name: 'a.weight', dtype: 'BF16', shape: [3, 5] },
      { name: 'b', dtype: 'F32', shape: [7] },
      { name: 'empty', dtype: 'F16', shape: [0, 4] },
      { name: 'scalar', dtype: 'F32', shape: [] },
      { name: 'codes', dtype: 'U8', shape: [2, 3] },
      { name: 's8', dtype: 'F8_E4M3', shape: [4] },
      { name: 'e8', dtype: 'F8_E8M0', shape: [4] },
      { name: 'i64', dtype: 'I64', shape: [2] },
    ].map((s) => {
      const n = s.shape.reduce((a, b) => a * b, 1) * ({ BF16: 2, F16: 2, F32: 4, I64: 8 } as Record<string, number>)[s.dtype]! || s.shape.reduce((a, b) => a * b, 1);
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = Math.floor(r() * 256);
      return { ...s, data };
    });
    const path = join(dir, 'round.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt', note: 'ünïcode' });
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
      // In the file, the widest elements first (declared order within a width), so that every
      // tensor starts at a multiple of its element size, as the safetensors package lays files out.
      expect(f.tensors.map((x) => x.name)).toEqual(['i64', 'b', 'scalar', 'a.weight', 'empty', 'codes', 's8', 'e8']);
      for (const x of f.tensors) expect((f.dataStart + x.begin) % SAFETENSORS_DTYPE_BYTES[x.dtype], x.name).toBe(0);
      for (const x of tensors) {
        const info = f.tensor(x.name)!;
        expect(info.dtype).toBe(x.dtype);
        expect(info.shape).toEqual(x.shape);
        expect(Buffer.from(await f.read(info)).equals(Buffer.from(x.data))).toBe(true);
      }
      expect(f.dataStart % 8).toBe(0);
    } finally {
      await f.close();
    }
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('reads a file written by Python safetensors conventions (header padding, __metadata__ first)', () => {
    const header = encodeHeader([{ name: 'x', dtype: 'F32', shape: [2] }], { format: 'pt' });
    const bytes = new Uint8Array(header.length + 8);
    bytes.set(header);
    const parsed = parseSafetensorsBytes('x.safetensors', bytes);
    expect(parsed.tensors[0]).toMatchObject({ name: 'x', begin: 0, end: 8 });
  });

  it('refuses to write out of order, too many bytes, or an incomplete file, and leaves no file', async () => {
    const path = join(dir, 'partial.safetensors');
    const w = await SafetensorsWriter.create(path, [{ name: 'a', dtype: 'U8', shape: [4] }, { name: 'b', dtype: 'U8', shape: [2] }]);
    await expect(w.write('b', new Uint8Array(2))).rejects.toThrow(/expected a, got b/);
    await expect(w.write('a', new Uint8Array(5))).rejects.toThrow(/only 4 remain/);
    await w.write('a', new Uint8Array(4));
    await expect(w.commit()).rejects.toThrow(/b was not written/);
    await w.abort();
    expect(readdirSync(dir).filter((n) => n.startsWith('partial'))).toEqual([]);
  });

  it('SafetensorsWriter.create checks its specs as writeSafetensors does, by name, before any file is made', async () => {
    const path = join(dir, 'specs.safetensors');
    const fails = async (specs: unknown, metadata?: unknown) => {
      try {
        const w = await SafetensorsWriter.create(path, specs as never, metadata as never);
        await w.abort();
        return 'created';
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    expect(await fails(null)).toBe('TypeError: SafetensorsWriter.create: tensors must be an array of { name, dtype, shape }, got null');
    expect(await fails([{ name: 'a', dtype: 'F32', shape: [2] }], 42)).toBe('TypeError: SafetensorsWriter.create: metadata must be an object of strings, got 42');
    expect(await fails([{ name: 'a', dtype: 'F32', shape: [-1] }])).toMatch(/^RangeError: SafetensorsWriter.create: tensors\[0\]\.shape/);
    expect(await fails([{ name: 'a', dtype: 'F32', shape: [2 ** 40, 2 ** 40] }])).toBe('RangeError: SafetensorsWriter.create: tensors[0]: F32 × [1099511627776, 1099511627776] takes the data past 2^53 bytes');
    // A Proxy claiming 2^32 − 1 entries, each a valid spec: refused by its length, not read until the heap runs out.
    const many = new Proxy([], { get: (_t, k) => (k === 'length' ? 2 ** 32 - 1 : { name: 'a', dtype: 'F32', shape: [1] }) });
    expect(await fails(many)).toBe(`RangeError: SafetensorsWriter.create: tensors lists ${2 ** 32 - 1} tensors; a safetensors file holds at most 2097152 (its header is at most 100000000 bytes)`);
    const w = await SafetensorsWriter.create(path, [{ name: 'a', dtype: 'U8', shape: [1] }]);
    await expect(w.write('a', [1] as never)).rejects.toThrow(new TypeError('SafetensorsWriter.write: bytes must be a Uint8Array, got an Array'));
    await w.abort();
    expect(readdirSync(dir).filter((n) => n.startsWith('specs'))).toEqual([]);
  });

  it('a tensor of more than 64 dimensions is refused when read, as the writer refuses it (no NumPy loader holds one)', () => {
    const header = (dims: number) => {
      const json = new TextEncoder().encode(JSON.stringify({ a: { dtype: 'F32', shape: new Array(dims).fill(1), data_offsets: [0, 4] } }));
      const bytes = new Uint8Array(8 + json.length + 4);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
      bytes.set(json, 8);
      return bytes;
    };
    expect(parseSafetensorsBytes('ok', header(64)).tensors[0].shape).toHaveLength(64);
    expect(() => parseSafetensorsBytes('deep.safetensors', header(65))).toThrow(new SafetensorsError('deep.safetensors', 'tensor "a": shape has 65 dimensions; loaders (NumPy) hold at most 64'));
  });

  it('refuses a header readers would refuse (above 100,000,000 bytes, the reference parser\'s limit)', () => {
    const specs = Array.from({ length: 1 << 20 }, (_v, i) => ({ name: `${'n'.repeat(100)}${i}`, dtype: 'U8', shape: [0] }));
    expect(() => encodeHeader(specs)).toThrow(/^safetensors writer: the header would take \d+ bytes; readers refuse headers above 100000000$/);
  });
});

describe('malformed safetensors: one clear error each', () => {
  const good = { a: t('F32', [2], 0, 8), b: t('U8', [4], 8, 12) };
  it('accepts the reference file', () => {
    expect(parseSafetensorsBytes('ok', fileBytes(good, 12)).tensors.length).toBe(2);
  });
  it.each([
    ['truncated file (< 8 bytes)', new Uint8Array(5), /truncated file/],
    ['header length larger than the file', fileBytes(good, 12, 10_000n), /header length 10000 is larger than the file/],
    ['absurdly large header length', fileBytes(good, 12, 1n << 40n), /header length 1099511627776 is too large: safetensors readers accept at most 100000000 bytes/],
    ['header not JSON', fileBytes('{"a": [1, 2', 0), /not JSON/],
    ['header not UTF-8', (() => { const b = fileBytes('{"a":1}', 0); b[10] = 0xff; return b; })(), /not JSON/],
    ['header not an object', fileBytes('[1,2,3]', 0), /not JSON|not a JSON object/],
    ['offsets out of range', fileBytes({ a: t('F32', [2], 0, 8), b: t('U8', [4], 8, 12) }, 10), /out of range/],
    ['overlapping offsets', fileBytes({ a: t('F32', [2], 0, 8), b: t('U8', [4], 6, 10) }, 10), /overlap/],
    ['a gap between tensors', fileBytes({ a: t('F32', [2], 0, 8), b: t('U8', [4], 9, 13) }, 13), /gap/],
    ['data not covered', fileBytes(good, 20), /cover 12 bytes of the 20-byte data section/],
    ['byte length ≠ dtype × shape', fileBytes({ a: t('F32', [3], 0, 8), b: t('U8', [4], 8, 12) }, 12), /8 bytes but F32 × \[3\] needs 12/],
    ['unknown dtype', fileBytes({ a: t('F33', [2], 0, 8), b: t('U8', [4], 8, 12) }, 12), /unknown dtype "F33"/],
    ['duplicate names', fileBytes('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}', 8), /duplicate tensor name "a"/],
    ['end before begin', fileBytes({ a: t('U8', [0], 4, 0) }, 0), /end before they begin/],
    ['negative dimension', fileBytes({ a: t('U8', [-4], 0, 4) }, 4), /invalid dimension/],
    ['metadata not strings', fileBytes({ __metadata__: { a: 1 } }, 0), /__metadata__/],
    ['missing offsets', fileBytes({ a: { dtype: 'U8', shape: [1] } }, 1), /data_offsets must be/],
    // What JSON.parse alone would let through, and the reference parser (Python safetensors) refuses:
    ['a field twice in one entry', fileBytes('{"a":{"dtype":"F16","shape":[4],"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8), /tensor "a": duplicate field "dtype"/],
    ['a metadata key twice', fileBytes('{"__metadata__":{"k":"1","k":"2"}}', 0), /__metadata__: duplicate field "k"/],
    ['a byte-order mark before the header', fileBytes(`\uFEFF${JSON.stringify({ a: t('U8', [4], 0, 4) })}`, 4), /does not start with "\{"/],
    ['a dimension written with a fraction', fileBytes('{"a":{"dtype":"U8","shape":[4.0],"data_offsets":[0,4]}}', 4), /tensor "a": the number 4\.0 is not an integer/],
    ['an offset written with an exponent', fileBytes('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4e0]}}', 4), /the number 4e0 is not an integer/],
    ['a dimension of -0', fileBytes('{"a":{"dtype":"U8","shape":[-0,4],"data_offsets":[0,0]}}', 0), /invalid dimension/],
    ['a name with a lone surrogate escape', fileBytes('{"a\\ud800":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}', 4), /tensor "a\\ud800": the name holds a lone UTF-16 surrogate/],
    ['a metadata value with a lone surrogate escape', fileBytes('{"__metadata__":{"k":"\\udc00"}}', 0), /__metadata__ entry "k" holds a lone UTF-16 surrogate/],
    ['values nested 200000 deep', fileBytes(`{"a":{"dtype":"U8","shape":${'['.repeat(200000)}${']'.repeat(200000)},"data_offsets":[0,0]}}`, 0), /tensor "a": values nest deeper/],
  ])('%s', (_what, bytes, expected) => {
    expect(problem(bytes)).toMatch(expected);
  });

  it('names the file on disk: truncated shard', async () => {
    const path = join(dir, 'cut.safetensors');
    const whole = fileBytes(good, 12);
    writeFileSync(path, whole.subarray(0, whole.length - 3));
    await expect(SafetensorsFile.open(path)).rejects.toThrow(`${path}: tensor "b": data_offsets [8, 12] out of range`);
  });

  it('sharded input: a missing shard is named', async () => {
    const d = join(dir, 'sharded');
    mkdirSync(d);
    writeFileSync(join(d, 'model-00001-of-00002.safetensors'), fileBytes({ a: t('U8', [4], 0, 4) }, 4));
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    await expect(openCheckpoint(d)).rejects.toThrow(/model\.safetensors\.index\.json: missing shard model-00002-of-00002\.safetensors/);
    writeFileSync(join(d, 'model-00002-of-00002.safetensors'), fileBytes({ b: t('U8', [4], 0, 4), c: t('U8', [1], 4, 5) }, 5));
    await expect(openCheckpoint(d)).rejects.toThrow(/tensor c is not assigned to this shard/);
    writeFileSync(join(d, 'model-00002-of-00002.safetensors'), fileBytes({ b: t('U8', [4], 0, 4) }, 4));
    const c = await openCheckpoint(d);
    expect(c.shards.flatMap((s) => s.tensors.map((x) => x.name))).toEqual(['a', 'b']);
    await closeCheckpoint(c);
  });

  it('duplicate names across files of a folder', async () => {
    const d = join(dir, 'dups');
    mkdirSync(d);
    writeFileSync(join(d, 'a.safetensors'), fileBytes({ x: t('U8', [4], 0, 4) }, 4));
    writeFileSync(join(d, 'b.safetensors'), fileBytes({ x: t('U8', [4], 0, 4) }, 4));
    await expect(openCheckpoint(d)).rejects.toThrow(/duplicate tensor name x/);
  });

  it('a refused checkpoint leaves no file open (Linux: counts /proc/self/fd)', async () => {
    expect(process.platform).toBe('linux'); // CI's platform; the count below reads Linux's fd table
    const d = join(dir, 'dups-fds');
    mkdirSync(d);
    writeFileSync(join(d, 'a.safetensors'), fileBytes({ x: t('U8', [4], 0, 4) }, 4));
    writeFileSync(join(d, 'b.safetensors'), fileBytes({ x: t('U8', [4], 0, 4) }, 4));
    const open = () => readdirSync('/proc/self/fd').length;
    const before = open();
    for (let i = 0; i < 20; i++) await expect(openCheckpoint(d)).rejects.toThrow(/duplicate tensor name x/);
    expect(open()).toBe(before);
  });
});

describe('fuzzing the header parser', () => {
  const base = fileBytes(
    { __metadata__: { format: 'pt' }, 'w.weight': t('BF16', [4, 8], 0, 64), 's': t('F8_E4M3', [4, 2], 64, 72), 'g': t('F32', [1], 72, 76) },
    76,
  );
  const headerEnd = base.length - 76;

  function check(bytes: Uint8Array): 'ok' | 'error' {
    try {
      const h = parseSafetensorsBytes('fuzz.safetensors', bytes);
      // Whatever parses must describe a consistent file.
      let cursor = 0;
      for (const x of h.tensors) {
        expect(x.begin).toBe(cursor);
        cursor = x.end;
      }
      expect(h.dataStart + cursor).toBe(bytes.length);
      return 'ok';
    } catch (err) {
      if (!(err instanceof SafetensorsError)) throw new Error(`non-SafetensorsError: ${String(err)}`);
      return 'error';
    }
  }

  it('survives 6000 mutated files with clean errors, quickly', () => {
    const r = rng(12345);
    const text = new TextDecoder().decode(base.subarray(8, headerEnd));
    const edits = [
      (s: string) => s.replace(/\d+/, () => String(Math.floor(r() * 1e6))),
      (s: string) => s.replace(/"BF16"|"F32"|"F8_E4M3"/, () => ['"F64"', '"X"', '""', '1', 'null', '"U8"'][Math.floor(r() * 6)]),
      (s: string) => { const i = Math.floor(r() * s.length); return s.slice(0, i) + s.slice(i + 1); },
      (s: string) => { const i = Math.floor(r() * s.length); return s.slice(0, i) + '{}[],:"0-e.\\'[Math.floor(r() * 13)] + s.slice(i); },
      (s: string) => s.replace('"g"', '"s"'),
      (s: string) => s.replace(/\[4, ?8\]|\[4,8\]/, '[8,4]').replace('[1]', '[2]'),
      (s: string) => s.replace(/data_offsets":\[(\d+),(\d+)\]/, (_m, a, b) => `data_offsets":[${b},${a}]`),
      (s: string) => s.replace(/\d+/g, (m) => (r() < 0.2 ? String(Number(m) + Math.floor(r() * 5) - 2) : m)),
      (s: string) => s.replace('{', '{"__metadata__":{"x":' + ['1', '"y"', '[]', 'null'][Math.floor(r() * 4)] + '},'),
      (s: string) => s.replace(/"shape":\[[^\]]*\]/, '"shape":' + ['[-1]', '[1e400]', '[2.5]', '"x"', '[9007199254740993,9007199254740993]'][Math.floor(r() * 5)]),
    ];
    const counts = { ok: 0, error: 0 };
    const started = performance.now();
    for (let iter = 0; iter < 6000; iter++) {
      let bytes: Uint8Array;
      const kind = iter % 4;
      if (kind === 0) {
        // bit flips anywhere in the prefix and header
        bytes = base.slice();
        const flips = 1 + Math.floor(r() * 4);
        for (let k = 0; k < flips; k++) {
          const pos = Math.floor(r() * headerEnd);
          bytes[pos] ^= 1 << Math.floor(r() * 8);
        }
      } else if (kind === 1) {
        bytes = base.slice(0, Math.floor(r() * base.length)); // truncation
      } else {
        let s = text;
        const n = 1 + Math.floor(r() * 3);
        for (let k = 0; k < n; k++) s = edits[Math.floor(r() * edits.length)](s);
        const json = new TextEncoder().encode(s);
        const dataLen = kind === 3 ? Math.floor(r() * 100) : 76;
        bytes = new Uint8Array(8 + json.length + dataLen);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
        bytes.set(json, 8);
      }
      counts[check(bytes)]++;
    }
    const ms = performance.now() - started;
    console.log(`fuzz: ${counts.ok} parsed, ${counts.error} rejected with SafetensorsError, ${ms.toFixed(0)} ms`);
    expect(counts.error).toBeGreaterThan(3000);
    expect(ms).toBeLessThan(20_000);
  });

  it('rejects a 100 MB+ header length without allocating it', () => {
    expect(problem(fileBytes({}, 0, 100_000_001n))).toMatch(/too large: safetensors readers accept at most 100000000 bytes/); // the reference parser's limit (tensor.rs)
  });
});
