// A strict parser for the safetensors header: 8-byte little-endian header length, a JSON object
// of tensors { dtype, shape, data_offsets } plus an optional "__metadata__" string map, then the
// data section. Anything a loader could misread is rejected with one message naming the file and
// the problem (SafetensorsError), never a crash or a silent guess.

import { SAFETENSORS_DTYPE_BYTES, isKnownDtype } from './dtypes.js';
import { MAX_DIMS } from '../../core/validate.js';

/** Headers beyond this are refused before reading them (real headers are < 10 MB): the reference
 *  parser's limit (safetensors' tensor.rs, MAX_HEADER_SIZE = 100_000_000), so nothing fp4kit reads
 *  or writes is a file Python's or Rust's safetensors refuses. */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'SafetensorsError';
    this.file = file;
    this.problem = problem;
  }
}

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range inside the data section (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Tensors in data-offset order. */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  /** Absolute file offset of the data section: 8 + header length. */
  dataStart: number;
}

/** Whether a string holds a lone UTF-16 surrogate (half a pair): UTF-8 cannot encode it, so it
 *  would be written as U+FFFD — another name. */
export function holdsLoneSurrogate(s: string): boolean {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/** The formats a user may hand over for a safetensors file, by their first bytes: read as a header
 *  length they gave only "header length 578721382704613384 is too large". */
const OTHER_FORMATS: Array<[number[], string]> = [
  [[0x50, 0x4b, 0x03, 0x04], 'the file is a zip archive, as PyTorch saves pytorch_model.bin and .pt files, not a safetensors file'],
  [[0x80], 'the file is a Python pickle (an old PyTorch .bin or .pt), not a safetensors file'],
  [[0x47, 0x47, 0x55, 0x46], 'the file is a GGUF file, not a safetensors file'],
  [[0x89, 0x48, 0x44, 0x46], 'the file is an HDF5 file (TensorFlow .h5), not a safetensors file'],
  [[0x7b], 'the file is JSON text, not a safetensors file'],
  // A repository cloned without git-lfs holds ~130-byte pointer files ("version https://git-lfs…") under the shards' names.
  [[...'version '].map((c) => c.charCodeAt(0)), 'the file is a Git LFS pointer, not the weights: fetch them with git lfs pull'],
];

function otherFormat(prefix: Uint8Array): string {
  const hit = OTHER_FORMATS.find(([magic]) => magic.every((b, i) => prefix[i] === b));
  return hit === undefined ? '' : ` (${hit[1]})`;
}

/** Reads the 8-byte prefix: the header length, checked against the file size. */
export function headerLength(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8) throw new SafetensorsError(file, `truncated file: ${fileSize} bytes, shorter than the 8-byte header length`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(file, `header length ${n} is too large: safetensors readers accept at most ${MAX_HEADER_BYTES} bytes${otherFormat(prefix)}`);
  const len = Number(n);
  if (8 + len > fileSize) throw new SafetensorsError(file, `header length ${len} is larger than the file (${fileSize} bytes): truncated file?`);
  if (len < 2) throw new SafetensorsError(file, `header of ${len} bytes is not JSON`);
  return len;
}

// ignoreBOM: a byte-order mark stays in the text (and fails the "starts with {" check), as the
// reference parser refuses it; by default TextDecoder would drop it silently.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A safetensors header nests three deep (header → tensor entry → shape); anything much deeper is
 *  not one, and is refused before any value is printed or walked recursively. */
const MAX_HEADER_DEPTH = 8;

/**
 * What JSON.parse cannot tell us about a header text (which must already be valid JSON), checked
 * in one pass: no object repeats a key (JSON.parse keeps only the last of duplicate keys, which
 * would hide a tensor or a second dtype); every number is written as an integer (no fraction or
 * exponent: "4.0" or "4e0" is not a dimension or offset a loader would read);
 * nesting stays shallow. Returns the top-level keys in order.
 */
function checkHeaderText(file: string, text: string): string[] {
  const topKeys: string[] = [];
  // One frame per open object or array: an object's keys so far, and whether a key comes next.
  const frames: Array<{ keys: Set<string> | null; expectKey: boolean }> = [];
  let entry = ''; // the top-level key whose value is being read
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const top = frames[frames.length - 1];
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          throw new SafetensorsError(file, frames.length === 1 ? `duplicate tensor name ${describe(key)}` : `${entryName(entry)}: duplicate field ${describe(key)}`);
        }
        top.keys.add(key);
        if (frames.length === 1) {
          topKeys.push(key);
          entry = key;
        }
        top.expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (frames.length >= MAX_HEADER_DEPTH) throw new SafetensorsError(file, `${frames.length === 0 ? 'header' : entryName(entry)}: values nest deeper than a safetensors header's`);
      frames.push({ keys: c === 0x7b ? new Set() : null, expectKey: c === 0x7b });
    } else if (c === 0x7d || c === 0x5d) {
      frames.pop();
    } else if (c === 0x2c /* , */ && top?.keys) {
      top.expectKey = true;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let j = i;
      while (j < text.length && /[-+.eE0-9]/.test(text[j])) j++;
      const token = text.slice(i, j);
      // Integers only (a sign is left to the field's own check, which names the field).
      if (!/^-?[0-9]+$/.test(token)) throw new SafetensorsError(file, `${entryName(entry)}: the number ${token} is not an integer written as one`);
      i = j - 1;
    }
  }
  return topKeys;
}

function entryName(name: string): string {
  return name === '__metadata__' ? '__metadata__' : `tensor ${describe(name)}`;
}

/** A value as a short JSON excerpt for a message (never throws: a value too deep to print says so). */
function describe(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    return 'a value nested too deeply to print';
  }
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Parse and validate header bytes (without the 8-byte prefix) of a file of `fileSize` bytes. */
export function parseHeader(file: string, bytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + bytes.length;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new SafetensorsError(file, 'header is not JSON (invalid UTF-8)');
  }
  if (text.charCodeAt(0) !== 0x7b) throw new SafetensorsError(file, 'header is not JSON (does not start with "{")');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(file, `header is not JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SafetensorsError(file, 'header is not a JSON object');
  checkHeaderText(file, text);

  const entries = parsed as Record<string, unknown>;
  // Names are data: a null-prototype object keeps keys such as __proto__ as plain entries.
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors: TensorInfo[] = [];
  const dataSize = fileSize - dataStart;
  for (const name of Object.keys(entries)) {
    const e = entries[name];
    if (name === '__metadata__') {
      if (e === null) continue; // the reference parser reads null as no metadata (an Option in its Rust struct)
      if (typeof e !== 'object' || Array.isArray(e)) throw new SafetensorsError(file, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(e as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__ value of ${describe(k)} is not a string`);
        if (holdsLoneSurrogate(k) || holdsLoneSurrogate(v)) throw new SafetensorsError(file, `__metadata__ entry ${describe(k)} holds a lone UTF-16 surrogate (a \\u escape of half a pair), which no UTF-8 file can hold`);
        metadata[k] = v;
      }
      continue;
    }
    const what = `tensor ${describe(name)}`;
    // JSON's \ud800 escape gives a name UTF-8 cannot store: the reference parser refuses it, and
    // no output could carry the name.
    if (holdsLoneSurrogate(name)) throw new SafetensorsError(file, `${what}: the name holds a lone UTF-16 surrogate (a \\u escape of half a pair), which no UTF-8 file can hold`);
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new SafetensorsError(file, `${what}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets, ...extra } = e as Record<string, unknown>;
    const extraKeys = Object.keys(extra);
    if (extraKeys.length > 0) throw new SafetensorsError(file, `${what}: unexpected field ${describe(extraKeys[0])}`);
    if (!isKnownDtype(dtype)) throw new SafetensorsError(file, `${what}: unknown dtype ${describe(dtype)}`);
    if (!Array.isArray(shape)) throw new SafetensorsError(file, `${what}: shape is not an array`);
    // NumPy's limit, and the writer's (validate.ts MAX_DIMS): a tensor no NumPy loader can hold is
    // refused here, not after a run that could never write it back.
    if (shape.length > MAX_DIMS) throw new SafetensorsError(file, `${what}: shape has ${shape.length} dimensions; loaders (NumPy) hold at most ${MAX_DIMS}`);
    let count = 1;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || (d as number) < 0 || Object.is(d, -0)) throw new SafetensorsError(file, `${what}: shape ${describe(shape)} has an invalid dimension`);
      count *= d as number;
      if (!Number.isSafeInteger(count)) throw new SafetensorsError(file, `${what}: shape ${describe(shape)} is too large`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0 && !Object.is(o, -0))) {
      throw new SafetensorsError(file, `${what}: data_offsets must be [begin, end] non-negative integers, got ${describe(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new SafetensorsError(file, `${what}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataSize) {
      throw new SafetensorsError(file, `${what}: data_offsets [${begin}, ${end}] out of range: the data section holds ${dataSize} bytes (truncated file?)`);
    }
    const bytesNeeded = count * SAFETENSORS_DTYPE_BYTES[dtype];
    if (end - begin !== bytesNeeded) {
      throw new SafetensorsError(file, `${what}: ${end - begin} bytes but ${dtype} × [${shape.join(', ')}] needs ${bytesNeeded}`);
    }
    tensors.push({ name, dtype, shape: shape as number[], begin, end });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of tensors) {
    if (t.begin < cursor) throw new SafetensorsError(file, `tensor ${describe(t.name)}: data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (ends at ${cursor})`);
    if (t.begin > cursor) throw new SafetensorsError(file, `tensor ${describe(t.name)}: data_offsets [${t.begin}, ${t.end}] leave a gap of ${t.begin - cursor} bytes at ${cursor}`);
    cursor = t.end;
  }
  if (cursor !== dataSize) throw new SafetensorsError(file, `tensors cover ${cursor} bytes of the ${dataSize}-byte data section`);
  return { tensors, metadata, dataStart };
}

/** Parse a whole safetensors file held in memory (tests, small files). */
export function parseSafetensorsBytes(file: string, bytes: Uint8Array): SafetensorsHeader {
  const len = headerLength(file, bytes.subarray(0, 8), bytes.length);
  return parseHeader(file, bytes.subarray(8, 8 + len), bytes.length);
}
